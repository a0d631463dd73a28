//! The マイナンバーカード's JPKI application (公的個人認証), over any card connection.
//!
//! ```text
//!  Pin (no echo / fd, zeroed) ─┐
//!                              ▼
//!  Jpki ── Command APDU ──► CardConnection ──► pcsc::PcscConnection ──► pcscd ──► reader ──► card
//!   │  ◄── Response APDU ──        │        └─► sim::SimulatedCard (in process)
//!   │                              │   vpcd::serve: SimulatedCard ──TCP──► pcscd's vpcd driver
//!   ├─ token label, auth certificate (EF 000A), PIN tries left, VERIFY, SIGN (auth key)
//!   └─► signer::CardSigningKey: rustls client authentication with the card's key (TLS 1.2)
//! ```
//! Only the JPKI application (AID `D3 92 F0 00 26 01 00 00 00 01`) and its auth-side files are
//! ever selected: never the card-info application (個人番号) and never the sign certificate
//! (EF 0001: name, address, birth date). `sim` enforces and records this for the tests.
//! Every exchange is traced at `trace` level under the target `kiban::apdu`, with PINs masked
//! and data shown as lengths (`apdu::Command::trace`).

pub mod apdu;
pub mod jpki;
#[cfg(feature = "pcsc")]
pub mod pcsc;
pub mod pin;
pub mod signer;
pub mod sim;
pub mod vpcd;

pub use jpki::{Jpki, PinStatus};
pub use pin::{Pin, PinError};

/// Something that carries APDUs to a card.
pub trait CardChannel {
    /// Sends one command and returns the card's answer.
    fn transmit(&mut self, command: &apdu::Command) -> Result<apdu::Response, CardError>;
}

/// A connection to one card.
pub trait CardConnection: CardChannel + Send {
    /// Runs `f` while no other program may talk to the card (a PC/SC transaction), so a VERIFY
    /// and the SIGN it unlocks are not separated by another program's commands.
    fn transaction(&mut self, f: &mut dyn FnMut(&mut dyn CardChannel) -> Result<(), CardError>) -> Result<(), CardError>;
    /// The reader's name, for messages.
    fn reader(&self) -> &str;
}

/// What can go wrong between kiban and a card. No variant carries a PIN or certificate content.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CardError {
    #[error("wrong PIN: {tries_left} tries left before the auth PIN is blocked")]
    WrongPin { tries_left: u8 },
    #[error("the auth PIN is blocked (too many wrong PINs): the municipality's counter resets it")]
    PinBlocked,
    #[error("the card refused: the PIN has not been verified")]
    NotVerified,
    #[error("no PC/SC service: pcscd is not running (start it, e.g. `systemctl start pcscd.socket`)")]
    NoService,
    #[error("no card reader is connected")]
    NoReader,
    #[error("no reader named `{0}`")]
    UnknownReader(String),
    #[error("no card in reader `{0}`")]
    NoCard(String),
    #[error("the card was removed from `{0}`")]
    CardRemoved(String),
    #[error("another program reset the card in `{0}`: try again (the PIN must be verified again)")]
    CardReset(String),
    #[error("another program holds the card in `{0}` exclusively")]
    SharingViolation(String),
    #[error("no card came to `{0}` in time")]
    Timeout(String),
    #[error("the card in `{0}` has no JPKI application: is it a マイナンバーカード?")]
    NotJpki(String),
    #[error("the card answered {sw:04X} to {command}")]
    Status { command: &'static str, sw: u16 },
    #[error("the card's {what} is malformed: {reason}")]
    Malformed { what: &'static str, reason: String },
    #[error(transparent)]
    Apdu(#[from] apdu::ApduError),
    #[error("card reader `{reader}`: {reason}")]
    Reader { reader: String, reason: String },
    #[error(
        "this kiban was built without PC/SC support (cargo feature `pcsc`): install libpcsclite-dev and pkg-config, then build with default features"
    )]
    NoPcscSupport,
}
