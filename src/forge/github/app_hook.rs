//! The App's own webhook, as GitHub saw it: recent deliveries and how this server answered
//! them ([List deliveries for an app webhook](https://docs.github.com/en/rest/apps/webhooks#list-deliveries-for-an-app-webhook),
//! with the App's JWT). `doctor` reads them to tell a webhook that never arrives or is
//! refused (a wrong secret, a server down) from a quiet repository.

use serde::Deserialize;

use super::client::GitHub;
use crate::forge::retry::ForgeError;

/// How many of the most recent deliveries are read.
pub const RECENT_DELIVERIES: u32 = 50;

/// One delivery attempt, as GitHub lists it.
#[derive(Debug, Clone, Deserialize)]
pub struct HookDelivery {
    pub id: u64,
    /// The HTTP status this server answered; 0 when there was no answer.
    #[serde(default)]
    pub status_code: u16,
    /// GitHub's words for it (`OK`, `Invalid HTTP Response: 401`, `timed out`).
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub event: String,
    #[serde(default)]
    pub redelivery: bool,
}

impl HookDelivery {
    /// Answered with a 2xx.
    pub fn succeeded(&self) -> bool {
        (200..300).contains(&self.status_code)
    }
}

impl GitHub {
    /// The [`RECENT_DELIVERIES`] most recent deliveries of the App's webhook, newest first.
    pub async fn hook_deliveries(&self) -> Result<Vec<HookDelivery>, ForgeError> {
        self.app_get(&format!(
            "/app/hook/deliveries?per_page={RECENT_DELIVERIES}"
        ))
        .await?
        .json()
    }
}
