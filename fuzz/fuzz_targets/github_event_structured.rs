//! GitHub payload → Event, structure-aware: start from a documented payload
//! (tests/fixtures/github/), apply a few mutations chosen by the fuzzer (replace any value by
//! another of any type, delete a key, change the action), and parse.
//!
//! Beyond "never panics": a field GitHub adds never changes the answer — the same payload with
//! an extra unknown key anywhere parses exactly as before ("only the fields Greenlight needs
//! are declared"); and an untouched fixture always parses to an event.

#![no_main]

use greenlight::forge::github::events::{Parsed, parse};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

mod mutate;
use mutate::{Input, add_unknown_key, apply};

const FIXTURES: &[(&str, &str)] = &[
    (
        "pull_request",
        include_str!("../../tests/fixtures/github/pull_request.opened.json"),
    ),
    (
        "issue_comment",
        include_str!("../../tests/fixtures/github/issue_comment.created.json"),
    ),
    (
        "workflow_run",
        include_str!("../../tests/fixtures/github/workflow_run.completed.json"),
    ),
    (
        "check_run",
        include_str!("../../tests/fixtures/github/check_run.rerequested.json"),
    ),
    (
        "installation",
        include_str!("../../tests/fixtures/github/installation.created.json"),
    ),
];

fuzz_target!(|input: Input| {
    let (event, text) = FIXTURES[usize::from(input.fixture) % FIXTURES.len()];
    let mut v: Value = serde_json::from_str(text).expect("fixture is JSON");
    if input.mutations.is_empty() {
        let parsed = parse(event, text.as_bytes()).expect("a documented payload parses");
        assert!(!matches!(parsed, Parsed::Ignored(_)), "{parsed:?}");
    }
    for m in &input.mutations {
        apply(&mut v, &m.path, &m.op);
    }
    let bytes = serde_json::to_vec(&v).expect("encode");
    let before = parse(event, &bytes);

    if add_unknown_key(&mut v, &input.extra_at) {
        let bytes = serde_json::to_vec(&v).expect("encode");
        let after = parse(event, &bytes);
        // Errors quote a byte position, which the extra key moves: compare outcomes.
        match (&before, &after) {
            (Ok(a), Ok(b)) => assert_eq!(a, b, "an unknown field changed the event: {v}"),
            (Err(_), Err(_)) => {}
            _ => panic!("an unknown field changed the outcome: {before:?} → {after:?}: {v}"),
        }
    }
});
