//! What people expect to find in the repository, checked against what the build says: the
//! licence Cargo.toml names, a changelog entry for the crate's version, an image that checks
//! its own readiness and says what it is, and a Docker context without build output or
//! secrets.

use std::path::Path;

fn read(path: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path))
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn the_licence_file_is_the_one_cargo_toml_names() {
    let manifest: toml::Value = toml::from_str(&read("Cargo.toml")).expect("Cargo.toml");
    assert_eq!(manifest["package"]["license"].as_str(), Some("Apache-2.0"));
    let licence = read("LICENSE");
    assert!(
        licence.contains("Apache License"),
        "LICENSE is not Apache's"
    );
    assert!(licence.contains("Version 2.0, January 2004"));
    assert!(
        licence.contains("END OF TERMS AND CONDITIONS"),
        "the terms are incomplete"
    );
}

#[test]
fn the_changelog_keeps_a_changelog_and_names_this_version() {
    let changelog = read("CHANGELOG.md");
    assert!(changelog.contains("## [Unreleased]"));
    let version = env!("CARGO_PKG_VERSION");
    assert!(
        changelog.contains(&format!("## [{version}] - ")),
        "no entry for version {version}"
    );
    for doc in ["SECURITY.md", "CONTRIBUTING.md"] {
        assert!(!read(doc).trim().is_empty(), "{doc} is empty");
    }
}

#[test]
fn the_image_checks_readiness_and_is_labelled() {
    let dockerfile = read("Dockerfile");
    let health = dockerfile
        .lines()
        .skip_while(|l| !l.starts_with("HEALTHCHECK"))
        .take(2)
        .collect::<String>();
    assert!(
        health.contains("/readyz"),
        "HEALTHCHECK must ask /readyz: {health}"
    );
    for label in [
        "org.opencontainers.image.title",
        "org.opencontainers.image.licenses=\"Apache-2.0\"",
        "org.opencontainers.image.version",
    ] {
        assert!(dockerfile.contains(label), "missing label {label}");
    }
}

#[test]
fn the_docker_context_leaves_out_build_output_and_secrets() {
    let ignore = read(".dockerignore");
    let lines: Vec<&str> = ignore.lines().map(str::trim).collect();
    for entry in ["target/", ".git/", ".env", "*.pem", "*.db"] {
        assert!(lines.contains(&entry), ".dockerignore lacks {entry}");
    }
}

/// Every path ARCHITECTURE.md names exists: the map stays true when files move.
#[test]
fn the_architecture_map_names_files_that_exist() {
    let map = read("ARCHITECTURE.md");
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut named = 0;
    for word in map.split(|c: char| c.is_whitespace() || "`(),|".contains(c)) {
        let path = word.trim_end_matches([':', '.', ';']);
        if !(path.starts_with("src/") || path.starts_with("tests/")) || path.contains('*') {
            continue;
        }
        named += 1;
        assert!(
            root.join(path).exists(),
            "ARCHITECTURE.md names {path}, which does not exist"
        );
    }
    assert!(
        named > 20,
        "only {named} paths found: is the map still there?"
    );
}
