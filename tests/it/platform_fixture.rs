//! A real `kiban platform serve` process and the certificates around it, for the publish tests.

use kiban::identity::certs::{DemoCa, Validity};
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// Certificates of one test: the platform's CA and server certificate, terminal certificates of
/// two insurers, an expired one, and one from another CA.
pub struct Pki {
    pub dir: PathBuf,
    pub ca: PathBuf,
}

impl Pki {
    pub fn new(dir: &Path) -> Pki {
        std::fs::create_dir_all(dir).unwrap();
        let ca = DemoCa::new("test CA").unwrap();
        std::fs::write(dir.join("ca.pem"), ca.certificate_pem()).unwrap();
        ca.server(&["localhost", "127.0.0.1"], Validity::days(30)).unwrap().write(dir, "server").unwrap();
        ca.terminal("141309", Validity::days(30)).unwrap().write(dir, "terminal-141309").unwrap();
        ca.terminal("131011", Validity::days(30)).unwrap().write(dir, "terminal-131011").unwrap();
        ca.terminal("141309", Validity { from_days: -30, to_days: -1 }).unwrap().write(dir, "expired-141309").unwrap();
        let other = DemoCa::new("another CA").unwrap();
        other.terminal("141309", Validity::days(30)).unwrap().write(dir, "other-ca-141309").unwrap();
        Pki { dir: dir.to_path_buf(), ca: dir.join("ca.pem") }
    }

    /// (certificate, key) of a stem: `terminal-141309`, `terminal-131011`, `expired-141309`,
    /// `other-ca-141309`.
    pub fn pair(&self, stem: &str) -> (PathBuf, PathBuf) {
        (self.dir.join(format!("{stem}.pem")), self.dir.join(format!("{stem}.key")))
    }

    /// A client of the platform at `url` with the terminal certificate `stem` (None: no
    /// client certificate), retrying for `retry_seconds`.
    pub fn client(&self, url: &str, stem: Option<&str>, retry_seconds: u64) -> kiban::publish::PlatformClient {
        let identity = stem.map(|s| {
            let (c, k) = self.pair(s);
            kiban::identity::tls::TerminalIdentity::from_pem(&c, &k).unwrap()
        });
        let tls = kiban::identity::tls::client_config(&self.ca, identity).unwrap();
        let retry = kiban::publish::RetryPolicy {
            initial: std::time::Duration::from_millis(50),
            max_delay: std::time::Duration::from_millis(500),
            give_up_after: std::time::Duration::from_secs(retry_seconds),
        };
        kiban::publish::PlatformClient::new(url, tls, retry).unwrap()
    }

    /// The `[platform]` table of a job publishing as `stem` to `url`.
    pub fn job_table(&self, url: &str, stem: &str, extra: &str) -> String {
        let (c, k) = self.pair(stem);
        format!(
            "[platform]\nurl = \"{url}\"\nca = \"{}\"\ncertificate = \"{}\"\nkey = \"{}\"\n{extra}\n",
            self.ca.display(),
            c.display(),
            k.display()
        )
    }
}

/// A `kiban platform serve` child process; killed (SIGKILL) when dropped.
pub struct PlatformProcess {
    child: Option<Child>,
    pub config: PathBuf,
    pub url: String,
    pub port: u16,
}

impl PlatformProcess {
    /// Starts a platform with its state in `database` (a SQLite path or postgres:// URL) on a
    /// free port (or `port`), and waits until it listens.
    pub fn start(dir: &Path, pki: &Pki, database: &str, port: u16, extra: &str) -> PlatformProcess {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let config = dir.join(format!("platform-{n}.toml"));
        std::fs::write(
            &config,
            format!(
                "listen = \"127.0.0.1:{port}\"\ndatabase = \"{database}\"\ncertificate = \"{}\"\nkey = \"{}\"\nclient_ca = \"{}\"\n{extra}\n",
                pki.dir.join("server.pem").display(),
                pki.dir.join("server.key").display(),
                pki.ca.display()
            ),
        )
        .unwrap();
        Self::spawn(config)
    }

    fn spawn(config: PathBuf) -> PlatformProcess {
        let mut child = Command::new(env!("CARGO_BIN_EXE_kiban"))
            .args(["platform", "serve", "--config", config.to_str().unwrap()])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start kiban platform serve");
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        std::io::BufReader::new(stdout).read_line(&mut line).unwrap();
        let Some(addr) = line.trim().strip_prefix("listening on https://") else {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!("platform did not start: {line}\n{}", String::from_utf8_lossy(&out.stderr));
        };
        let port: u16 = addr.rsplit(':').next().unwrap().parse().unwrap();
        // Keep draining stderr so the platform never blocks on a full pipe.
        if let Some(mut err) = child.stderr.take() {
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut err, &mut std::io::sink());
            });
        }
        PlatformProcess { child: Some(child), config, url: format!("https://localhost:{port}"), port }
    }

    /// SIGKILL, as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the same configuration again on the same port.
    pub fn restart(&mut self) {
        self.kill();
        let text = std::fs::read_to_string(&self.config).unwrap();
        let text = text.replace("127.0.0.1:0", &format!("127.0.0.1:{}", self.port));
        std::fs::write(&self.config, text).unwrap();
        let next = Self::spawn(self.config.clone());
        *self = next;
    }
}

impl Drop for PlatformProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
