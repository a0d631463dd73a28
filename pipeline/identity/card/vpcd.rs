//! Serves a simulated card to a real pcscd through the `vsmartcard-vpcd` reader driver.
//!
//! vpcd listens on a TCP port (35963 for its first reader, from /etc/reader.conf.d/vpcd) and
//! waits for a card program. Frames both ways are a 2-byte big-endian length and a payload; a
//! 1-byte payload from the driver is a control code (`00` power off, `01` power on, `02` reset,
//! `04` send the ATR), anything longer a command APDU, answered with the response APDU. Closing
//! the connection is pulling the card out.
//!
//! ```text
//!  kiban card status ─► libpcsclite ─► pcscd ─► libifdvpcd ◄─TCP─ serve(): SimulatedCard
//! ```

use super::sim::{ATR, SimulatedCard, SimulatedCardError};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum VpcdError {
    #[error(transparent)]
    Card(#[from] SimulatedCardError),
    #[error("vpcd at {addr}: {source}")]
    Io { addr: String, source: std::io::Error },
    #[error("vpcd at {addr} sent a frame of {len} bytes; a command APDU has at most 261")]
    Frame { addr: String, len: usize },
}

const CONTROL_POWER_OFF: u8 = 0x00;
const CONTROL_POWER_ON: u8 = 0x01;
const CONTROL_RESET: u8 = 0x02;
const CONTROL_ATR: u8 = 0x04;

/// How a session with the driver ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Ended {
    /// The driver closed the connection (pcscd stopped).
    DriverGone,
}

/// Connects to the vpcd driver at `addr`, trying again every 200 ms (pcscd may not be up yet)
/// until `wait` has passed.
pub fn connect(addr: &str, wait: Duration) -> Result<TcpStream, VpcdError> {
    let deadline = std::time::Instant::now() + wait;
    loop {
        match TcpStream::connect(addr) {
            Ok(s) => {
                let _ = s.set_nodelay(true);
                return Ok(s);
            }
            Err(e) if std::time::Instant::now() >= deadline => return Err(VpcdError::Io { addr: addr.to_string(), source: e }),
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

fn read_frame(stream: &mut TcpStream, addr: &str) -> Result<Option<Vec<u8>>, VpcdError> {
    let mut len = [0u8; 2];
    match stream.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(source) => return Err(VpcdError::Io { addr: addr.to_string(), source }),
    }
    let len = u16::from_be_bytes(len) as usize;
    // 4 header bytes, Lc, 255 data bytes, Le.
    if len > 261 {
        return Err(VpcdError::Frame { addr: addr.to_string(), len });
    }
    let mut payload = vec![0u8; len];
    stream.read_exact(&mut payload).map_err(|source| VpcdError::Io { addr: addr.to_string(), source })?;
    Ok(Some(payload))
}

fn write_frame(stream: &mut TcpStream, addr: &str, payload: &[u8]) -> Result<(), VpcdError> {
    let len = u16::try_from(payload.len()).map_err(|_| VpcdError::Frame { addr: addr.to_string(), len: payload.len() })?;
    let mut frame = Vec::with_capacity(payload.len() + 2);
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(payload);
    stream.write_all(&frame).map_err(|source| VpcdError::Io { addr: addr.to_string(), source })
}

/// Serves the card kept in `card_dir` on one connection until the driver closes it.
pub fn serve_connection(mut stream: TcpStream, addr: &str, card_dir: &Path) -> Result<Ended, VpcdError> {
    let mut card = SimulatedCard::open(card_dir)?;
    while let Some(payload) = read_frame(&mut stream, addr)? {
        match payload.as_slice() {
            [CONTROL_POWER_OFF] | [CONTROL_POWER_ON] | [CONTROL_RESET] => {
                tracing::debug!(target: "kiban::apdu", "vpcd control {:02X}", payload[0]);
                card.reset();
            }
            [CONTROL_ATR] => write_frame(&mut stream, addr, &ATR)?,
            [other] => tracing::debug!(target: "kiban::apdu", "vpcd control {other:02X} ignored"),
            apdu => {
                let response = card.process(apdu);
                write_frame(&mut stream, addr, &response.to_bytes())?;
            }
        }
    }
    Ok(Ended::DriverGone)
}

/// Serves the card until the process is stopped: when pcscd goes away, waits for it again.
pub fn serve(addr: &str, card_dir: &Path) -> Result<(), VpcdError> {
    loop {
        let stream = connect(addr, Duration::from_secs(u64::MAX / 4))?;
        tracing::info!(%addr, "simulated card inserted into the virtual reader");
        serve_connection(stream, addr, card_dir)?;
        tracing::info!(%addr, "the virtual reader closed the connection; waiting for it again");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The driver's side of the protocol, played by the test: ATR, power on, a SELECT.
    #[test]
    fn speaks_the_vpcd_frames() {
        let dir = tempfile::tempdir().unwrap();
        drop(super::super::sim::tests::card(dir.path()));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let card_dir = dir.path().to_path_buf();
        let a = addr.clone();
        let card = std::thread::spawn(move || serve_connection(connect(&a, Duration::from_secs(5)).unwrap(), &a, &card_dir));
        let (mut driver, _) = listener.accept().unwrap();
        let mut ask = |payload: &[u8]| {
            write_frame(&mut driver, &addr, payload).unwrap();
            read_frame(&mut driver, &addr).unwrap().unwrap()
        };
        assert_eq!(ask(&[CONTROL_ATR]), ATR);
        let mut select = vec![0x00, 0xA4, 0x04, 0x0C, 0x0A];
        select.extend_from_slice(&super::super::jpki::JPKI_AID);
        assert_eq!(ask(&select), [0x90, 0x00]);
        assert_eq!(ask(&[0x00, 0xA4, 0x02, 0x0C, 0x02, 0x00, 0x06]), [0x90, 0x00]);
        let label = ask(&[0x00, 0xB0, 0x00, 0x00, 0x0F]);
        assert_eq!(&label[..15], b"JPKIAPICCTOKEN2");
        write_frame(&mut driver, &addr, &[CONTROL_POWER_OFF]).unwrap();
        drop(driver);
        assert_eq!(card.join().unwrap().unwrap(), Ended::DriverGone);
    }
}
