//! The 利用者証明用 PIN (auth PIN, 4 digits): read without echo from the terminal, or from a file
//! descriptor for automation (`--pin-fd 3 3<pin-file`), held in memory that is zeroed on drop.
//! `Debug` and `Display` print `****`: a PIN cannot reach a log by accident.

use std::io::Read;
use zeroize::Zeroizing;

pub struct Pin(Zeroizing<String>);

#[derive(Debug, thiserror::Error)]
pub enum PinError {
    #[error("the auth PIN (利用者証明用パスワード) is 4 digits")]
    Format,
    #[error("no terminal to ask for the PIN on: give it on a file descriptor with --pin-fd")]
    NoTerminal,
    #[error("reading the PIN from the terminal: {0}")]
    Terminal(std::io::Error),
    #[error("reading the PIN from file descriptor {fd}: {source}")]
    Fd { fd: i32, source: std::io::Error },
    #[error("file descriptor {0} is not open (give it with e.g. `--pin-fd 3 3<pin-file`)")]
    BadFd(i32),
}

impl Pin {
    /// A PIN from its text; the text must be 4 ASCII digits.
    pub fn new(text: Zeroizing<String>) -> Result<Pin, PinError> {
        if text.len() == 4 && text.bytes().all(|b| b.is_ascii_digit()) { Ok(Pin(text)) } else { Err(PinError::Format) }
    }

    /// Asks on the controlling terminal, without echo.
    pub fn prompt(prompt: &str) -> Result<Pin, PinError> {
        if std::fs::File::open("/dev/tty").is_err() {
            return Err(PinError::NoTerminal);
        }
        let text = Zeroizing::new(rpassword::prompt_password(prompt).map_err(PinError::Terminal)?);
        Pin::new(Zeroizing::new(text.trim_end_matches(['\r', '\n']).to_string()))
    }

    /// Reads the first line of an inherited file descriptor (which is closed afterwards).
    pub fn from_fd(fd: i32) -> Result<Pin, PinError> {
        use std::os::fd::FromRawFd;
        if fd < 0 || !std::path::Path::new(&format!("/proc/self/fd/{fd}")).exists() {
            return Err(PinError::BadFd(fd));
        }
        // SAFETY: the descriptor was checked to be open in this process; it was handed to kiban
        // for this purpose and nothing else in kiban uses it; the File owns and closes it.
        let mut file = unsafe { std::fs::File::from_raw_fd(fd) };
        let mut bytes = Zeroizing::new(Vec::with_capacity(64));
        // 64 bytes is plenty for a PIN and its newline; more is not a PIN.
        (&mut file).take(64).read_to_end(&mut bytes).map_err(|source| PinError::Fd { fd, source })?;
        let text = std::str::from_utf8(&bytes).map_err(|_| PinError::Format)?;
        let line = text.split(['\r', '\n']).next().unwrap_or("");
        Pin::new(Zeroizing::new(line.to_string()))
    }

    /// The PIN as the card takes it: ASCII digits (also what a simulated card is made with).
    pub fn ascii(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl std::fmt::Debug for Pin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pin(****)")
    }
}

impl std::fmt::Display for Pin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("****")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pin_is_four_digits_and_prints_masked() {
        let p = Pin::new(Zeroizing::new("0427".into())).unwrap();
        assert_eq!(p.ascii(), b"0427");
        assert_eq!(format!("{p:?} {p}"), "Pin(****) ****");
        for bad in ["", "123", "12345", "12a4", "１２３４"] {
            assert!(matches!(Pin::new(Zeroizing::new(bad.into())), Err(PinError::Format)), "{bad}");
        }
    }

    #[test]
    fn a_pin_comes_from_a_file_descriptor() {
        use std::os::fd::IntoRawFd;
        let mut f = tempfile::tempfile().unwrap();
        std::io::Write::write_all(&mut f, b"9876\n").unwrap();
        std::io::Seek::seek(&mut f, std::io::SeekFrom::Start(0)).unwrap();
        let fd = f.into_raw_fd();
        assert_eq!(Pin::from_fd(fd).unwrap().ascii(), b"9876");
        assert!(matches!(Pin::from_fd(-1), Err(PinError::BadFd(-1))));
    }
}
