//! `greenlight setup gitlab` against the fake GitLab (issue 20): the webhook is created once,
//! with the triggers Greenlight needs, SSL verification on and a secret token stored in `.env`
//! (mode 0600); a second run updates it with the same secret (read back from `.env`), never
//! a second hook. A token without `api` and a project whose pipeline variables need a higher
//! role each get their ✗ with the fix, and exit 1.

mod common;

use std::process::{Command, Output};

use common::fake_gitlab::{FakeGitLab, TOKEN};
use serde_json::json;

const PUBLIC: &str = "https://greenlight.example.com";

fn setup(dir: &std::path::Path, gl: &FakeGitLab) -> Output {
    Command::new(env!("CARGO_BIN_EXE_greenlight"))
        .args(["setup", "gitlab", "--project", "acme/widgets"])
        .current_dir(dir)
        .env_clear()
        .env("GITLAB_URL", gl.url())
        .env("GITLAB_TOKEN", TOKEN)
        .env("GREENLIGHT_PUBLIC_URL", PUBLIC)
        .env("RUST_LOG", "error")
        .output()
        .expect("run greenlight setup gitlab")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

async fn maintainer_fake() -> FakeGitLab {
    let gl = FakeGitLab::start(None).await;
    gl.with(|m| {
        let me = m.me.0;
        m.members.insert(me, 40);
    });
    gl
}

#[tokio::test]
async fn the_hook_is_created_once_then_updated() {
    let gl = maintainer_fake().await;
    let dir = tempfile::tempdir().expect("dir");

    let first = setup(dir.path(), &gl);
    let out = text(&first);
    assert!(first.status.success(), "{out}");
    assert!(out.contains("✓ created webhook"), "{out}");
    assert!(!out.contains('✗'), "{out}");
    assert!(out.contains("What remains for you to do"), "{out}");

    let env = dir.path().join(".env");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&env).expect(".env").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let stored: Vec<(String, String)> = dotenvy::from_path_iter(&env)
        .expect("parse")
        .map(|r| r.expect("entry"))
        .collect();
    let secret = stored
        .iter()
        .find(|(k, _)| k == "GITLAB_WEBHOOK_SECRET")
        .map(|(_, v)| v.clone())
        .expect("the secret token is stored");
    assert!(secret.len() >= 32);
    assert!(!out.contains(&secret), "the secret is never printed");

    let hooks = gl.hooks();
    assert_eq!(hooks.len(), 1, "{hooks:?}");
    let hook = &hooks[0];
    assert_eq!(hook["url"], format!("{PUBLIC}/webhooks/gitlab"));
    assert_eq!(hook["token"], json!(secret));
    for trigger in [
        "merge_requests_events",
        "note_events",
        "pipeline_events",
        "push_events",
        "deployment_events",
        "enable_ssl_verification",
    ] {
        assert_eq!(hook[trigger], true, "{trigger}");
    }
    assert_eq!(hook["job_events"], false);

    // Again, from the same directory: `.env` gives the secret back, the hook is updated.
    let second = setup(dir.path(), &gl);
    let out = text(&second);
    assert!(second.status.success(), "{out}");
    assert!(out.contains("✓ updated webhook"), "{out}");
    let hooks = gl.hooks();
    assert_eq!(hooks.len(), 1, "not duplicated: {hooks:?}");
    assert_eq!(hooks[0]["token"], json!(secret), "the same secret token");
    let writes: Vec<(String, String)> = gl
        .calls()
        .into_iter()
        .filter(|c| c.method != "GET")
        .map(|c| (c.method, c.path))
        .collect();
    let id = hooks[0]["id"].as_u64().expect("id");
    assert_eq!(
        writes,
        [
            ("POST".to_owned(), "/hooks".to_owned()),
            ("PUT".to_owned(), format!("/hooks/{id}")),
        ]
    );
}

#[tokio::test]
async fn a_token_without_api_and_restricted_variables_are_each_named_with_their_fix() {
    let gl = maintainer_fake().await;
    gl.with(|m| {
        m.setup.scopes = Some(vec!["read_api".into()]);
        m.setup.variables = Some((true, "owner".into()));
    });
    let dir = tempfile::tempdir().expect("dir");
    let run = setup(dir.path(), &gl);
    let out = text(&run);
    assert_eq!(run.status.code(), Some(1), "{out}");
    let failed: Vec<&str> = out.lines().filter(|l| l.starts_with('✗')).collect();
    assert_eq!(
        failed,
        [
            "✗ token \"greenlight\" has scopes [read_api]",
            "✗ the minimum role to use pipeline variables is owner, above the token's",
        ],
        "{out}"
    );
    assert!(
        out.contains("fix: create a token with the api scope and set it as GITLAB_TOKEN"),
        "{out}"
    );
    assert!(
        out.contains(
            "fix: Settings → CI/CD → Variables → Minimum role to use pipeline variables: Maintainer (or lower)"
        ),
        "{out}"
    );
}
