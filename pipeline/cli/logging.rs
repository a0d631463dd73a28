//! Logs on stderr, human or JSON. Records are named by file and record number; the pipeline never
//! puts names, addresses, birth dates or PINs into a log field or message.

use super::LogFormat;
use tracing_subscriber::EnvFilter;

pub fn init(format: LogFormat, verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        // The APDU trace (target kiban::apdu): headers, lengths and status words; PINs masked.
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("kiban={default},{}", if verbose > 1 { "info" } else { "warn" })));
    // Colours on a terminal only: a log file or journal gets plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_target(false).with_ansi(ansi);
    let _ = match format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}
