//! The App's own webhook deliveries, as GitHub recorded them: after an outage, the deliveries
//! GitHub could not hand over are asked again (`greenlight redeliver`, [`crate::redeliver`]).
//! GitHub does not redeliver a failed delivery by itself.
//!
//! Both endpoints take the App's JWT, not an installation token.

use http::Method;
use serde::Deserialize;

use super::GitHub;
use super::paging;
use crate::forge::retry::ForgeError;

/// One delivery of the App's webhook, as
/// [List deliveries for an app webhook](https://docs.github.com/en/rest/apps/webhooks#list-deliveries-for-an-app-webhook)
/// describes it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct HookDelivery {
    /// GitHub's id of this delivery attempt (what a redelivery is asked for).
    pub id: u64,
    /// The event's id, the `X-GitHub-Delivery` header: shared by a delivery and all its
    /// redeliveries, and the key of Greenlight's own deliveries table.
    pub guid: String,
    /// When GitHub made this attempt (RFC 3339).
    pub delivered_at: String,
    /// Whether this attempt was itself a redelivery.
    #[serde(default)]
    pub redelivery: bool,
    /// The HTTP status Greenlight answered, `0` when GitHub got no answer at all (a timeout, a
    /// refused connection).
    #[serde(default)]
    pub status_code: u16,
    /// GitHub's description of the outcome (`OK`, `Invalid HTTP Response: 503`, …).
    #[serde(default)]
    pub status: String,
    /// The event type (`pull_request`, `issue_comment`, …).
    pub event: String,
    /// The event's action, if it has one.
    #[serde(default)]
    pub action: Option<String>,
}

impl HookDelivery {
    /// Whether Greenlight took the delivery (GitHub counts any 2xx as delivered).
    pub fn succeeded(&self) -> bool {
        (200..300).contains(&self.status_code)
    }

    /// [`Self::delivered_at`] in Unix milliseconds (`None` if GitHub wrote something else).
    pub fn delivered_at_ms(&self) -> Option<i64> {
        chrono::DateTime::parse_from_rfc3339(&self.delivered_at)
            .ok()
            .map(|t| t.timestamp_millis())
    }
}

impl GitHub {
    /// The App's webhook deliveries, newest first, page after page (`cursor` pagination named
    /// by the `Link` header, 100 a page), until `keep_going` says no to a delivery (the first
    /// one older than the window) or the list ends. Returns what was read, the stopping
    /// delivery excluded.
    pub async fn hook_deliveries(
        &self,
        mut keep_going: impl FnMut(&HookDelivery) -> bool,
    ) -> Result<Vec<HookDelivery>, ForgeError> {
        let mut next = Some(paging::first_page("/app/hook/deliveries"));
        let mut all = Vec::new();
        let mut pages = 0;
        while let Some(page) = next.take() {
            if pages == paging::MAX_PAGES {
                return Err(ForgeError::Transient(format!(
                    "/app/hook/deliveries: more than {} pages",
                    paging::MAX_PAGES
                )));
            }
            pages += 1;
            let answer = self.app_call(Method::GET, &page, None).await?;
            let items: Vec<HookDelivery> = answer.json()?;
            for d in items {
                if !keep_going(&d) {
                    return Ok(all);
                }
                all.push(d);
            }
            next = paging::next_path(&answer.headers);
        }
        Ok(all)
    }

    /// [Redeliver a delivery for an app webhook](https://docs.github.com/en/rest/apps/webhooks#redeliver-a-delivery-for-an-app-webhook):
    /// GitHub answers 202 and sends the event again, under the same `X-GitHub-Delivery`.
    pub async fn redeliver(&self, delivery_id: u64) -> Result<(), ForgeError> {
        let path = format!("/app/hook/deliveries/{delivery_id}/attempts");
        self.app_call(Method::POST, &path, None).await?;
        Ok(())
    }
}
