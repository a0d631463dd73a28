//! Real card readers through pcsc-lite (the `pcsc` crate): list readers, wait for a card,
//! connect shared, transmit, hold transactions. PC/SC's error codes become [`CardError`]s.

use super::apdu::{Command, Response};
use super::{CardChannel, CardConnection, CardError};
use std::ffi::CString;
use std::time::Duration;

/// A reader and what is in it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ReaderInfo {
    pub name: String,
    pub card_present: bool,
    /// The card's answer to reset, hex.
    pub atr: Option<String>,
}

/// A connection to pcscd.
pub struct PcscReaders {
    context: pcsc::Context,
}

fn map(e: pcsc::Error, reader: &str) -> CardError {
    use pcsc::Error as E;
    match e {
        E::NoReadersAvailable => CardError::NoReader,
        E::NoService | E::ServiceStopped => CardError::NoService,
        E::UnknownReader | E::ReaderUnavailable => CardError::UnknownReader(reader.to_string()),
        E::NoSmartcard => CardError::NoCard(reader.to_string()),
        E::RemovedCard => CardError::CardRemoved(reader.to_string()),
        E::ResetCard => CardError::CardReset(reader.to_string()),
        E::SharingViolation => CardError::SharingViolation(reader.to_string()),
        E::Timeout => CardError::Timeout(reader.to_string()),
        E::UnpoweredCard | E::UnresponsiveCard | E::UnsupportedCard => {
            CardError::Reader { reader: reader.to_string(), reason: format!("the card does not answer ({e})") }
        }
        other => CardError::Reader { reader: reader.to_string(), reason: other.to_string() },
    }
}

impl PcscReaders {
    /// Connects to pcscd: `NoService` when it is not running.
    pub fn establish() -> Result<PcscReaders, CardError> {
        let context = pcsc::Context::establish(pcsc::Scope::User).map_err(|e| map(e, ""))?;
        Ok(PcscReaders { context })
    }

    fn reader_names(&self) -> Result<Vec<CString>, CardError> {
        match self.context.list_readers_owned() {
            Ok(r) => Ok(r),
            Err(pcsc::Error::NoReadersAvailable) => Ok(Vec::new()),
            Err(e) => Err(map(e, "")),
        }
    }

    /// Every reader and whether a card is in it.
    pub fn list(&self) -> Result<Vec<ReaderInfo>, CardError> {
        let names = self.reader_names()?;
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let mut states: Vec<pcsc::ReaderState> = names.into_iter().map(|n| pcsc::ReaderState::new(n, pcsc::State::UNAWARE)).collect();
        self.context.get_status_change(Duration::ZERO, &mut states).map_err(|e| map(e, ""))?;
        Ok(states
            .iter()
            .map(|s| {
                let present = s.event_state().contains(pcsc::State::PRESENT);
                ReaderInfo {
                    name: s.name().to_string_lossy().to_string(),
                    card_present: present,
                    atr: (present && !s.atr().is_empty()).then(|| hex::encode_upper(s.atr())),
                }
            })
            .collect())
    }

    /// Connects (shared) to the card in `reader`, or in the first reader that has one, waiting
    /// up to `wait` for a card to be inserted.
    pub fn connect(&self, reader: Option<&str>, wait: Duration) -> Result<PcscConnection, CardError> {
        let names = self.reader_names()?;
        if names.is_empty() {
            return Err(CardError::NoReader);
        }
        let candidates: Vec<CString> = match reader {
            Some(r) => vec![names.into_iter().find(|n| n.to_string_lossy() == r).ok_or_else(|| CardError::UnknownReader(r.to_string()))?],
            None => names,
        };
        let deadline = std::time::Instant::now() + wait;
        let mut states: Vec<pcsc::ReaderState> =
            candidates.iter().map(|n| pcsc::ReaderState::new(n.clone(), pcsc::State::UNAWARE)).collect();
        let all = || candidates.iter().map(|c| c.to_string_lossy().to_string()).collect::<Vec<_>>().join(", ");
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.context.get_status_change(Duration::ZERO, &mut states) {
                Ok(()) | Err(pcsc::Error::Timeout) => {}
                Err(e) => return Err(map(e, &all())),
            }
            if let Some(s) = states.iter().find(|s| s.event_state().contains(pcsc::State::PRESENT)) {
                let name = s.name().to_owned();
                let label = name.to_string_lossy().to_string();
                let card = self.context.connect(&name, pcsc::ShareMode::Shared, pcsc::Protocols::ANY).map_err(|e| map(e, &label))?;
                tracing::debug!(reader = %label, "connected to the card");
                return Ok(PcscConnection { card, reader: label });
            }
            if left.is_zero() {
                return Err(if wait.is_zero() { CardError::NoCard(all()) } else { CardError::Timeout(all()) });
            }
            for s in &mut states {
                s.sync_current_state();
            }
            match self.context.get_status_change(left.min(Duration::from_secs(1)), &mut states) {
                Ok(()) | Err(pcsc::Error::Timeout) => {}
                Err(e) => return Err(map(e, &all())),
            }
        }
    }
}

/// A shared connection to one card. Dropping it disconnects with a card reset (the `pcsc`
/// crate's `Drop`), so no verified PIN outlives kiban's use of the card.
pub struct PcscConnection {
    card: pcsc::Card,
    reader: String,
}

fn transmit(card: &pcsc::Card, reader: &str, command: &Command) -> Result<Response, CardError> {
    let mut buffer = zeroize::Zeroizing::new([0u8; pcsc::MAX_BUFFER_SIZE_EXTENDED]);
    let answer = card.transmit(command.bytes(), &mut buffer[..]).map_err(|e| map(e, reader))?;
    Ok(Response::parse(answer)?)
}

struct InTransaction<'a, 'tx> {
    tx: &'a pcsc::Transaction<'tx>,
    reader: &'a str,
}

impl CardChannel for InTransaction<'_, '_> {
    fn transmit(&mut self, command: &Command) -> Result<Response, CardError> {
        transmit(self.tx, self.reader, command)
    }
}

impl CardChannel for PcscConnection {
    fn transmit(&mut self, command: &Command) -> Result<Response, CardError> {
        transmit(&self.card, &self.reader, command)
    }
}

impl CardConnection for PcscConnection {
    fn transaction(&mut self, f: &mut dyn FnMut(&mut dyn CardChannel) -> Result<(), CardError>) -> Result<(), CardError> {
        let reader = self.reader.clone();
        let tx = self.card.transaction().map_err(|e| map(e, &reader))?;
        let result = f(&mut InTransaction { tx: &tx, reader: &reader });
        let ended = tx.end(pcsc::Disposition::LeaveCard).map_err(|(_, e)| map(e, &reader));
        result.and(ended)
    }

    fn reader(&self) -> &str {
        &self.reader
    }
}
