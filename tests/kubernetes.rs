//! The Kubernetes manifests in `deploy/kubernetes/` parse as YAML, name only real settings,
//! probe the real endpoints on the port the server listens on, and read every secret from a
//! key the example Secret has.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use yaml_rust2::{Yaml, YamlLoader};

const SECRETS_DIR: &str = "/run/secrets/greenlight/";

fn manifests(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            manifests(&path, out);
        } else if path.extension().is_some_and(|e| e == "yaml") {
            out.push(path);
        }
    }
}

fn docs(path: &Path) -> Vec<Yaml> {
    let text = std::fs::read_to_string(path).expect("read");
    YamlLoader::load_from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every environment variable `greenlight serve` reads, from its own help.
fn settings() -> BTreeSet<String> {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_greenlight"))
        .args(["serve", "--help"])
        .env_clear()
        .output()
        .expect("help");
    let help = String::from_utf8_lossy(&out.stdout).into_owned();
    help.split("[env: ")
        .skip(1)
        .filter_map(|rest| rest.split(['=', ']']).next())
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_manifests_match_the_binary_and_the_secret() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/kubernetes");
    let mut files = Vec::new();
    manifests(&root, &mut files);
    files.sort();
    let all: Vec<(PathBuf, Yaml)> = files
        .iter()
        .flat_map(|f| docs(f).into_iter().map(move |d| (f.clone(), d)))
        .collect();
    let secret_keys: BTreeSet<String> = all
        .iter()
        .filter(|(_, d)| d["kind"].as_str() == Some("Secret"))
        .flat_map(|(_, d)| {
            d["stringData"]
                .as_hash()
                .map(|h| {
                    h.keys()
                        .filter_map(|k| k.as_str().map(str::to_owned))
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default()
        })
        .collect();
    assert!(
        secret_keys.contains("github-webhook-secret"),
        "{secret_keys:?}"
    );
    let settings = settings();
    assert!(
        settings.contains("GITHUB_WEBHOOK_SECRET_FILE"),
        "{settings:?}"
    );

    let mut workloads = Vec::new();
    for (file, doc) in &all {
        let kind = doc["kind"].as_str().unwrap_or_default();
        if !["Deployment", "StatefulSet"].contains(&kind) {
            continue;
        }
        workloads.push((kind, doc["spec"]["replicas"].as_i64().unwrap_or(1)));
        let spec = &doc["spec"]["template"]["spec"];
        let c = &spec["containers"][0];
        let env = c["env"].as_vec().expect("env");
        let value = |name: &str| {
            env.iter()
                .find(|e| e["name"].as_str() == Some(name))
                .and_then(|e| e["value"].as_str())
        };
        for e in env {
            let name = e["name"].as_str().expect("name");
            assert!(
                settings.contains(name),
                "{}: {name} is no setting",
                file.display()
            );
            if let Some(key) = e["value"]
                .as_str()
                .and_then(|v| v.strip_prefix(SECRETS_DIR))
            {
                assert!(
                    secret_keys.contains(key),
                    "{}: no secret key {key}",
                    file.display()
                );
            }
        }
        let port = value("GREENLIGHT_LISTEN")
            .and_then(|l| l.rsplit(':').next())
            .and_then(|p| p.parse::<i64>().ok())
            .expect("GREENLIGHT_LISTEN with a port");
        assert_eq!(
            c["ports"][0]["containerPort"].as_i64(),
            Some(port),
            "{}",
            file.display()
        );
        assert_eq!(
            c["livenessProbe"]["httpGet"]["path"].as_str(),
            Some("/healthz")
        );
        assert_eq!(
            c["readinessProbe"]["httpGet"]["path"].as_str(),
            Some("/readyz")
        );
        let mounted = c["volumeMounts"]
            .as_vec()
            .expect("mounts")
            .iter()
            .any(|m| m["mountPath"].as_str() == Some(SECRETS_DIR.trim_end_matches('/')));
        assert!(
            mounted,
            "{}: the Secret is mounted where the *_FILE settings point",
            file.display()
        );
        assert!(spec["securityContext"]["runAsNonRoot"].as_bool() == Some(true));
        // Several replicas need PostgreSQL: SQLite is one process's file.
        if doc["spec"]["replicas"].as_i64().unwrap_or(1) > 1 {
            assert!(
                value("DATABASE_URL_FILE").is_some(),
                "{}: replicas without PostgreSQL",
                file.display()
            );
        }
    }
    workloads.sort();
    assert_eq!(
        workloads,
        [("Deployment", 3), ("StatefulSet", 1)],
        "the two shapes"
    );
}

/// The schema validator, pinned by `.ci/run` (`kubernetes-validate` from PyPI, which ships
/// the Kubernetes API's JSON schemas, so it validates offline). `kubeconform` is in none of
/// the registries this project installs from (PyPI, npm, Debian, crates.io) and fetches its
/// schemas from the network at run time; Debian's `kubectl --dry-run=client` asks an API
/// server for the resource types, so neither can run in CI.
const VALIDATOR: &str = "kubernetes-validate";

/// Runs the validator on `files` (strict: an unknown field fails), or says why not: `None`
/// when it is not installed outside CI (`.ci/run` installs it, so under `CI` it must be).
fn validate(files: &[PathBuf]) -> Option<std::process::Output> {
    let run = std::process::Command::new(VALIDATOR)
        .args(["--strict", "--quiet", "--no-warn"])
        .args(files)
        .output();
    match run {
        Ok(out) => Some(out),
        Err(e) if std::env::var_os("CI").is_none() => {
            eprintln!("skipped: {VALIDATOR} is not installed ({e}); .ci/run installs it");
            None
        }
        Err(e) => panic!("{VALIDATOR} must be installed under CI (.ci/run does): {e}"),
    }
}

#[test]
fn the_manifests_validate_against_the_kubernetes_schemas() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/kubernetes");
    let mut files = Vec::new();
    manifests(&root, &mut files);
    files.sort();
    assert_eq!(files.len(), 3, "{files:?}");
    let Some(out) = validate(&files) else { return };
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // The validator is not a rubber stamp: a misspelt probe fails it.
    let dir = tempfile::tempdir().expect("tempdir");
    let broken = dir.path().join("statefulset.yaml");
    let text = std::fs::read_to_string(root.join("sqlite/statefulset.yaml")).expect("read");
    assert!(text.contains("readinessProbe:"));
    std::fs::write(&broken, text.replace("readinessProbe:", "readinesProbe:")).expect("write");
    let out = validate(&[broken]).expect("ran above");
    assert!(!out.status.success(), "a misspelt field passed");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("readinesProbe"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}
