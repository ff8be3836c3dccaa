//! `greenlight init`: the starter files a repository checkout gets are accepted by
//! `check-config`, parse as YAML with the inputs Greenlight dispatches, carry the
//! least-privilege settings, equal the README's samples, and are never overwritten without
//! `--force` (all or nothing).

use std::path::Path;
use std::process::{Command, Output};

use yaml_rust2::{Yaml, YamlLoader};

fn greenlight(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_greenlight"))
        .args(args)
        .env_clear()
        .output()
        .expect("run greenlight")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn yaml(path: &Path) -> Yaml {
    let text = std::fs::read_to_string(path).expect("read");
    let mut docs = YamlLoader::load_from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not YAML: {e}", path.display()));
    assert_eq!(docs.len(), 1, "{}", path.display());
    docs.remove(0)
}

/// The keys of a mapping, as strings.
fn keys(y: &Yaml) -> Vec<String> {
    y.as_hash()
        .map(|h| {
            h.keys()
                .filter_map(|k| k.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn dispatch_inputs(workflow: &Yaml) -> Vec<String> {
    let inputs = &workflow["on"]["workflow_dispatch"]["inputs"];
    for name in keys(inputs) {
        assert_eq!(
            inputs[name.as_str()]["required"],
            Yaml::Boolean(true),
            "{name}"
        );
    }
    keys(inputs)
}

/// The README's fenced block that starts with `first_line`.
fn readme_block(first_line: &str) -> String {
    let readme = include_str!("../README.md");
    let start = readme
        .find(first_line)
        .unwrap_or_else(|| panic!("README has no block starting {first_line:?}"));
    let rest = &readme[start..];
    rest[..rest.find("```").expect("block end")].to_owned()
}

#[test]
fn github_starter_files_are_valid_and_least_privilege() {
    let dir = tempfile::tempdir().expect("dir");
    let d = dir.path().to_str().expect("path");
    let out = greenlight(&["init", "github", "--dir", d]);
    assert!(out.status.success(), "{}", text(&out));
    for f in [
        ".github/greenlight.toml",
        ".github/workflows/ci.yml",
        ".github/workflows/deploy.yml",
    ] {
        assert!(
            text(&out).contains(&format!("created   {d}/{f}")),
            "{}",
            text(&out)
        );
    }

    let policy = dir.path().join(".github/greenlight.toml");
    let check = greenlight(&["check-config", policy.to_str().expect("path")]);
    assert!(check.status.success(), "{}", text(&check));
    assert!(
        text(&check).contains("Pipeline ci.yml, deploy deploy.yml to production"),
        "{}",
        text(&check)
    );

    let ci = yaml(&dir.path().join(".github/workflows/ci.yml"));
    assert_eq!(dispatch_inputs(&ci), ["sha", "pr"]);
    assert_eq!(ci["permissions"]["contents"].as_str(), Some("read"));
    assert!(
        ci["run-name"]
            .as_str()
            .expect("run-name")
            .contains("${{ inputs.sha }}")
    );
    let checkout = &ci["jobs"]["test"]["steps"][0];
    assert_eq!(checkout["with"]["ref"].as_str(), Some("${{ inputs.sha }}"));
    assert_eq!(
        checkout["with"]["persist-credentials"],
        Yaml::Boolean(false)
    );
    assert!(
        !std::fs::read_to_string(dir.path().join(".github/workflows/ci.yml"))
            .expect("read")
            .contains("secrets."),
        "the pipeline gets no secrets"
    );

    let deploy = yaml(&dir.path().join(".github/workflows/deploy.yml"));
    assert_eq!(
        dispatch_inputs(&deploy),
        ["sha", "environment", "deployment_id"]
    );
    assert_eq!(
        deploy["jobs"]["deploy"]["environment"].as_str(),
        Some("${{ inputs.environment }}"),
        "the deploy job names its environment, so the environment's gate holds it"
    );
    assert!(
        deploy["run-name"]
            .as_str()
            .expect("run-name")
            .contains("${{ inputs.sha }}")
    );
}

#[test]
fn gitlab_starter_files_are_valid() {
    let dir = tempfile::tempdir().expect("dir");
    let d = dir.path().to_str().expect("path");
    let out = greenlight(&["init", "gitlab", "--dir", d]);
    assert!(out.status.success(), "{}", text(&out));
    let policy = dir.path().join(".gitlab/greenlight.toml");
    let check = greenlight(&["check-config", policy.to_str().expect("path")]);
    assert!(check.status.success(), "{}", text(&check));
    assert!(
        text(&check).contains("GitLab CI pipelines"),
        "{}",
        text(&check)
    );

    let ci = yaml(&dir.path().join(".gitlab-ci.yml"));
    let deploy = &ci["deploy"];
    assert_eq!(
        deploy["environment"].as_str(),
        Some("$GREENLIGHT_ENVIRONMENT")
    );
    assert_eq!(
        deploy["rules"][0]["if"].as_str(),
        Some("$GREENLIGHT_ENVIRONMENT")
    );
    let script: Vec<&str> = deploy["script"]
        .as_vec()
        .expect("script")
        .iter()
        .filter_map(Yaml::as_str)
        .collect();
    assert!(
        script
            .iter()
            .any(|l| l.contains("git checkout --detach \"$GREENLIGHT_SHA\"")),
        "{script:?}"
    );
    // Tests do not run again in a deploy pipeline.
    assert_eq!(ci["test"]["rules"][0]["when"].as_str(), Some("never"));
}

#[test]
fn an_existing_file_is_never_overwritten_without_force() {
    let dir = tempfile::tempdir().expect("dir");
    let d = dir.path().to_str().expect("path");
    std::fs::write(dir.path().join(".gitlab-ci.yml"), "mine: {}\n").expect("write");
    let out = greenlight(&["init", "gitlab", "--dir", d]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains(".gitlab-ci.yml already exists"),
        "{}",
        text(&out)
    );
    assert!(text(&out).contains("nothing was written"), "{}", text(&out));
    assert!(!dir.path().join(".gitlab").exists(), "all or nothing");
    assert_eq!(
        std::fs::read_to_string(dir.path().join(".gitlab-ci.yml")).expect("read"),
        "mine: {}\n"
    );

    let forced = greenlight(&["init", "gitlab", "--dir", d, "--force"]);
    assert!(forced.status.success(), "{}", text(&forced));
    assert!(text(&forced).contains("replaced  "), "{}", text(&forced));
    let again = greenlight(&["init", "gitlab", "--dir", d]);
    assert!(
        again.status.success(),
        "same text is no clash: {}",
        text(&again)
    );
    assert!(text(&again).contains("unchanged "), "{}", text(&again));
}

#[test]
fn the_starter_files_are_the_readme_samples() {
    let root = env!("CARGO_MANIFEST_DIR");
    let file = |p: &str| {
        std::fs::read_to_string(format!("{root}/templates/starter/{p}")).expect("starter")
    };
    assert_eq!(
        readme_block("# .github/workflows/ci.yml"),
        file("github/ci.yml")
    );
    assert_eq!(
        readme_block("# .github/workflows/deploy.yml"),
        file("github/deploy.yml")
    );
    assert_eq!(
        readme_block("stages: [test, deploy]"),
        file("gitlab/gitlab-ci.yml")
    );
}

#[test]
fn check_config_takes_the_forge_from_a_flag() {
    let dir = tempfile::tempdir().expect("dir");
    // GitLab's rules: no workflows. At a path without `.gitlab`, GitHub's rules are guessed.
    let path = dir.path().join("policy.toml");
    std::fs::write(&path, "[deploy]\nenvironment = \"production\"\n").expect("write");
    let p = path.to_str().expect("path");
    let guessed = greenlight(&["check-config", p]);
    assert_eq!(guessed.status.code(), Some(1), "{}", text(&guessed));
    assert!(
        text(&guessed).contains("missing field `pipeline`"),
        "{}",
        text(&guessed)
    );
    let gitlab = greenlight(&["check-config", "--forge", "gitlab", p]);
    assert!(gitlab.status.success(), "{}", text(&gitlab));
    let bad = greenlight(&["check-config", "--forge", "bitbucket", p]);
    assert_eq!(bad.status.code(), Some(2), "{}", text(&bad));
}
