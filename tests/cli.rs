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

/// A migrated SQLite database holding one done, one dead and one queued delivery (the dead
/// one received an hour before the others) and one audit entry.
async fn operator_db(dir: &std::path::Path) -> (String, [i64; 3]) {
    use greenlight::store::{AuditEntry, Inserted, NewDelivery, Store};
    let url = format!("sqlite://{}", dir.join("g.db").display());
    let store = Store::connect(&url).await.expect("connect");
    store.migrate().await.expect("migrate");
    let mut ids = [0; 3];
    for (i, name) in ["d-done", "d-dead", "d-queued"].iter().enumerate() {
        let body = format!(r#"{{"action":"opened","number":{i}}}"#);
        let Inserted::New(id) = store
            .insert_delivery(&NewDelivery {
                forge: "github",
                delivery_id: name,
                event: "pull_request",
                payload: body.as_bytes(),
                actionable: true,
            })
            .await
            .expect("insert")
        else {
            panic!("stored twice")
        };
        ids[i] = id;
    }
    for (i, end) in ["done", "dead"].iter().enumerate() {
        let job = store
            .claim(std::time::Duration::from_secs(60))
            .await
            .expect("claim")
            .expect("a job");
        assert_eq!(job.id, ids[i]);
        if *end == "done" {
            store.complete(&job).await.expect("complete");
        } else {
            store.dead_letter(&job, "policy: boom").await.expect("dead");
        }
    }
    store
        .audit(&AuditEntry {
            at: 1_765_000_000_000,
            forge: "github".into(),
            repo: "acme/widgets".into(),
            pr: 7,
            sha: "a".repeat(40),
            actor: "mona".into(),
            action: "approve".into(),
            outcome: "ok".into(),
            reason: String::new(),
        })
        .await
        .expect("audit");
    store.close().await;
    (url, ids)
}

fn json_lines(o: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

#[tokio::test]
async fn listings_print_a_table_or_json_lines() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (url, ids) = operator_db(dir.path()).await;
    let env = [("DATABASE_URL", url.as_str())];

    let table = greenlight(&["deliveries"], &env);
    assert!(table.status.success(), "{}", text(&table));
    let out = String::from_utf8_lossy(&table.stdout).into_owned();
    assert!(out.starts_with("      id  forge"), "{out}");
    assert_eq!(out.lines().count(), 4, "{out}");

    let json = greenlight(&["deliveries", "--json"], &env);
    let rows = json_lines(&json);
    assert_eq!(rows.len(), 3, "{}", text(&json));
    assert_eq!(rows[0]["id"], ids[2], "newest first");
    let states: Vec<&str> = rows.iter().filter_map(|r| r["state"].as_str()).collect();
    assert_eq!(states, ["queued", "dead", "done"]);
    assert_eq!(rows[1]["last_error"], "policy: boom");
    assert!(
        rows[1]["received_at"]
            .as_str()
            .is_some_and(|t| t.ends_with("+00:00"))
    );

    let dead = json_lines(&greenlight(&["deliveries", "--dead", "--json"], &env));
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0]["delivery"], "d-dead");

    let audit = json_lines(&greenlight(&["audit", "--json"], &env));
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0]["actor"], "mona");
    assert_eq!(audit[0]["pr"], 7);
    assert_eq!(audit[0]["at"], "2025-12-06T05:46:40+00:00");
    let audit_table = greenlight(&["audit"], &env);
    assert!(String::from_utf8_lossy(&audit_table.stdout).contains("github:acme/widgets"));
}

#[tokio::test]
async fn a_delivery_is_shown_with_its_payload() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (url, ids) = operator_db(dir.path()).await;
    let env = [("DATABASE_URL", url.as_str())];
    let id = ids[1].to_string();

    let shown = greenlight(&["deliveries", "show", &id], &env);
    assert!(shown.status.success(), "{}", text(&shown));
    let out = String::from_utf8_lossy(&shown.stdout).into_owned();
    assert!(out.contains("state       dead"), "{out}");
    assert!(out.contains("last error  policy: boom"), "{out}");
    assert!(out.contains("\"number\": 1"), "the payload, pretty: {out}");

    let json = json_lines(&greenlight(&["deliveries", "show", &id, "--json"], &env));
    assert_eq!(json.len(), 1);
    assert_eq!(json[0]["payload"]["number"], 1);
    assert_eq!(json[0]["event"], "pull_request");

    let missing = greenlight(&["deliveries", "show", "999999"], &env);
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        text(&missing).contains("no delivery 999999"),
        "{}",
        text(&missing)
    );
}

#[tokio::test]
async fn retry_all_dead_requeues_dead_letters_only_since_a_time() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (url, _) = operator_db(dir.path()).await;
    let env = [("DATABASE_URL", url.as_str())];

    // Received before this instant: `--since` a minute from now leaves it dead.
    let later = (chrono::Utc::now() + chrono::Duration::minutes(1)).to_rfc3339();
    let none = greenlight(
        &["deliveries", "retry", "--all-dead", "--since", &later],
        &env,
    );
    assert!(none.status.success(), "{}", text(&none));
    assert!(
        text(&none).contains("0 dead-lettered deliveries queued again"),
        "{}",
        text(&none)
    );
    assert_eq!(
        json_lines(&greenlight(&["deliveries", "--dead", "--json"], &env)).len(),
        1
    );

    let all = greenlight(&["deliveries", "retry", "--all-dead"], &env);
    assert!(
        text(&all).contains("1 dead-lettered delivery queued again"),
        "{}",
        text(&all)
    );
    assert!(json_lines(&greenlight(&["deliveries", "--dead", "--json"], &env)).is_empty());
    let states: Vec<String> = json_lines(&greenlight(&["deliveries", "--json"], &env))
        .iter()
        .map(|r| r["state"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(
        states,
        ["queued", "queued", "done"],
        "the done one untouched"
    );

    // An id and --all-dead together, or neither, is a usage error.
    let both = greenlight(&["deliveries", "retry", "5", "--all-dead"], &env);
    assert_eq!(both.status.code(), Some(2), "{}", text(&both));
    let neither = greenlight(&["deliveries", "retry"], &env);
    assert_eq!(neither.status.code(), Some(2), "{}", text(&neither));
    let bad_time = greenlight(
        &["deliveries", "retry", "--all-dead", "--since", "yesterday"],
        &env,
    );
    assert_eq!(bad_time.status.code(), Some(2), "{}", text(&bad_time));
}

#[test]
fn completions_and_argument_help() {
    for shell in ["bash", "zsh", "fish"] {
        let out = greenlight(&["completions", shell], &[]);
        assert!(out.status.success(), "{shell}: {}", text(&out));
        let script = String::from_utf8_lossy(&out.stdout);
        for word in ["deliveries", "check-config", "database-url"] {
            assert!(script.contains(word), "{shell} completion lacks {word}");
        }
    }
    let help = greenlight(&["deliveries", "retry", "--help"], &[]);
    assert!(
        text(&help).contains("The delivery's numeric id"),
        "{}",
        text(&help)
    );
    // Every argument of every subcommand has help text.
    fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
        for arg in cmd.get_arguments() {
            if arg.is_hide_set() || ["help", "version"].contains(&arg.get_id().as_str()) {
                continue;
            }
            if arg.get_help().is_none() {
                missing.push(format!("{path} {}", arg.get_id()));
            }
        }
        for sub in cmd.get_subcommands() {
            if sub.get_about().is_none() {
                missing.push(format!("{path} {} (no description)", sub.get_name()));
            }
            walk(sub, &format!("{path} {}", sub.get_name()), missing);
        }
    }
    use clap::CommandFactory as _;
    let mut missing = Vec::new();
    walk(
        &greenlight::config::Cli::command(),
        "greenlight",
        &mut missing,
    );
    assert!(missing.is_empty(), "without help: {missing:?}");
}

#[tokio::test]
async fn releases_and_installations_are_listed_and_filtered() {
    use greenlight::release::{CommitSha, Stage};
    use greenlight::store::{NewCandidate, Store};
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("g.db").display());
    let store = Store::connect(&url).await.expect("connect");
    store.migrate().await.expect("migrate");
    for (pr, sha, env, stage) in [
        (1, "a", "production", Stage::Deployed),
        (2, "b", "staging", Stage::Ready),
        (3, "c", "production", Stage::Queued),
    ] {
        let sha = CommitSha::parse(&sha.repeat(40)).expect("sha");
        let new = NewCandidate {
            pusher_id: Some(7),
            head_at: 0,
        };
        let mut r = store
            .ensure_candidate("github", "acme/widgets", pr, &sha, env, new)
            .await
            .expect("candidate");
        r.stage = stage;
        store.save_release(&r).await.expect("save");
    }
    store
        .upsert_installation("github", 42, "acme", true)
        .await
        .expect("installation");
    store.close().await;
    let env = [("DATABASE_URL", url.as_str())];

    let all = json_lines(&greenlight(&["releases", "--json"], &env));
    assert_eq!(all.len(), 3);
    let prod = json_lines(&greenlight(
        &["releases", "--env", "production", "--json"],
        &env,
    ));
    let prs: Vec<u64> = prod.iter().filter_map(|r| r["pr"].as_u64()).collect();
    assert_eq!(prs.len(), 2);
    assert!(prs.contains(&1) && prs.contains(&3), "{prs:?}");
    let queued = json_lines(&greenlight(
        &[
            "releases",
            "--stage",
            "queued",
            "--repo",
            "acme/widgets",
            "--json",
        ],
        &env,
    ));
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0]["sha"], "c".repeat(40));
    assert_eq!(queued[0]["environment"], "production");
    let other = json_lines(&greenlight(
        &["releases", "--repo", "acme/other", "--json"],
        &env,
    ));
    assert!(other.is_empty());
    let table = greenlight(&["releases", "--stage", "ready"], &env);
    let out = String::from_utf8_lossy(&table.stdout).into_owned();
    assert!(out.starts_with("    id  repository"), "{out}");
    assert!(
        out.contains("github:acme/widgets") && out.contains("bbbbbbb"),
        "{out}"
    );
    let bad = greenlight(&["releases", "--stage", "shipped"], &env);
    assert_eq!(bad.status.code(), Some(2), "{}", text(&bad));

    let inst = json_lines(&greenlight(&["installations", "--json"], &env));
    assert_eq!(inst.len(), 1);
    assert_eq!(inst[0]["id"], 42);
    assert_eq!(inst[0]["account"], "acme");
    assert_eq!(inst[0]["active"], true);
    let table = greenlight(&["installations"], &env);
    assert!(
        String::from_utf8_lossy(&table.stdout).contains("acme"),
        "{}",
        text(&table)
    );
}
