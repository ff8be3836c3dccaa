//! `greenlight serve` as a real process, for the tests that kill it, restart it or run several
//! (`tests/crash.rs`, `tests/two_replicas.rs`, `tests/rate_limits.rs`): the App and webhook
//! settings they share, a loopback port of its own kept across restarts, SIGKILL on demand,
//! and a kill on drop, so a failed assertion leaves no process behind (it would hold
//! PostgreSQL connections the next run needs).

use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use super::GITHUB_SECRET;
use super::flow::APP_ID;

/// One `greenlight serve` process (or none, between a kill and its restart).
pub struct Serve {
    child: Mutex<Option<Child>>,
    /// The loopback port it listens on, the same after every restart.
    pub port: u16,
    db_url: String,
    api_url: String,
    settings: Vec<(String, String)>,
    restarts: AtomicU64,
}

impl Serve {
    /// A process for the database `db_url` and the (fake) GitHub at `api_url`, on a free
    /// port, with fast retries (50 ms), short job leases (2 s), the reconciler off and errors
    /// only in its log. Not started yet ([`Self::start`]).
    pub fn new(db_url: &str, api_url: &str) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        Self {
            child: Mutex::new(None),
            port,
            db_url: db_url.to_owned(),
            api_url: api_url.to_owned(),
            settings: Vec::new(),
            restarts: AtomicU64::new(0),
        }
    }

    /// One more setting (`GREENLIGHT_MAX_ATTEMPTS`, …), or another value for a default one.
    pub fn with(mut self, name: &str, value: &str) -> Self {
        self.settings.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Starts the process (after a [`Self::kill`], a new one on the same database and port).
    pub fn start(&self) {
        let key = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/test-app-key.pem"
        );
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_greenlight"));
        cmd.arg("serve")
            .env_clear()
            .env("DATABASE_URL", &self.db_url)
            .env("GREENLIGHT_LISTEN", format!("127.0.0.1:{}", self.port))
            .env("GITHUB_WEBHOOK_SECRET", GITHUB_SECRET)
            .env("GITHUB_APP_ID", APP_ID.to_string())
            .env("GITHUB_PRIVATE_KEY", key)
            .env("GITHUB_API_URL", &self.api_url)
            .env("GREENLIGHT_RETRY_BASE_MS", "50")
            .env("GREENLIGHT_JOB_LEASE_SECS", "2")
            .env("GREENLIGHT_RECONCILE_SECS", "0")
            .env("RUST_LOG", "error");
        for (name, value) in &self.settings {
            cmd.env(name, value);
        }
        let child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start greenlight");
        let old = self.child.lock().expect("child").replace(child);
        assert!(old.is_none(), "started twice without a kill");
    }

    /// SIGKILL (`Child::kill` on Unix), then reaps it; nothing when it is not running.
    pub fn kill(&self) {
        if let Some(mut c) = self.child.lock().expect("child").take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// [`Self::kill`], then [`Self::start`] again at once: a crash and its restart.
    pub fn restart(&self) {
        self.kill();
        self.restarts.fetch_add(1, Ordering::Relaxed);
        self.start();
    }

    /// How many times [`Self::restart`] killed and restarted it.
    pub fn restarts(&self) -> u64 {
        self.restarts.load(Ordering::Relaxed)
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        self.kill();
    }
}
