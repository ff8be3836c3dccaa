//! The `greenlight` binary as people run it: exit codes and what it prints.

use std::process::{Command, Output};

fn greenlight(args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_greenlight"));
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.output().expect("run greenlight")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn check_config_accepts_the_example_and_names_the_line_of_an_error() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/greenlight.example.toml");
    let ok = greenlight(&["check-config", example], &[]);
    assert!(ok.status.success(), "{}", text(&ok));
    assert!(text(&ok).contains("valid"), "{}", text(&ok));

    let dir = tempfile::tempdir().expect("tempdir");
    let bad = dir.path().join("greenlight.toml");
    std::fs::write(&bad, "[pipeline]\nworkflow = \"ci.yml\"\n[deploy]\nworkflow = \"deploy.yml\"\nenviroment = \"prod\"\n")
        .expect("write");
    let out = greenlight(&["check-config", bad.to_str().expect("path")], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains("greenlight.toml:5:1: unknown field `enviroment`"),
        "{}",
        text(&out)
    );
}

#[test]
fn audit_on_an_empty_database_prints_the_header() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("g.db").display());
    let migrated = greenlight(&["migrate"], &[("DATABASE_URL", &url)]);
    assert!(migrated.status.success(), "{}", text(&migrated));
    let out = greenlight(
        &["audit", "--repo", "acme/widgets"],
        &[("DATABASE_URL", &url)],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("when (UTC)"),
        "{}",
        text(&out)
    );
}

/// `audit` and `deliveries` never create a SQLite file: a typo in the URL is an error (exit 2),
/// not an empty table. `--database-url` is global: before or after the subcommand.
/// A command line: its arguments and the environment variables it runs with.
type Run<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)]);

/// A command line, and the setting its error must name.
type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);

#[test]
fn read_only_commands_leave_a_missing_sqlite_file_missing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("typo.db");
    let url = format!("sqlite://{}", path.display());
    let runs: [Run<'_>; 5] = [
        (&["audit"], &[("DATABASE_URL", &url)]),
        (&["deliveries"], &[("DATABASE_URL", &url)]),
        (&["deliveries", "--dead", "--database-url", &url], &[]),
        (&["--database-url", &url, "audit", "--repo", "a/b"], &[]),
        (&["deliveries", "retry", "1", "--database-url", &url], &[]),
    ];
    for (args, envs) in runs {
        let out = greenlight(args, envs);
        let t = text(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {t}");
        assert!(
            t.contains("no database at") && t.contains("typo.db"),
            "{args:?}: {t}"
        );
        assert!(!path.exists(), "{args:?} created the file");
    }
}

/// The migrations applied to a database, in order.
async fn applied(url: &str) -> Vec<i64> {
    use sqlx::Connection as _;
    let mut conn = sqlx::SqliteConnection::connect(url).await.expect("open");
    let rows: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations ORDER BY version")
            .fetch_all(&mut conn)
            .await
            .expect("versions");
    conn.close().await.ok();
    rows
}

/// A database older than the binary (some migrations applied) is refused by the read-only
/// commands with exit 2 and left exactly as it was.
#[tokio::test]
async fn read_only_commands_never_migrate_an_old_schema() {
    let dir = tempfile::tempdir().expect("tempdir");
    let old = dir.path().join("migrations");
    std::fs::create_dir(&old).expect("mkdir");
    let source = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/sqlite");
    let mut files: Vec<_> = std::fs::read_dir(source)
        .expect("migrations")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    for file in &files[..3] {
        std::fs::copy(file, old.join(file.file_name().expect("name"))).expect("copy");
    }
    let url = format!("sqlite://{}", dir.path().join("old.db").display());
    {
        use sqlx::Connection as _;
        let mut conn = sqlx::SqliteConnection::connect(&format!("{url}?mode=rwc"))
            .await
            .expect("create");
        sqlx::migrate::Migrator::new(old.as_path())
            .await
            .expect("migrator")
            .run(&mut conn)
            .await
            .expect("first migrations");
        conn.close().await.ok();
    }
    let before = applied(&url).await;
    assert_eq!(before.len(), 3);
    for args in [&["audit"][..], &["deliveries"], &["deliveries", "--dead"]] {
        let out = greenlight(args, &[("DATABASE_URL", &url)]);
        let t = text(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {t}");
        assert!(t.contains("older than this binary"), "{args:?}: {t}");
        assert_eq!(
            applied(&url).await,
            before,
            "{args:?} migrated the database"
        );
    }
}

#[test]
fn a_bad_setting_is_named_and_exits_2() {
    let out = greenlight(&["serve"], &[("GREENLIGHT_LISTEN", "not-an-address")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("GREENLIGHT_LISTEN"), "{}", text(&out));

    let out = greenlight(
        &["serve"],
        &[
            ("GITHUB_APP_ID", "12"),
            ("GITHUB_PRIVATE_KEY", "/no/such/key.pem"),
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    let t = text(&out);
    assert!(t.contains("GITHUB_PRIVATE_KEY"), "{t}");

    let out = greenlight(&["serve"], &[("GITHUB_APP_ID", "12")]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "an App id without a key is incomplete: {}",
        text(&out)
    );
}

#[test]
fn a_private_key_never_reaches_the_output() {
    let key =
        "-----BEGIN RSA PRIVATE KEY-----\\nTOPSECRETKEYMATERIAL\\n-----END RSA PRIVATE KEY-----";
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("g.db").display());
    let out = greenlight(
        &["serve"],
        &[
            ("GITHUB_APP_ID", "12"),
            ("GITHUB_PRIVATE_KEY", key),
            ("DATABASE_URL", &url),
            ("GREENLIGHT_LISTEN", "127.0.0.1:0"),
        ],
    );
    let t = text(&out);
    assert!(
        !out.status.success(),
        "a malformed key stops the service: {t}"
    );
    assert!(t.contains("GITHUB_PRIVATE_KEY"), "{t}");
    assert!(!t.contains("TOPSECRET"), "{t}");
}

/// A secret that is refused, or given to the wrong setting, is never repeated: not by our own
/// parsers (a private key that is neither PEM nor a path) and not by clap's "invalid value"
/// message (a secret in a numeric or enumerated setting).
#[test]
fn a_refused_secret_never_reaches_the_output() {
    let secret = "MIIEpAIBAAKCAQEAtopsecretkeymaterialwithoutpemarmour";
    let cases: [Case<'_>; 7] = [
        (
            &["serve"],
            &[("GITHUB_APP_ID", "12"), ("GITHUB_PRIVATE_KEY", secret)],
            "GITHUB_PRIVATE_KEY",
        ),
        (
            &[
                "serve",
                "--github-app-id",
                "12",
                "--github-private-key",
                secret,
            ],
            &[],
            "GITHUB_PRIVATE_KEY",
        ),
        (
            &["serve"],
            &[("GITHUB_APP_ID", secret), ("GITHUB_PRIVATE_KEY", "/k.pem")],
            "GITHUB_APP_ID",
        ),
        (
            &["serve"],
            &[("GREENLIGHT_WORKERS", secret)],
            "GREENLIGHT_WORKERS",
        ),
        (
            &["serve"],
            &[("GREENLIGHT_LISTEN", secret)],
            "GREENLIGHT_LISTEN",
        ),
        (
            &["serve"],
            &[("GREENLIGHT_RETENTION_DAYS", secret)],
            "GREENLIGHT_RETENTION_DAYS",
        ),
        (&["audit"], &[("LOG_FORMAT", secret)], "LOG_FORMAT"),
    ];
    for (args, envs, setting) in cases {
        let out = greenlight(args, envs);
        let t = text(&out);
        assert_eq!(out.status.code(), Some(2), "{setting}: {t}");
        assert!(t.contains(setting), "names {setting}: {t}");
        assert!(!t.contains("topsecret"), "{setting} leaked: {t}");
    }
}
