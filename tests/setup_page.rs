//! The GitHub App manifest flow, driven by a real headless Chromium through chromedriver
//! (issue 20): `greenlight serve` without an App prints the setup address; the page's button
//! posts the manifest to (the fake) GitHub, whose redirect brings the browser back; the
//! credentials land in `.env` with mode 0600 and are used at once, without a restart: a
//! webhook signed with the new secret is acted on with the new App's key. The page then, and
//! without its token before, answers 404.
//!
//! Chromium and chromedriver come from the distribution (`apt-get install chromium
//! chromium-driver`; `.ci/run` installs them). Without them this test fails and says so.
//! With `GREENLIGHT_SCREENSHOT=1` it saves the setup page as `docs/setup.png` (the README's
//! Quick start shows it).

mod common;

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::fake_github::FakeGitHub;
use common::fake_github_apps::{NEW_APP_ID, NEW_APP_SLUG, NEW_WEBHOOK_SECRET};
use common::flow::POLICY;
use common::github_events::pull_request;
use common::wait_ready;
use fantoccini::{ClientBuilder, Locator};
use greenlight::forge::github::requirements::{EVENTS, PERMISSIONS};
use greenlight::server::signature::github_signature;
use serde_json::{Value, json};

/// A child process killed when the test ends, pass or fail.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("port")
        .local_addr()
        .expect("addr")
        .port()
}

/// The first of these on the PATH or at its Debian path.
fn find(names: &[&str]) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    names.iter().find_map(|n| {
        std::env::split_paths(&path)
            .map(|d| d.join(n))
            .chain([std::path::Path::new("/usr/bin").join(n)])
            .find(|p| p.is_file())
    })
}

const INSTALL_HINT: &str = "this test drives a real headless Chromium: install it and its \
    driver from the distribution's packages (Debian/Ubuntu: `sudo apt-get install -y chromium \
    chromium-driver`), or run `.ci/run`, which does";

/// chromedriver on a free port, and a WebDriver session of headless Chromium.
async fn browser() -> (Killed, fantoccini::Client) {
    let driver =
        find(&["chromedriver"]).unwrap_or_else(|| panic!("chromedriver not found: {INSTALL_HINT}"));
    let chromium = find(&["chromium", "chromium-browser", "google-chrome"])
        .unwrap_or_else(|| panic!("Chromium not found: {INSTALL_HINT}"));
    let port = free_port();
    let child = Command::new(driver)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    let child = Killed(child);
    let caps: serde_json::Map<String, Value> = serde_json::from_value(json!({
        "goog:chromeOptions": {
            "binary": chromium,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1024,820", "--no-first-run"],
        }
    }))
    .expect("caps");
    let url = format!("http://127.0.0.1:{port}");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        // chromedriver speaks plain HTTP on the loopback: no TLS.
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        match ClientBuilder::new(connector)
            .capabilities(caps.clone())
            .connect(&url)
            .await
        {
            Ok(client) => return (child, client),
            Err(e) if std::time::Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("cannot start a Chromium session through chromedriver: {e}"),
        }
    }
}

/// `greenlight serve` without an App, in `dir`; its setup address from standard output.
fn serve(dir: &std::path::Path, port: u16, gh: &FakeGitHub) -> (Killed, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_greenlight"))
        .arg("serve")
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env(
            "DATABASE_URL",
            format!("sqlite://{}", dir.join("greenlight.db").display()),
        )
        .env("GREENLIGHT_LISTEN", format!("127.0.0.1:{port}"))
        .env("GITHUB_API_URL", gh.url())
        .env("GITHUB_URL", gh.url())
        .env("GREENLIGHT_RECONCILE_SECS", "0")
        .env("GREENLIGHT_RETRY_BASE_MS", "50")
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start greenlight");
    let stdout = child.stdout.take().expect("stdout");
    let stderr = child.stderr.take().expect("stderr");
    // Logs are kept apart, to check that the token and secrets never reach them.
    let log_path = dir.join("serve.log");
    std::thread::spawn(move || {
        let mut log = std::fs::File::create(log_path).expect("log");
        let _ = std::io::copy(&mut BufReader::new(stderr), &mut log);
    });
    let mut lines = BufReader::new(stdout).lines();
    let line = lines
        .next()
        .expect("serve printed a line")
        .expect("read stdout");
    std::thread::spawn(move || for _ in lines {});
    let url = line
        .split_whitespace()
        .find(|w| w.contains("/setup?token="))
        .unwrap_or_else(|| panic!("no setup address in {line:?}"))
        .to_owned();
    (Killed(child), url)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_manifest_flow_creates_the_app_and_uses_it_without_a_restart() {
    let gh = FakeGitHub::start(Some(POLICY)).await;
    let dir = tempfile::tempdir().expect("dir");
    let port = free_port();
    let (_serve, setup_url) = serve(dir.path(), port, &gh);
    wait_ready(port).await;
    let base = format!("http://127.0.0.1:{port}");
    assert_eq!(
        setup_url.split("/setup?").next(),
        Some(base.as_str()),
        "on its own host"
    );
    let token = setup_url.split("token=").nth(1).expect("token").to_owned();
    assert!(token.len() >= 32, "an unguessable token");

    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("http");
    let status = |url: String| {
        let http = http.clone();
        async move { http.get(url).send().await.expect("get").status().as_u16() }
    };
    assert_eq!(status(format!("{base}/setup")).await, 404, "no token");
    assert_eq!(
        status(format!("{base}/setup?token=wrong{token}")).await,
        404,
        "wrong token"
    );
    assert_eq!(
        status(format!("{base}/setup/callback?code=v1code1&state=wrong")).await,
        404,
        "a redirect with another state"
    );

    let (_driver, browser) = browser().await;
    browser.goto(&setup_url).await.expect("open the setup page");
    if std::env::var_os("GREENLIGHT_SCREENSHOT").is_some() {
        let png = browser.screenshot().await.expect("screenshot");
        std::fs::write(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/setup.png"), png)
            .expect("save docs/setup.png");
    }
    let text = browser
        .find(Locator::Css("body"))
        .await
        .expect("body")
        .text()
        .await
        .expect("text");
    assert!(text.contains(&format!("{base}/webhooks/github")), "{text}");

    // For an organisation: typed on the page, then the button.
    browser
        .find(Locator::Css("#org"))
        .await
        .expect("org field")
        .send_keys("acme")
        .await
        .expect("type");
    browser
        .find(Locator::Css("#use-org"))
        .await
        .expect("org button")
        .click()
        .await
        .expect("click");
    let create = browser
        .wait()
        .for_element(Locator::XPath(
            "//button[@id='create' and contains(., 'organization acme')]",
        ))
        .await
        .expect("the button names the organisation");
    create.click().await.expect("click create");
    let install = browser
        .wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Css("#install"))
        .await
        .expect("the page after GitHub's redirect");
    assert_eq!(
        install.attr("href").await.expect("href").as_deref(),
        Some(format!("https://github.com/apps/{NEW_APP_SLUG}/installations/new").as_str())
    );
    browser.close().await.expect("close the browser");

    // The manifest GitHub received: exactly the required list, and this host's URLs.
    let (org, state, manifest) = gh
        .with(|m| m.apps.posted.clone())
        .pop()
        .expect("a manifest");
    assert_eq!(org.as_deref(), Some("acme"));
    assert_eq!(state, token, "state is bound to the token");
    let permissions: serde_json::Map<String, Value> = PERMISSIONS
        .iter()
        .map(|p| (p.key.to_owned(), json!(p.access.as_str())))
        .collect();
    assert_eq!(manifest["default_permissions"], Value::Object(permissions));
    let events: Vec<&str> = EVENTS.iter().map(|e| e.key).collect();
    assert_eq!(manifest["default_events"], json!(events));
    assert_eq!(
        manifest["hook_attributes"]["url"],
        format!("{base}/webhooks/github")
    );
    assert_eq!(manifest["redirect_url"], format!("{base}/setup/callback"));
    assert_eq!(manifest["public"], false);
    assert!(
        manifest["description"]
            .as_str()
            .is_some_and(|d| !d.is_empty())
    );
    assert_eq!(gh.with(|m| m.apps.conversions), 1);

    // Stored for the next start, readable by the service's user only.
    let env = dir.path().join(".env");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&env).expect(".env").permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "mode {mode:o}");
    }
    let stored: Vec<(String, String)> = dotenvy::from_path_iter(&env)
        .expect(".env parses")
        .map(|r| r.expect("entry"))
        .collect();
    let value = |k: &str| {
        stored
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(value("GITHUB_APP_ID"), Some(NEW_APP_ID.to_string()));
    assert_eq!(
        value("GITHUB_WEBHOOK_SECRET").as_deref(),
        Some(NEW_WEBHOOK_SECRET)
    );
    assert!(value("GITHUB_PRIVATE_KEY").is_some_and(|k| k.contains("PRIVATE KEY")));

    // Used without a restart: a webhook signed with the new secret is verified and acted on,
    // with the new App's key; the old (unset) secret is gone, another is refused.
    let body =
        serde_json::to_vec(&pull_request("opened", 7, &"a".repeat(40), "octocat")).expect("body");
    let deliver = |secret: &str, id: &str| {
        http.post(format!("{base}/webhooks/github"))
            .header("content-type", "application/json")
            .header("x-github-event", "pull_request")
            .header("x-github-delivery", id)
            .header("x-hub-signature-256", github_signature(secret, &body))
            .body(body.clone())
            .send()
    };
    assert_eq!(
        deliver("not-the-secret", "d-0")
            .await
            .expect("send")
            .status(),
        401
    );
    assert_eq!(
        deliver(NEW_WEBHOOK_SECRET, "d-1")
            .await
            .expect("send")
            .status(),
        202
    );
    let acted = gh
        .wait_for(Duration::from_secs(20), |m| {
            m.calls
                .iter()
                .find(|c| c.method == "POST" && c.path.ends_with("/check-runs"))
                .cloned()
        })
        .await;
    assert!(
        acted.is_some(),
        "the webhook was acted on: {:?}",
        gh.calls()
    );
    let issuers = gh.with(|m| m.apps.jwt_issuers.clone());
    assert!(
        !issuers.is_empty() && issuers.iter().all(|i| *i == NEW_APP_ID.to_string()),
        "{issuers:?}"
    );

    // Gone once configured, token or not.
    assert_eq!(status(setup_url.clone()).await, 404, "after setup");
    assert_eq!(status(format!("{base}/setup")).await, 404);
    assert_eq!(
        status(format!("{base}/setup/callback?code=v1code1&state={token}")).await,
        404,
        "a second redirect"
    );
    assert_eq!(gh.with(|m| m.apps.conversions), 1, "no second exchange");

    // Neither the token nor a secret in the logs.
    let log = std::fs::read_to_string(dir.path().join("serve.log")).expect("log");
    for secret in [
        token.as_str(),
        NEW_WEBHOOK_SECRET,
        "1726be1638095a19edd134c77bde3aa2ece1e5d8",
        "PRIVATE KEY",
    ] {
        assert!(!log.contains(secret), "a secret in the logs: {log}");
    }
    assert!(log.contains("GitHub App created"), "{log}");
}

/// A code GitHub refuses (expired, used, made up) is answered 502 with the reason, stores
/// nothing, and leaves the page open for another try.
#[tokio::test]
async fn a_refused_code_leaves_setup_open() {
    let gh = FakeGitHub::start(None).await;
    let dir = tempfile::tempdir().expect("dir");
    let port = free_port();
    let (_serve, setup_url) = serve(dir.path(), port, &gh);
    wait_ready(port).await;
    let token = setup_url.split("token=").nth(1).expect("token").to_owned();
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let r = http
        .get(format!(
            "{base}/setup/callback?code=v1unknown&state={token}"
        ))
        .send()
        .await
        .expect("callback");
    assert_eq!(r.status(), 502);
    let page = r.text().await.expect("page");
    assert!(page.contains("GitHub refused the code (404)"), "{page}");
    assert!(!dir.path().join(".env").exists(), "nothing stored");
    let again = http.get(&setup_url).send().await.expect("page");
    assert_eq!(again.status(), 200, "still open");
    let html = again.text().await.expect("html");
    assert!(
        html.contains("Create the GitHub App on your personal account"),
        "{html}"
    );
    assert!(
        html.contains(
            &format!("{}/settings/apps/new?state={token}", gh.url()).replace('/', "&#x2f;")
        ) || html.contains(&format!("{}/settings/apps/new?state={token}", gh.url())),
        "{html}"
    );
    let tried: Vec<String> = gh
        .calls()
        .into_iter()
        .filter(|c| c.method == "POST")
        .map(|c| c.path)
        .collect();
    assert_eq!(tried, ["/app-manifests/v1unknown/conversions"]);
}
