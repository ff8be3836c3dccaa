//! The repository policy parser (`greenlight::config::policy::parse`) on arbitrary text.
//!
//! Beyond "never panics":
//! - an error's line and column point into the file (the `greenlight/config` check annotates
//!   that line; `check-config` prints `file:line:column`);
//! - a policy that parses, written out again as TOML, parses back to the same policy.

#![no_main]

use greenlight::config::policy::{Policy, parse};
use libfuzzer_sys::fuzz_target;
use toml::{Table, Value};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match parse(text) {
        Err(e) => {
            let lines: Vec<&str> = text.split('\n').collect();
            let line = usize::try_from(e.line).expect("line");
            assert!(
                (1..=lines.len()).contains(&line),
                "line {line} of {}: {e} in {text:?}",
                lines.len()
            );
            let width = lines[line - 1].chars().count();
            let column = usize::try_from(e.column).expect("column");
            assert!(
                (1..=width + 1).contains(&column),
                "column {column} of {width}: {e} in {text:?}"
            );
            assert!(!e.message.is_empty());
        }
        Ok(policy) => {
            let again = render(&policy);
            assert_eq!(
                parse(&again).as_ref(),
                Ok(&policy),
                "round trip of {text:?} through {again:?}"
            );
        }
    }
});

fn render(p: &Policy) -> String {
    let strings = |v: &[String]| Value::Array(v.iter().cloned().map(Value::String).collect());
    let mut pipeline = Table::new();
    pipeline.insert("workflow".into(), p.pipeline.workflow.clone().into());
    let mut deploy = Table::new();
    deploy.insert("workflow".into(), p.deploy.workflow.clone().into());
    deploy.insert("environment".into(), p.deploy.environment.clone().into());
    deploy.insert("frozen".into(), p.deploy.frozen.into());
    deploy.insert(
        "freeze_reason".into(),
        p.deploy.freeze_reason.clone().into(),
    );
    let mut approvals = Table::new();
    approvals.insert("required".into(), i64::from(p.approvals.required).into());
    approvals.insert(
        "min_permission".into(),
        p.approvals.min_permission.as_str().into(),
    );
    approvals.insert("users".into(), strings(&p.approvals.users));
    approvals.insert("teams".into(), strings(&p.approvals.teams));
    approvals.insert(
        "allow_self_approval".into(),
        p.approvals.allow_self_approval.into(),
    );
    let mut prs = Table::new();
    prs.insert("allow_forks".into(), p.pull_requests.allow_forks.into());
    prs.insert("drafts".into(), p.pull_requests.drafts.into());
    let mut root = Table::new();
    root.insert("pipeline".into(), pipeline.into());
    root.insert("deploy".into(), deploy.into());
    root.insert("approvals".into(), approvals.into());
    root.insert("pull_requests".into(), prs.into());
    toml::to_string(&root).expect("a policy is TOML")
}
