//! The policy file's JSON Schema: the checked-in copy is the generated one, `greenlight schema`
//! prints it, the shipped policies validate against it and bad ones do not.

use std::path::Path;

use greenlight::config::{policy, schema};
use greenlight::release::Forge;

const REGENERATE: &str = "cargo run --locked -- schema > schema/greenlight.schema.json";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn validator() -> jsonschema::Validator {
    let schema: serde_json::Value = serde_json::from_str(&schema::policy_schema_json()).unwrap();
    jsonschema::validator_for(&schema).expect("the generated schema is a valid JSON Schema")
}

/// A TOML policy as the JSON value editors and validators check.
fn as_json(text: &str) -> serde_json::Value {
    let value: toml::Value = toml::from_str(text).expect("valid TOML");
    serde_json::to_value(value).unwrap()
}

fn schema_errors(text: &str) -> Vec<String> {
    validator()
        .iter_errors(&as_json(text))
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

#[test]
fn the_checked_in_schema_is_the_generated_one() {
    let checked_in = std::fs::read_to_string(root().join(schema::PATH))
        .unwrap_or_else(|e| panic!("{}: {e}; regenerate it: {REGENERATE}", schema::PATH));
    assert!(
        checked_in == schema::policy_schema_json(),
        "{} differs from the schema the policy types generate; regenerate it: {REGENERATE}",
        schema::PATH
    );
}

#[test]
fn greenlight_schema_prints_it() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_greenlight"))
        .arg("schema")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        schema::policy_schema_json()
    );
}

#[test]
fn the_example_and_starter_policies_validate() {
    let files = [
        ("greenlight.example.toml", Forge::GitHub),
        ("templates/starter/github/greenlight.toml", Forge::GitHub),
        ("templates/starter/gitlab/greenlight.toml", Forge::GitLab),
    ];
    for (file, forge) in files {
        let text = std::fs::read_to_string(root().join(file)).unwrap();
        policy::parse_for(&text, forge).unwrap_or_else(|e| panic!("{file}: {e}"));
        let errors = schema_errors(&text);
        assert!(errors.is_empty(), "{file}: {errors:?}");
    }
}

#[test]
fn policies_the_parser_refuses_the_schema_refuses_too() {
    let base = "[pipeline]\nworkflow = \"ci.yml\"\n[deploy]\nworkflow = \"deploy.yml\"\n";
    let bad = [
        format!("{base}[approvals]\nmin_permision = \"write\"\n"),
        format!("{base}[approvals]\nrequired = 11\n"),
        format!("{base}[approvals]\nrequired = 0\n"),
        format!("{base}[approvals]\nmin_permission = \"none\"\n"),
        format!("{base}[approvals]\nusers = [\"not a login\"]\n"),
        format!("{base}[deploy2]\n"),
        "[pipeline]\nworkflow = \"ci.yml\"\n[deploy]\nworkflow = \"../deploy.sh\"\n".to_owned(),
        "[deploy]\nenvironment = \"\"\n".to_owned(),
        "[pipeline]\nworkflow = \"ci.yml\"\n".to_owned(),
    ];
    for text in &bad {
        assert!(policy::parse(text).is_err(), "the parser accepts {text:?}");
        assert!(
            !schema_errors(text).is_empty(),
            "the schema accepts {text:?}"
        );
    }
    // And a minimal valid one passes both.
    assert!(policy::parse(base).is_ok());
    assert_eq!(schema_errors(base), Vec::<String>::new());
}
