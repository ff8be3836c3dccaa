//! What `greenlight setup gitlab` (and later `doctor`) asks of GitLab: the token's own
//! description, a project's or group's id and settings, the member's role, and the webhooks
//! ([Project webhooks](https://docs.gitlab.com/api/project_webhooks/),
//! [Group webhooks](https://docs.gitlab.com/api/group_webhooks/)).
//!
//! The triggers Greenlight needs are listed once, in [`HOOK_TRIGGERS`].

use http::Method;
use serde::Deserialize;
use serde_json::{Value, json};

use super::client::{GitLab, encode, id_of};
use crate::forge::retry::ForgeError;

/// The webhook triggers Greenlight acts on: (API field, as GitLab's settings page names it).
/// Job events are acted on only for deployment approvals, and not asked for.
pub const HOOK_TRIGGERS: &[(&str, &str)] = &[
    ("merge_requests_events", "Merge request events"),
    ("note_events", "Comments"),
    ("pipeline_events", "Pipeline events"),
    ("push_events", "Push events"),
    ("deployment_events", "Deployment events"),
];

/// The token scope Greenlight needs.
pub const REQUIRED_SCOPE: &str = "api";

/// The lowest access level that may manage webhooks and start pipelines on protected
/// branches: Maintainer.
pub const MAINTAINER: u64 = 40;

/// What a webhook is attached to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HookOwner {
    /// A project, by `group/name` path.
    Project(String),
    /// A group, by `group/subgroup` path (group webhooks are a Premium feature).
    Group(String),
}

impl HookOwner {
    fn collection(&self) -> &'static str {
        match self {
            Self::Project(_) => "projects",
            Self::Group(_) => "groups",
        }
    }

    /// The path the user gave.
    pub fn path(&self) -> &str {
        match self {
            Self::Project(p) | Self::Group(p) => p,
        }
    }
}

/// The token, as [Get details on a personal access token](https://docs.gitlab.com/api/personal_access_tokens/#get-details-on-a-personal-access-token)
/// describes it (project and group access tokens are personal access tokens of a bot user).
#[derive(Debug, Clone, Deserialize)]
pub struct TokenInfo {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub scopes: Vec<String>,
    pub user_id: u64,
    #[serde(default)]
    pub active: bool,
    #[serde(default)]
    pub expires_at: Option<String>,
}

/// A webhook as GitLab lists it (the secret token is never returned).
#[derive(Debug, Clone, Deserialize)]
pub struct Hook {
    pub id: u64,
    pub url: String,
    /// Its triggers and `enable_ssl_verification`, by API field.
    #[serde(flatten)]
    pub fields: serde_json::Map<String, Value>,
}

impl Hook {
    /// The labels of [`HOOK_TRIGGERS`] this hook does not have on.
    pub fn missing_triggers(&self) -> Vec<&'static str> {
        HOOK_TRIGGERS
            .iter()
            .filter(|(field, _)| self.fields.get(*field) != Some(&Value::Bool(true)))
            .map(|(_, label)| *label)
            .collect()
    }
}

impl GitLab {
    /// `GET /personal_access_tokens/self`.
    pub async fn token_info(&self) -> Result<TokenInfo, ForgeError> {
        self.call(Method::GET, "/personal_access_tokens/self", None, &[])
            .await?
            .json()
    }

    /// The project or group itself ([Get a single project](https://docs.gitlab.com/api/projects/#get-a-single-project),
    /// [Get a single group](https://docs.gitlab.com/api/groups/#get-a-single-group)): its id
    /// and settings, by path.
    pub async fn owner(&self, owner: &HookOwner) -> Result<(u64, Value), ForgeError> {
        let uri = format!("/{}/{}", owner.collection(), encode(owner.path()));
        let a = self.call(Method::GET, &uri, None, &[]).await?;
        Ok((id_of(&a)?, a.json()?))
    }

    /// The user's access level in the project or group, inherited and invited membership
    /// included; `None` for no membership.
    pub async fn access_level(
        &self,
        owner: &HookOwner,
        id: u64,
        user_id: u64,
    ) -> Result<Option<u64>, ForgeError> {
        let uri = format!("/{}/{id}/members/all/{user_id}", owner.collection());
        match self.call(Method::GET, &uri, None, &[]).await {
            Ok(a) => Ok(a.json::<Value>()?["access_level"].as_u64()),
            Err(ForgeError::NotFound) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The owner's webhooks.
    pub async fn hooks(&self, owner: &HookOwner, id: u64) -> Result<Vec<Hook>, ForgeError> {
        let list = self
            .list(&format!("/{}/{id}/hooks?per_page=100", owner.collection()))
            .await?;
        Ok(list
            .into_iter()
            .filter_map(|v| serde_json::from_value(v).ok())
            .collect())
    }

    /// Creates the webhook (`POST …/hooks`), or updates the one with id `existing`
    /// (`PUT …/hooks/:hook_id`), with every trigger of [`HOOK_TRIGGERS`] on, job events off,
    /// SSL verification on and `token` as its secret token. Returns the hook's id.
    pub async fn put_hook(
        &self,
        owner: &HookOwner,
        id: u64,
        existing: Option<u64>,
        url: &str,
        token: &str,
    ) -> Result<u64, ForgeError> {
        let mut body = json!({
            "url": url,
            "token": token,
            "enable_ssl_verification": true,
            "job_events": false,
        });
        for (field, _) in HOOK_TRIGGERS {
            body[*field] = json!(true);
        }
        let collection = owner.collection();
        let a = match existing {
            Some(hook) => {
                let uri = format!("/{collection}/{id}/hooks/{hook}");
                self.call(Method::PUT, &uri, Some(&body), &[]).await?
            }
            None => {
                let uri = format!("/{collection}/{id}/hooks");
                self.call(Method::POST, &uri, Some(&body), &[]).await?
            }
        };
        id_of(&a)
    }
}

/// Whether a member at `access_level` may pass pipeline variables in the project `project`
/// (its `restrict_user_defined_variables` and `ci_pipeline_variables_minimum_override_role`):
/// `Err` with the setting's value when not.
pub fn pipeline_variables_allowed(project: &Value, access_level: u64) -> Result<(), String> {
    let restricted = project["restrict_user_defined_variables"]
        .as_bool()
        .unwrap_or(false);
    if !restricted {
        // Unrestricted: Developers and above may (and the token needs Developer anyway).
        return Ok(());
    }
    let role = project["ci_pipeline_variables_minimum_override_role"]
        .as_str()
        .unwrap_or("maintainer");
    let needed = match role {
        "developer" => 30,
        "maintainer" => 40,
        "owner" => 50,
        _ => u64::MAX,
    };
    if access_level >= needed {
        Ok(())
    } else {
        Err(role.to_owned())
    }
}

/// GitLab's name of an access level.
pub fn role_name(level: u64) -> &'static str {
    match level {
        50.. => "Owner",
        40..=49 => "Maintainer",
        30..=39 => "Developer",
        20..=29 => "Reporter",
        15..=19 => "Planner",
        10..=14 => "Guest",
        _ => "no role",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pipeline_variables() {
        let open = json!({ "restrict_user_defined_variables": false });
        assert!(pipeline_variables_allowed(&open, 30).is_ok());
        let owner_only = json!({ "restrict_user_defined_variables": true,
                                 "ci_pipeline_variables_minimum_override_role": "owner" });
        assert_eq!(
            pipeline_variables_allowed(&owner_only, 40),
            Err("owner".into())
        );
        let nobody = json!({ "restrict_user_defined_variables": true,
                             "ci_pipeline_variables_minimum_override_role": "no_one_allowed" });
        assert!(pipeline_variables_allowed(&nobody, 50).is_err());
        let dev = json!({ "restrict_user_defined_variables": true,
                          "ci_pipeline_variables_minimum_override_role": "developer" });
        assert!(pipeline_variables_allowed(&dev, 40).is_ok());
    }

    #[test]
    fn every_trigger_is_acted_on() {
        let events = [
            ("merge_requests_events", "Merge Request Hook"),
            ("note_events", "Note Hook"),
            ("pipeline_events", "Pipeline Hook"),
            ("push_events", "Push Hook"),
            ("deployment_events", "Deployment Hook"),
        ];
        for (field, _) in HOOK_TRIGGERS {
            let (_, event) = events
                .iter()
                .find(|(f, _)| f == field)
                .expect("a trigger of a known event");
            assert!(super::super::acts_on(event));
        }
    }
}
