//! GitHub's deployment payloads: the environment's gate asking (`deployment_protection_rule`)
//! and deployments made or moving on (`deployment`, `deployment_status`), whoever made them.

use serde::Deserialize;

use super::{Parsed, PayloadError, missing, sha};
use crate::release::{Creator, DeploymentSeen, Event, GateRequest, Login, RepoRef};

/// [`deployment_protection_rule`](https://docs.github.com/en/webhooks/webhook-events-and-payloads#deployment_protection_rule)
#[derive(Deserialize)]
struct GatePayload {
    environment: String,
    #[serde(default)]
    event: String,
    deployment_callback_url: String,
    deployment: Option<Deployment>,
}

/// [`deployment`](https://docs.github.com/en/webhooks/webhook-events-and-payloads#deployment)
/// and [`deployment_status`](https://docs.github.com/en/webhooks/webhook-events-and-payloads#deployment_status):
/// both carry the deployment.
#[derive(Deserialize)]
struct DeploymentPayload {
    deployment: Deployment,
}

#[derive(Deserialize)]
struct Deployment {
    id: u64,
    #[serde(default)]
    sha: Option<String>,
    #[serde(default)]
    environment: Option<String>,
    creator: Option<User>,
}

#[derive(Deserialize)]
struct User {
    login: String,
    id: u64,
}

impl From<User> for Creator {
    fn from(u: User) -> Self {
        Self {
            id: u.id,
            login: Login(u.login),
        }
    }
}

/// Parses the three deployment events of `repo`.
pub(super) fn parse(
    event: &str,
    action: &str,
    payload: &[u8],
    repo: RepoRef,
) -> Result<Parsed, PayloadError> {
    let json = |e| PayloadError::Json {
        event: event.to_owned(),
        source: e,
    };
    if event == "deployment_protection_rule" {
        if action != "requested" {
            return Ok(Parsed::Ignored(
                "deployment_protection_rule action not acted on",
            ));
        }
        let g: GatePayload = serde_json::from_slice(payload).map_err(json)?;
        let run_id = callback_run_id(&g.deployment_callback_url, repo.name.as_str())?;
        let deployment = g.deployment;
        return Ok(Parsed::Event(Event::DeploymentGateRequested(GateRequest {
            environment: g.environment,
            run_id,
            deployment_id: deployment.as_ref().map(|d| d.id),
            sha: deployment
                .as_ref()
                .and_then(|d| d.sha.as_deref())
                .map(sha)
                .transpose()?,
            creator: deployment.and_then(|d| d.creator).map(Creator::from),
            trigger: g.event,
            repo,
        })));
    }
    if action != "created" {
        return Ok(Parsed::Ignored("deployment action not acted on"));
    }
    let d = serde_json::from_slice::<DeploymentPayload>(payload)
        .map_err(json)?
        .deployment;
    Ok(Parsed::Event(Event::DeploymentSeen(DeploymentSeen {
        deployment_id: d.id,
        environment: d
            .environment
            .ok_or_else(|| missing("deployment.environment"))?,
        sha: sha(d.sha.as_deref().ok_or_else(|| missing("deployment.sha"))?)?,
        creator: d
            .creator
            .ok_or_else(|| missing("deployment.creator"))?
            .into(),
        job_id: None,
        repo,
    })))
}

/// The run id of a gate's callback,
/// `https://HOST/repos/{owner}/{repo}/actions/runs/{run_id}/deployment_protection_rule`.
/// Only the id is taken: the answer goes to our own API base for the payload's repository,
/// never to a URL a payload names. A callback of another repository is an error.
fn callback_run_id(url: &str, repo: &str) -> Result<u64, PayloadError> {
    let bad = || PayloadError::Invalid(format!("deployment_callback_url {url:?}"));
    let path = url.split('?').next().unwrap_or_default();
    let rest = path
        .strip_suffix("/deployment_protection_rule")
        .ok_or_else(bad)?;
    let (head, id) = rest.rsplit_once("/actions/runs/").ok_or_else(bad)?;
    if !head
        .to_ascii_lowercase()
        .ends_with(&format!("/repos/{}", repo.to_ascii_lowercase()))
    {
        return Err(bad());
    }
    id.parse().map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::super::parse as parse_event;
    use super::*;
    use crate::release::CommitSha;

    const REPO: &str = r#""repository": { "full_name": "acme/widgets", "default_branch": "main" },
        "installation": { "id": 42 }"#;

    #[test]
    fn a_gate_request_names_the_run_the_deployment_and_its_creator() {
        let body = format!(
            r#"{{ "action": "requested", "environment": "production", "event": "workflow_dispatch",
                "deployment_callback_url": "https://api.github.com/repos/acme/widgets/actions/runs/77/deployment_protection_rule",
                "deployment": {{ "id": 5, "sha": "{sha}", "environment": "production",
                                 "creator": {{ "login": "g[bot]", "id": 9 }} }},
                {REPO} }}"#,
            sha = "a".repeat(40)
        );
        let Ok(Parsed::Event(Event::DeploymentGateRequested(g))) =
            parse_event("deployment_protection_rule", body.as_bytes())
        else {
            panic!("a gate request");
        };
        assert_eq!((g.run_id, g.deployment_id), (77, Some(5)));
        assert_eq!(g.sha, CommitSha::parse(&"a".repeat(40)));
        assert_eq!(g.creator.map(|c| c.id), Some(9));
        assert_eq!(
            (g.environment.as_str(), g.trigger.as_str()),
            ("production", "workflow_dispatch")
        );
    }

    #[test]
    fn deployments_and_their_statuses_carry_the_deployment() {
        let d = format!(
            r#""deployment": {{ "id": 5, "sha": "{}", "environment": "production",
                               "creator": {{ "login": "mallory", "id": 666 }} }}"#,
            "b".repeat(40)
        );
        for (event, extra) in [
            ("deployment", ""),
            (
                "deployment_status",
                r#""deployment_status": { "state": "success" },"#,
            ),
        ] {
            let body = format!(r#"{{ "action": "created", {extra} {d}, {REPO} }}"#);
            let Ok(Parsed::Event(Event::DeploymentSeen(seen))) =
                parse_event(event, body.as_bytes())
            else {
                panic!("{event}: a deployment seen");
            };
            assert_eq!((seen.deployment_id, seen.creator.id), (5, 666), "{event}");
            assert_eq!(seen.environment, "production");
        }
    }

    #[test]
    fn the_run_id_comes_from_the_callback_of_the_same_repository() {
        let url =
            "https://api.github.com/repos/acme/widgets/actions/runs/123/deployment_protection_rule";
        assert_eq!(callback_run_id(url, "acme/widgets").expect("ok"), 123);
        let ghes = "https://ghe.example/api/v3/repos/Acme/Widgets/actions/runs/9/deployment_protection_rule";
        assert_eq!(callback_run_id(ghes, "acme/widgets").expect("ok"), 9);
        for bad in [
            "https://api.github.com/repos/evil/other/actions/runs/123/deployment_protection_rule",
            "https://api.github.com/repos/acme/widgets/actions/runs/x/deployment_protection_rule",
            "https://api.github.com/repos/acme/widgets/actions/runs/123",
            "",
        ] {
            assert!(callback_run_id(bad, "acme/widgets").is_err(), "{bad}");
        }
    }
}
