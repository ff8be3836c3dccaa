//! What `greenlight setup gitlab` asks of the fake GitLab, as GitLab's API documents it:
//! - `GET /personal_access_tokens/self`: the token's `name`, `scopes`, `user_id`, `active`
//!   and `expires_at` (project and group access tokens are a bot user's personal tokens);
//! - `GET /projects/:path` (the path URL-encoded, `acme%2Fwidgets`): the project, with
//!   `restrict_user_defined_variables` and `ci_pipeline_variables_minimum_override_role`;
//! - project webhooks: `GET /projects/:id/hooks` (paged; the secret `token` is never
//!   returned), `POST /projects/:id/hooks` (201; `push_events` defaults to true and the other
//!   triggers to false, `enable_ssl_verification` to true) and `PUT /projects/:id/hooks/:id`
//!   (200; fields not given are left as they were; 404 for an unknown hook).

use std::collections::BTreeMap;

use serde_json::{Value, json};
use wiremock::{Request, ResponseTemplate};

use super::fake_gitlab::{FakeGitLab, Model, PATH, PROJECT, paged};

/// The fake's webhooks and token description.
#[derive(Debug, Default)]
pub struct Setup {
    /// Project hooks by id, as GitLab keeps them (with the secret token, which it never shows).
    pub hooks: BTreeMap<u64, Value>,
    /// The token's scopes; `None` is `["api"]`.
    pub scopes: Option<Vec<String>>,
    /// The project's pipeline-variables settings: (`restrict_user_defined_variables`,
    /// `ci_pipeline_variables_minimum_override_role`).
    pub variables: Option<(bool, String)>,
}

/// The triggers a hook has, with GitLab's defaults for those not given on creation.
const TRIGGERS: &[(&str, bool)] = &[
    ("push_events", true),
    ("merge_requests_events", false),
    ("note_events", false),
    ("pipeline_events", false),
    ("deployment_events", false),
    ("job_events", false),
    ("issues_events", false),
    ("tag_push_events", false),
    ("enable_ssl_verification", true),
];

impl FakeGitLab {
    /// The project's webhooks, secret tokens included.
    pub fn hooks(&self) -> Vec<Value> {
        self.with(|m| m.setup.hooks.values().cloned().collect())
    }
}

fn shown(hook: &Value) -> Value {
    let mut h = hook.clone();
    if let Some(o) = h.as_object_mut() {
        o.remove("token");
    }
    h
}

/// The answer to one of these calls, or `None` for any other. `path` is below
/// `/api/v4/projects/15` for a call on the project by id, the full path otherwise.
pub fn answer(
    m: &mut Model,
    method: &str,
    path: &str,
    req: &Request,
    body: &Value,
) -> Option<ResponseTemplate> {
    let encoded_path = format!("/api/v4/projects/{}", PATH.replace('/', "%2F"));
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    Some(match (method, parts.as_slice()) {
        ("GET", ["api", "v4", "personal_access_tokens", "self"]) => {
            let scopes = m.setup.scopes.clone().unwrap_or_else(|| vec!["api".into()]);
            ResponseTemplate::new(200).set_body_json(json!({
                "id": 4, "name": "greenlight", "revoked": false, "created_at": "2026-11-01T10:00:00Z",
                "scopes": scopes, "user_id": m.me.0, "last_used_at": null, "active": true,
                "expires_at": "2027-11-01",
            }))
        }
        ("GET", _) if path == encoded_path => {
            let (restrict, role) = m
                .setup
                .variables
                .clone()
                .unwrap_or((true, "developer".into()));
            ResponseTemplate::new(200).set_body_json(json!({
                "id": PROJECT, "path_with_namespace": PATH, "default_branch": "main",
                "restrict_user_defined_variables": restrict,
                "ci_pipeline_variables_minimum_override_role": role,
            }))
        }
        ("GET", ["hooks"]) => paged(req, m.setup.hooks.values().map(shown).collect()),
        ("POST", ["hooks"]) => {
            if body["url"].as_str().is_none_or(str::is_empty) {
                return Some(
                    ResponseTemplate::new(400).set_body_json(json!({ "error": "url is missing" })),
                );
            }
            m.next_id += 1;
            let id = m.next_id;
            let mut hook = json!({ "id": id, "url": body["url"], "project_id": PROJECT,
                                   "created_at": "2026-12-07T22:00:00Z" });
            for (field, default) in TRIGGERS {
                hook[*field] = body.get(*field).cloned().unwrap_or(json!(default));
            }
            hook["token"] = body.get("token").cloned().unwrap_or(json!(""));
            m.setup.hooks.insert(id, hook.clone());
            ResponseTemplate::new(201).set_body_json(shown(&hook))
        }
        ("PUT", ["hooks", id]) => {
            let Some(hook) = id
                .parse::<u64>()
                .ok()
                .and_then(|id| m.setup.hooks.get_mut(&id))
            else {
                return Some(
                    ResponseTemplate::new(404).set_body_json(json!({ "message": "404 Not found" })),
                );
            };
            if let (Some(h), Some(update)) = (hook.as_object_mut(), body.as_object()) {
                for (k, v) in update {
                    h.insert(k.clone(), v.clone());
                }
            }
            ResponseTemplate::new(200).set_body_json(shown(hook))
        }
        _ => return None,
    })
}
