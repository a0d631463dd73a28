//! A PostgreSQL server for the ledger tests: `KIBAN_TEST_PG_URL` when it is set, otherwise a
//! throwaway server from Debian's `postgresql` package (which `scripts/test` installs): initdb
//! into a temporary directory, `postgres` on a free loopback port, stopped and removed by a
//! watchdog when the test process ends. Each test gets a database of its own.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

fn bin_dir() -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|rd| rd.flatten().map(|e| e.path().join("bin")).filter(|p| p.join("initdb").exists()).collect())
        .unwrap_or_default();
    dirs.sort_by_key(|p| p.parent().and_then(|v| v.file_name()).and_then(|v| v.to_str()).and_then(|v| v.parse::<u32>().ok()).unwrap_or(0));
    dirs.pop().unwrap_or_else(|| {
        panic!("PostgreSQL is not installed: run the tests with scripts/test (it installs Debian's `postgresql`) or set KIBAN_TEST_PG_URL")
    })
}

/// Runs as the `postgres` user when we are root (PostgreSQL refuses to run as root).
fn as_server_user(program: &Path) -> Command {
    let root = Command::new("id").arg("-u").output().map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0").unwrap_or(false);
    if root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

fn start() -> String {
    let bin = bin_dir();
    let dir = PathBuf::from(format!("/tmp/kiban-test-pg-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("pg dir");
    let root = Command::new("id").arg("-u").output().map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0").unwrap_or(false);
    if root {
        let st = Command::new("chown").args(["postgres:postgres"]).arg(&dir).status().expect("chown");
        assert!(st.success(), "chown the PostgreSQL test directory");
    }
    let data = dir.join("data");
    let out = as_server_user(&bin.join("initdb"))
        .args(["-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync", "-D"])
        .arg(&data)
        .output()
        .expect("initdb");
    assert!(out.status.success(), "initdb: {}", String::from_utf8_lossy(&out.stderr));
    let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("free port");
    // The watchdog stops the server (and removes its files) once this test process is gone.
    let server = format!(
        "{runas}{bin}/postgres -D {data} -p {port} -k {dir} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off",
        runas = if root { "runuser -u postgres -- " } else { "" },
        bin = bin.display(),
        data = data.display(),
        dir = dir.display(),
    );
    let watchdog = format!(
        "{server} >{dir}/log 2>&1 & pg=$!; while kill -0 {me} 2>/dev/null && kill -0 $pg 2>/dev/null; do sleep 1; done; kill -TERM $pg 2>/dev/null; wait $pg; rm -rf {dir}",
        dir = dir.display(),
        me = std::process::id()
    );
    // Not waited for: the watchdog outlives this process on purpose.
    #[allow(clippy::zombie_processes)]
    let _watchdog = Command::new("setsid")
        .args(["sh", "-c", &watchdog])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start postgres");
    let url = format!("postgres://postgres@127.0.0.1:{port}/postgres");
    for _ in 0..300 {
        if connect(&url).is_ok() {
            return url;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("PostgreSQL did not start: {}", std::fs::read_to_string(dir.join("log")).unwrap_or_default());
}

fn connect(url: &str) -> Result<(), sqlx::Error> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(sqlx::Error::Io)?;
    rt.block_on(async {
        use sqlx::ConnectOptions;
        let opts: sqlx::postgres::PgConnectOptions = url.parse()?;
        let c = opts.connect().await?;
        drop(c);
        Ok(())
    })
}

/// The server's URL (its `postgres` database).
pub fn server() -> &'static str {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| std::env::var("KIBAN_TEST_PG_URL").ok().filter(|u| !u.is_empty()).unwrap_or_else(start))
}

/// A new, empty database for one test; its URL.
pub fn database(name: &str) -> String {
    let server = server();
    let db = format!("kiban_{name}_{}", std::process::id());
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    rt.block_on(async {
        use sqlx::ConnectOptions;
        let opts: sqlx::postgres::PgConnectOptions = server.parse().expect("url");
        let mut c = opts.connect().await.expect("connect to PostgreSQL");
        sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {db}"))).execute(&mut c).await.expect("drop");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {db}"))).execute(&mut c).await.expect("create");
    });
    match server.rfind('/') {
        Some(i) if !server[..i].ends_with('/') => format!("{}/{db}", &server[..i]),
        _ => format!("{server}/{db}"),
    }
}
