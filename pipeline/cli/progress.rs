//! A progress bar on a terminal for long loads, and nothing elsewhere (SPEC §11).

use crate::job::run::Progress;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;

pub struct TerminalProgress {
    bar: ProgressBar,
}

impl TerminalProgress {
    pub fn new(human: bool) -> Self {
        let bar = if human && std::io::stderr().is_terminal() {
            let b = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
            b.set_length(0);
            if let Ok(style) = ProgressStyle::with_template("{msg:30} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec}") {
                b.set_style(style.progress_chars("=> "));
            }
            b
        } else {
            ProgressBar::hidden()
        };
        TerminalProgress { bar }
    }
}

impl Progress for TerminalProgress {
    /// Files may be read at the same time: the bar counts the bytes of all files started so far.
    fn start_file(&self, name: &str, bytes: u64) {
        self.bar.inc_length(bytes);
        self.bar.set_message(name.to_string());
    }
    fn bytes(&self, n: usize) {
        self.bar.inc(n as u64);
    }
    fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
