//! The identity module through a real PC/SC stack: pcscd with the vsmartcard-vpcd driver, the
//! simulated JPKI card served by `kiban card simulate serve`, the `kiban` binary, and a
//! `kiban platform serve` with card login.
//!
//! pcscd's socket is fixed (/run/pcscd), so there is one pcscd per machine: the steps run in
//! order in this one program (harness = false). It starts pcscd with a reader configuration of
//! its own (vpcd on a free port), and stops it by its process id, whatever happens.

use base64::Engine;
use kiban::identity::card::pcsc::PcscReaders;
use kiban::identity::card::{CardConnection, CardError, Jpki, Pin, PinStatus};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const KIBAN: &str = env!("CARGO_BIN_EXE_kiban");
const VPCD_DRIVER: &str = "/usr/lib/pcsc/drivers/serial/libifdvpcd.so";
/// The test card's PIN: a string that occurs nowhere else in the outputs scanned.
const PIN: &str = "7395";

/// A child process killed (and reaped) when dropped.
struct Process {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

impl Process {
    fn spawn(name: &'static str, cmd: &mut Command, log: PathBuf) -> Process {
        let out = std::fs::File::create(&log).unwrap();
        let child = cmd.stdout(out.try_clone().unwrap()).stderr(out).stdin(Stdio::null()).spawn().unwrap_or_else(|e| panic!("{name}: {e}"));
        Process { name, child, log }
    }
    fn stop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        // SIGTERM by process id, then wait; SIGKILL if it lingers.
        let _ = Command::new("kill").arg(self.child.id().to_string()).stderr(Stdio::null()).status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
    fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.stop();
        eprintln!("   stopped {} (pid {})", self.name, self.child.id());
    }
}

struct World {
    dir: tempfile::TempDir,
    vpcd_port: u16,
    /// Every output of kiban collected here, scanned for the PIN at the end.
    outputs: Vec<String>,
}

impl World {
    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    fn kiban(&mut self, args: &[&str]) -> Output {
        self.kiban_with(args, None)
    }

    /// Runs kiban, the PIN (if any) on file descriptor 3, with the APDU trace on.
    fn kiban_with(&mut self, args: &[&str], pin: Option<&str>) -> Output {
        let mut cmd = Command::new(KIBAN);
        cmd.args(args).env("RUST_LOG", "kiban=trace").env("KIBAN_LOGIN_DIR", self.path("logins")).current_dir(self.dir.path());
        if let Some(pin) = pin {
            let file = self.path("pin-input");
            std::fs::write(&file, format!("{pin}\n")).unwrap();
            // `--pin-fd 3` with the file open on descriptor 3, as a shell's `3<file` does.
            cmd.args(["--pin-fd", "3"]);
            let f = std::fs::File::open(&file).unwrap();
            use std::os::fd::IntoRawFd;
            use std::os::unix::process::CommandExt;
            let fd = f.into_raw_fd();
            // SAFETY: dup2 and close are async-signal-safe; the descriptor is ours.
            unsafe {
                cmd.pre_exec(move || {
                    // dup2 onto 3 leaves the copy open across exec; when the file already is
                    // descriptor 3, its close-on-exec flag is cleared instead.
                    let r = if fd == 3 {
                        libc_fcntl(3, 2 /* F_SETFD */, 0)
                    } else {
                        libc_dup2(fd, 3)
                    };
                    if r < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        let out = cmd.output().unwrap();
        self.outputs.push(format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)));
        out
    }
}

unsafe extern "C" {
    #[link_name = "dup2"]
    fn libc_dup2_raw(old: i32, new: i32) -> i32;
    #[link_name = "fcntl"]
    fn libc_fcntl_raw(fd: i32, cmd: i32, arg: i32) -> i32;
}

fn libc_fcntl(fd: i32, cmd: i32, arg: i32) -> i32 {
    // SAFETY: F_SETFD on a descriptor number; no memory is passed.
    unsafe { libc_fcntl_raw(fd, cmd, arg) }
}

fn libc_dup2(old: i32, new: i32) -> i32 {
    // SAFETY: dup2 takes two integers and has no memory effects visible to Rust.
    unsafe { libc_dup2_raw(old, new) }
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

fn wait_until(what: &str, timeout: Duration, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn free_port_pair() -> u16 {
    for _ in 0..50 {
        let a = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let p = a.local_addr().unwrap().port();
        if p < 65535 && std::net::TcpListener::bind(("0.0.0.0", p + 1)).is_ok() {
            return p;
        }
    }
    panic!("no two free consecutive ports");
}

/// The packages the real stack needs (scripts/test installs them; this is for a bare `cargo test`).
fn ensure_packages() {
    let missing: Vec<&str> = [("pcscd", "/usr/sbin/pcscd"), ("vsmartcard-vpcd", VPCD_DRIVER)]
        .into_iter()
        .filter(|(_, f)| !Path::new(f).exists())
        .map(|(p, _)| p)
        .collect();
    if missing.is_empty() {
        return;
    }
    eprintln!("installing {missing:?}");
    let ok = Command::new("apt-get")
        .args(["install", "-y", "-qq", "--no-install-recommends"])
        .args(&missing)
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "the card tests need {missing:?}: apt-get install {} (as root)", missing.join(" "));
}

fn start_pcscd(w: &World) -> Process {
    assert!(
        !Path::new("/run/pcscd/pcscd.comm").exists() || !Command::new("pidof").arg("pcscd").status().is_ok_and(|s| s.success()),
        "a pcscd is already running on this machine; the card tests start their own: stop it (systemctl stop pcscd.socket pcscd)"
    );
    let conf = w.path("reader.conf.d");
    std::fs::create_dir_all(&conf).unwrap();
    std::fs::write(
        conf.join("vpcd"),
        format!(
            "FRIENDLYNAME \"Virtual PCD\"\nDEVICENAME   /dev/null:0x{:04X}\nLIBPATH      {VPCD_DRIVER}\nCHANNELID    0x{:04X}\n",
            w.vpcd_port, w.vpcd_port
        ),
    )
    .unwrap();
    let p = Process::spawn("pcscd", Command::new("pcscd").args(["--foreground", "--info", "--config"]).arg(&conf), w.path("pcscd.log"));
    wait_until("pcscd's socket", Duration::from_secs(10), || Path::new("/run/pcscd/pcscd.comm").exists());
    wait_until("pcscd's readers", Duration::from_secs(10), || PcscReaders::establish().and_then(|r| r.list()).is_ok_and(|l| l.len() == 2));
    p
}

fn serve_card(w: &World) -> Process {
    let p = Process::spawn(
        "simulated card",
        Command::new(KIBAN)
            .args(["card", "simulate", "serve", "--vpcd"])
            .arg(format!("127.0.0.1:{}", w.vpcd_port))
            .arg("--dir")
            .arg(w.path("card")),
        w.path("simulator.log"),
    );
    wait_until("the card in the reader", Duration::from_secs(10), || {
        PcscReaders::establish().and_then(|r| r.list()).is_ok_and(|l| l.iter().any(|r| r.card_present))
    });
    p
}

fn connect() -> Jpki<Box<dyn CardConnection>> {
    let readers = PcscReaders::establish().unwrap();
    Jpki::open(Box::new(readers.connect(None, Duration::from_secs(5)).unwrap()) as Box<dyn CardConnection>).unwrap()
}

fn pin(p: &str) -> Pin {
    Pin::new(zeroize::Zeroizing::new(p.to_string())).unwrap()
}

fn step(name: &str) {
    eprintln!("card test: {name}");
}

fn main() {
    ensure_packages();
    let mut w = World { dir: tempfile::tempdir().unwrap(), vpcd_port: free_port_pair(), outputs: Vec::new() };

    step("without pcscd, a clear error");
    let out = w.kiban(&["card", "status"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("pcscd is not running"), "{}", text(&out));
    assert_eq!(PcscReaders::establish().err(), Some(CardError::NoService));

    let mut pcscd = start_pcscd(&w);

    step("readers listed, no card");
    let out = w.kiban(&["card", "status"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let t = text(&out);
    assert!(t.contains("Virtual PCD 00 00: empty") && t.contains("no card in reader"), "{t}");

    step("a simulated card, issued by the demo's test JPKI CA");
    let out = w.kiban(&["certs", "demo", "--out", "certs"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = w.kiban_with(&["card", "simulate", "create", "--dir", "card", "--issuer", "certs"], Some(PIN));
    assert!(out.status.success(), "{}", text(&out));
    let mut simulator = serve_card(&w);

    step("kiban card status: token, tries, certificate");
    let out = w.kiban(&["card", "status"]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(t.contains("Virtual PCD 00 00: card present (ATR 3BE000FF8131FE4514)"), "{t}");
    assert!(t.contains("token        JPKIAPICCTOKEN2") && t.contains("3 tries left"), "{t}");
    let expected = std::fs::read(w.path("card/auth.pem")).unwrap();
    let der = rustls_pemfile_der(&expected);
    let id = kiban::protocol::certificate_identity(&der).unwrap();
    assert!(t.contains(&format!("serial {}", id.serial)), "{t}");
    assert!(t.contains("valid "), "{t}");
    let out = w.kiban(&["card", "status", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["card"]["pin"]["tries_left"], 3, "{v}");

    step("kiban card certificate: the certificate, read in chunks, byte for byte");
    let out = w.kiban(&["card", "certificate", "--out", "auth-from-card.der"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(std::fs::read(w.path("auth-from-card.der")).unwrap(), der);
    assert!(der.len() > 256);

    step("connect, verify, sign through pcsc-lite; the signature verifies against the certificate");
    {
        let mut card = connect();
        assert_eq!(card.token_label().unwrap(), "JPKIAPICCTOKEN2");
        assert_eq!(card.auth_certificate().unwrap(), der);
        assert_eq!(card.sign_sha256(None, b"x").unwrap_err(), CardError::NotVerified);
        let signature = card.sign_sha256(Some(&pin(PIN)), b"kiban card test").unwrap();
        let cert_der = rustls::pki_types::CertificateDer::from(der.clone());
        let ee = webpki::EndEntityCert::try_from(&cert_der).unwrap();
        ee.verify_signature(webpki::ring::RSA_PKCS1_2048_8192_SHA256, b"kiban card test", &signature).unwrap();
        assert!(ee.verify_signature(webpki::ring::RSA_PKCS1_2048_8192_SHA256, b"another message", &signature).is_err());
        assert_eq!(card.pin_status().unwrap(), PinStatus::Verified);
    }

    step("another program's exclusive hold: sharing violation");
    {
        let ctx = pcsc::Context::establish(pcsc::Scope::User).unwrap();
        let name = ctx.list_readers_owned().unwrap().into_iter().next().unwrap();
        let exclusive = ctx.connect(&name, pcsc::ShareMode::Exclusive, pcsc::Protocols::ANY).unwrap();
        let out = w.kiban(&["card", "status"]);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        assert!(text(&out).contains("holds the card in `Virtual PCD 00 00` exclusively"), "{}", text(&out));
        exclusive.disconnect(pcsc::Disposition::LeaveCard).map_err(|(_, e)| e).unwrap();
    }

    step("another program resets the card: card reset, then the PIN must be verified again");
    {
        let mut card = connect();
        card.verify_pin(&pin(PIN)).unwrap();
        let ctx = pcsc::Context::establish(pcsc::Scope::User).unwrap();
        let name = ctx.list_readers_owned().unwrap().into_iter().next().unwrap();
        let other = ctx.connect(&name, pcsc::ShareMode::Shared, pcsc::Protocols::ANY).unwrap();
        other.disconnect(pcsc::Disposition::ResetCard).map_err(|(_, e)| e).unwrap();
        assert_eq!(card.token_label().unwrap_err(), CardError::CardReset("Virtual PCD 00 00".into()));
        let mut again = connect();
        assert_eq!(again.sign_sha256(None, b"m").unwrap_err(), CardError::NotVerified, "the reset dropped the verified PIN");
    }

    step("login against kiban platform serve: challenge signed by the card, and card-key TLS 1.2");
    let platform_toml = w.path("platform.toml");
    std::fs::write(
        &platform_toml,
        "listen = \"127.0.0.1:0\"\ndatabase = \"platform.sqlite\"\ncertificate = \"certs/server.pem\"\nkey = \"certs/server.key\"\n\
         client_ca = \"certs/ca.pem\"\n[login]\njpki_ca = \"certs/jpki-ca.pem\"\nrequire_for = [\"records\", \"replays\"]\n",
    )
    .unwrap();
    let mut platform = Process::spawn(
        "platform",
        Command::new(KIBAN).args(["platform", "serve", "--config"]).arg(&platform_toml).env("RUST_LOG", "kiban=trace"),
        w.path("platform.log"),
    );
    let mut url = String::new();
    wait_until("the platform", Duration::from_secs(30), || {
        url = platform.output().lines().find_map(|l| l.split("listening on ").nth(1).map(str::to_string)).unwrap_or_default();
        !url.is_empty()
    });
    let terminal = ["--ca", "certs/ca.pem", "--certificate", "certs/terminal-141309.pem", "--key", "certs/terminal-141309.key"];
    let mut args = vec!["login", "--platform", url.as_str()];
    args.extend(terminal);
    let out = w.kiban_with(&args, Some(PIN));
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains(&format!("as the holder of certificate {}", id.serial)), "{}", text(&out));
    let token_file = std::fs::read_dir(w.path("logins")).unwrap().next().unwrap().unwrap().path();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&token_file).unwrap().permissions().mode() & 0o777, 0o600);
    assert_eq!(std::fs::metadata(w.path("logins")).unwrap().permissions().mode() & 0o777, 0o700);
    let saved: serde_json::Value = serde_json::from_slice(&std::fs::read(&token_file).unwrap()).unwrap();
    let token = saved["token"].as_str().unwrap().to_string();

    // The records view needs the login: without the token 401, with it 200.
    let tls = kiban::identity::tls::client_config(
        &w.path("certs/ca.pem"),
        Some(
            kiban::identity::tls::TerminalIdentity::from_pem(&w.path("certs/terminal-141309.pem"), &w.path("certs/terminal-141309.key"))
                .unwrap(),
        ),
    )
    .unwrap();
    let mut client = kiban::publish::PlatformClient::new(&url, tls, kiban::publish::RetryPolicy::default()).unwrap();
    let e = client.records("141309", "recipient", "0000000001").unwrap_err();
    assert!(matches!(&e, kiban::publish::ClientError::Rejected { status: 401, code, .. } if code == "login_required"), "{e}");
    client.set_bearer(Some("not-a-token".into()));
    let e = client.records("141309", "recipient", "0000000001").unwrap_err();
    assert!(matches!(&e, kiban::publish::ClientError::Rejected { status: 401, code, .. } if code == "bad_token"), "{e}");
    client.set_bearer(Some(token.clone()));
    let records = client.records("141309", "recipient", "0000000001").unwrap();
    assert_eq!(records.version, 0);

    // The token is bound to the terminal that logged in: another terminal's certificate cannot use it.
    let other_tls = kiban::identity::tls::client_config(
        &w.path("certs/ca.pem"),
        Some(
            kiban::identity::tls::TerminalIdentity::from_pem(&w.path("certs/terminal-131011.pem"), &w.path("certs/terminal-131011.key"))
                .unwrap(),
        ),
    )
    .unwrap();
    let mut other = kiban::publish::PlatformClient::new(&url, other_tls, kiban::publish::RetryPolicy::default()).unwrap();
    other.set_bearer(Some(token.clone()));
    let e = other.records("131011", "recipient", "0000000001").unwrap_err();
    assert!(matches!(&e, kiban::publish::ClientError::Rejected { status: 401, code, .. } if code == "token_of_another_terminal"), "{e}");
    // A challenge issued to one terminal cannot be answered through another.
    let foreign = other.challenge().unwrap();
    let nonce = base64::engine::general_purpose::STANDARD.decode(&foreign.nonce).unwrap();
    let signed = connect().sign_sha256(Some(&pin(PIN)), &kiban::protocol::login_message(&nonce)).unwrap();
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let answer = kiban::protocol::Login { nonce: Some(foreign.nonce.clone()), certificate: Some(b64(&der)), signature: Some(b64(&signed)) };
    let e = client.login(&answer).unwrap_err();
    assert!(matches!(&e, kiban::publish::ClientError::Rejected { status: 401, code, .. } if code == "unknown_challenge"), "{e}");

    // A challenge answered with a signature over another nonce is refused.
    let challenge = client.challenge().unwrap();
    let forged = {
        let mut card = connect();
        card.sign_sha256(Some(&pin(PIN)), &kiban::protocol::login_message(&[0u8; 32])).unwrap()
    };
    let login =
        kiban::protocol::Login { nonce: Some(challenge.nonce.clone()), certificate: Some(b64(&der)), signature: Some(b64(&forged)) };
    let e = client.login(&login).unwrap_err();
    assert!(matches!(&e, kiban::publish::ClientError::Rejected { status: 401, code, .. } if code == "bad_signature"), "{e}");
    let e = client.login(&login).unwrap_err();
    assert!(
        matches!(&e, kiban::publish::ClientError::Rejected { status: 401, code, .. } if code == "unknown_challenge"),
        "a nonce is single use: {e}"
    );

    // Card-key TLS: the platform sees the card's certificate in the handshake.
    let out = w.kiban_with(&["login", "--platform", url.as_str(), "--ca", "certs/ca.pem", "--card-tls"], Some(PIN));
    assert!(out.status.success(), "{}", text(&out));
    wait_until("the platform's log of the card login", Duration::from_secs(5), || platform.output().contains("card_tls=true"));
    assert!(platform.output().contains(&format!("person={}", id.serial)), "{}", platform.output());

    // OpenSC looks at everything, EF 0001 included: its selections are kept out of kiban's.
    let log = w.path("card/selections.log");
    let kiban_before = std::fs::read_to_string(&log).unwrap();

    step("cross-check: OpenSC recognises the simulated card as a JPKI card and lists its certificates");
    if Command::new("pkcs15-tool").arg("--version").output().is_ok() {
        let out = Command::new("opensc-tool").arg("-n").output().unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout).lines().last(), Some("jpki"), "{}", text(&out));
        let out = Command::new("pkcs15-tool").arg("--list-certificates").output().unwrap();
        let t = text(&out);
        assert!(t.contains("X.509 Certificate [User Authentication Certificate]") && t.contains("Path           : 000a"), "{t}");
    } else {
        eprintln!("   OpenSC is not installed (apt-get install opensc): cross-check skipped");
    }
    let opensc_end = std::fs::read_to_string(&log).unwrap().len();

    step("PIN lockout: the counter goes down, blocks, and stays blocked for the right PIN");
    let mut card_tls = vec!["login", "--platform", url.as_str(), "--ca", "certs/ca.pem", "--card-tls"];
    let out = w.kiban_with(&card_tls, Some("0000"));
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("wrong PIN: 2 tries left"), "{}", text(&out));
    let out = w.kiban_with(&card_tls, Some("0001"));
    assert!(text(&out).contains("wrong PIN: 1 tries left"), "{}", text(&out));
    let out = w.kiban_with(&card_tls, Some("0002"));
    assert!(text(&out).contains("the auth PIN is blocked"), "{}", text(&out));
    let out = w.kiban(&["card", "status"]);
    assert!(text(&out).contains("BLOCKED"), "{}", text(&out));
    card_tls.push("--wait");
    card_tls.push("1");
    let out = w.kiban_with(&card_tls, Some(PIN));
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("the auth PIN is blocked"), "{}", text(&out));

    step("the card removed mid-session");
    {
        let mut card = connect();
        assert_eq!(card.token_label().unwrap(), "JPKIAPICCTOKEN2");
        simulator.stop();
        wait_until("the reader to see the card gone", Duration::from_secs(10), || {
            PcscReaders::establish().and_then(|r| r.list()).is_ok_and(|l| l.iter().all(|r| !r.card_present))
        });
        let e = card.token_label().unwrap_err();
        assert_eq!(e, CardError::CardRemoved("Virtual PCD 00 00".into()));
        assert_eq!(e.to_string(), "the card was removed from `Virtual PCD 00 00`");
    }
    let out = w.kiban(&["card", "status"]);
    assert!(text(&out).contains("no card in reader"), "{}", text(&out));

    step("kiban never selected the card-info application or the sign certificate");
    let selections = kiban_before + &std::fs::read_to_string(&log).unwrap()[opensc_end..];
    assert!(selections.contains("AID D392F000260100000001"), "{selections}");
    assert!(!selections.contains("D3921000310001010408") && !selections.contains("EF 0001"), "{selections}");

    step("the PIN appears in no output");
    platform.stop();
    let mut all = w.outputs.clone();
    all.push(platform.output());
    all.push(simulator.output());
    let hex_pin = hex::encode_upper(PIN);
    for (i, o) in all.iter().enumerate() {
        assert!(!shows(o, PIN), "output {i} shows the PIN:\n{o}");
        assert!(!shows(&o.to_uppercase(), &hex_pin), "output {i} shows the PIN in hex:\n{o}");
    }
    assert!(all.iter().any(|o| o.contains("Lc=04 <4 bytes masked>")), "the APDU trace ran and masked the VERIFY");
    assert!(shows("pin=7395\n", "7395") && shows("\"7395\"", "7395") && !shows("04:22:25.557395Z", "7395"), "the scan itself");

    pcscd.stop();
    step("pcscd stopped: a clear error again");
    let out = w.kiban(&["card", "status"]);
    assert!(text(&out).contains("pcscd is not running"), "{}", text(&out));
    drop(pcscd);
    eprintln!("card tests: ok");
}

/// Whether `needle` stands in `text` as a token of its own. Four digits also occur inside
/// timestamps and serial numbers by chance (`…25.557395Z`); a PIN that leaks stands alone
/// (`pin=7395`, `7395\n`, `"7395"`).
fn shows(text: &str, needle: &str) -> bool {
    text.match_indices(needle).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + needle.len()..].chars().next();
        !before.is_some_and(|c| c.is_ascii_alphanumeric()) && !after.is_some_and(|c| c.is_ascii_alphanumeric())
    })
}

fn rustls_pemfile_der(pem: &[u8]) -> Vec<u8> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::CertificateDer::from_pem_slice(pem).unwrap().to_vec()
}
