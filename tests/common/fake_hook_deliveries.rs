//! The App's webhook deliveries in the fake GitHub: GitHub's record of every delivery of the
//! App's webhook, and redelivery on request.
//!
//! As documented for
//! [List deliveries for an app webhook](https://docs.github.com/en/rest/apps/webhooks#list-deliveries-for-an-app-webhook)
//! and [Redeliver a delivery for an app webhook](https://docs.github.com/en/rest/apps/webhooks#redeliver-a-delivery-for-an-app-webhook):
//! - both take the App's JWT only (an installation token is refused, 401);
//! - the list is newest first, `per_page` (default 30, at most 100), paged by an opaque
//!   `cursor` that the `Link` header's `rel="next"` names;
//! - a redelivery answers 202 and is itself a delivery, listed first, with the same `guid` and
//!   `redelivery: true`; an unknown delivery id gets 404.

use serde_json::{Value, json};
use wiremock::{Request, ResponseTemplate};

use super::fake_github::{FakeGitHub, Model};
use super::fake_http::{ok, query};

/// Whether the request carries the App's JWT (`Bearer eyJ…`), not an installation token.
fn as_the_app(req: &Request) -> bool {
    req.headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("Bearer eyJ"))
}

fn refused() -> ResponseTemplate {
    ResponseTemplate::new(401).set_body_json(json!({
        "message": "A JSON web token could not be decoded",
        "documentation_url": "https://docs.github.com/rest",
    }))
}

/// `GET /app/hook/deliveries`.
pub fn list(m: &Model, req: &Request) -> ResponseTemplate {
    if !as_the_app(req) {
        return refused();
    }
    let q = query(req);
    let per_page = q
        .get("per_page")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(30)
        .clamp(1, 100);
    let start = match q.get("cursor") {
        Some(c) => match m
            .hook_deliveries
            .iter()
            .position(|d| format!("v1_{}", d["id"]) == *c)
        {
            Some(i) => i,
            None => {
                return ResponseTemplate::new(400)
                    .set_body_json(json!({ "message": "Invalid cursor" }));
            }
        },
        None => 0,
    };
    let page: Vec<Value> = m
        .hook_deliveries
        .iter()
        .skip(start)
        .take(per_page)
        .cloned()
        .collect();
    let mut answer = ok(Value::Array(page));
    if let Some(next) = m.hook_deliveries.get(start + per_page) {
        let mut url = req.url.clone();
        url.query_pairs_mut()
            .clear()
            .append_pair("per_page", &per_page.to_string())
            .append_pair("cursor", &format!("v1_{}", next["id"]));
        answer = answer.insert_header("link", format!("<{url}>; rel=\"next\"").as_str());
    }
    answer
}

/// `POST /app/hook/deliveries/{id}/attempts`.
pub fn redeliver(m: &mut Model, req: &Request, id: &str) -> ResponseTemplate {
    if !as_the_app(req) {
        return refused();
    }
    let wanted = id.parse::<u64>().ok();
    let Some(original) = m
        .hook_deliveries
        .iter()
        .find(|d| d["id"].as_u64() == wanted)
        .cloned()
    else {
        return ResponseTemplate::new(404).set_body_json(json!({ "message": "Not Found" }));
    };
    m.redelivery_requests.push(wanted.unwrap_or(0));
    m.next_id += 1;
    let mut again = original;
    again["id"] = json!(m.next_id);
    again["redelivery"] = json!(true);
    again["delivered_at"] = json!(chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string());
    again["status_code"] = json!(202);
    again["status"] = json!("OK");
    m.hook_deliveries.insert(0, again);
    ResponseTemplate::new(202).set_body_json(json!({}))
}

impl FakeGitHub {
    /// GitHub delivered event `guid` (`event`.`action`) `minutes_ago`, and Greenlight answered
    /// `status_code` (0: no answer at all). Deliveries are listed newest first, so add them
    /// oldest first. Returns the delivery's id.
    pub fn hook_delivery(
        &self,
        guid: &str,
        event: &str,
        action: &str,
        status_code: u16,
        minutes_ago: i64,
    ) -> u64 {
        self.with(|m| {
            m.next_id += 1;
            let at = chrono::Utc::now() - chrono::Duration::minutes(minutes_ago);
            let status = match status_code {
                200..=299 => "OK".to_owned(),
                0 => "timed out".to_owned(),
                code => format!("Invalid HTTP Response: {code}"),
            };
            m.hook_deliveries.insert(
                0,
                json!({
                    "id": m.next_id,
                    "guid": guid,
                    "delivered_at": at.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
                    "redelivery": false,
                    "duration": 0.27,
                    "status": status,
                    "status_code": status_code,
                    "event": event,
                    "action": action,
                    "installation_id": super::fake_github::INSTALLATION,
                    "repository_id": 1_296_269,
                    "throttled_at": null,
                }),
            );
            m.next_id
        })
    }

    /// The delivery ids Greenlight asked GitHub to redeliver, in order.
    pub fn redelivery_requests(&self) -> Vec<u64> {
        self.with(|m| m.redelivery_requests.clone())
    }
}
