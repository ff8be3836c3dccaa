//! The App-creation side of the fake GitHub, as GitHub documents the manifest flow
//! ([Registering a GitHub App from a manifest](https://docs.github.com/en/apps/sharing-github-apps/registering-a-github-app-from-a-manifest)):
//! - the web page `POST /settings/apps/new?state=…` (or
//!   `/organizations/{org}/settings/apps/new?state=…`) takes the form field `manifest` (JSON
//!   text), creates the App and redirects the browser to the manifest's `redirect_url` with
//!   `?code=…&state=…` (GitHub first shows a page to confirm the name; the fake confirms at
//!   once);
//! - `POST /app-manifests/{code}/conversions` (no authentication) answers `201` with the App's
//!   `id`, `slug`, `html_url`, `client_id`, `client_secret`, `webhook_secret` and `pem`, once:
//!   a code used or unknown answers `404`.
//!
//! `GET /app` answers the configured App's permissions and events ([`granted`]). It also
//! notes which App id signed each installation-token request (the JWT's `iss`), so a test
//! can tell the new App's key is the one in use.

use std::collections::HashMap;

use base64::Engine as _;
use serde_json::{Value, json};
use wiremock::{Request, ResponseTemplate};

/// The id GitHub gives the App the fake creates.
pub const NEW_APP_ID: u64 = 777_001;
pub const NEW_APP_SLUG: &str = "greenlight-acme";
/// The new App's webhook secret, as the conversion hands it over.
pub const NEW_WEBHOOK_SECRET: &str = "6f1d0c3e9b8a7f6e5d4c3b2a1f0e9d8c7b6a5f4e";

/// What the fake knows of created Apps.
#[derive(Debug, Default)]
pub struct Apps {
    /// Manifests posted to the new-App page: (organisation, or `None` for the personal
    /// account; the `state` query; the manifest).
    pub posted: Vec<(Option<String>, String, Value)>,
    /// Codes handed out, and whether each has been exchanged.
    pub codes: HashMap<String, bool>,
    /// Conversions answered with credentials.
    pub conversions: usize,
    /// The `iss` of every JWT that asked for an installation token.
    pub jwt_issuers: Vec<String>,
    /// The configured App's permissions and events as `GET /app` answers them; `None` is
    /// exactly what Greenlight asks for.
    pub app_permissions: Option<Value>,
    pub app_events: Option<Value>,
}

/// The configured App's `permissions` and `events`.
pub fn granted(apps: &Apps) -> (Value, Value) {
    use greenlight::forge::github::requirements::{EVENTS, PERMISSIONS};
    let permissions = apps.app_permissions.clone().unwrap_or_else(|| {
        Value::Object(
            PERMISSIONS
                .iter()
                .map(|p| (p.key.to_owned(), json!(p.access.as_str())))
                .collect(),
        )
    });
    let events = apps
        .app_events
        .clone()
        .unwrap_or_else(|| json!(EVENTS.iter().map(|e| e.key).collect::<Vec<_>>()));
    (permissions, events)
}

fn form(body: &[u8]) -> HashMap<String, String> {
    let text = String::from_utf8_lossy(body);
    reqwest::Url::parse(&format!("http://form/?{text}"))
        .map(|u| u.query_pairs().into_owned().collect())
        .unwrap_or_default()
}

/// The answer to an App-creation call, or `None` for any other call.
pub fn answer(
    apps: &mut Apps,
    method: &str,
    path: &str,
    req: &Request,
) -> Option<ResponseTemplate> {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let org = match segments.as_slice() {
        ["settings", "apps", "new"] => Some(None),
        ["organizations", org, "settings", "apps", "new"] => Some(Some((*org).to_owned())),
        _ => None,
    };
    if let (Some(org), "POST") = (org, method) {
        let fields = form(&req.body);
        let state = req
            .url
            .query_pairs()
            .find(|(k, _)| k == "state")
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default();
        let Some(manifest) = fields
            .get("manifest")
            .and_then(|m| serde_json::from_str::<Value>(m).ok())
        else {
            return Some(
                ResponseTemplate::new(422).set_body_string("manifest missing or not JSON"),
            );
        };
        let redirect = manifest["redirect_url"].as_str().unwrap_or("").to_owned();
        apps.posted.push((org, state.clone(), manifest));
        let code = format!("v1code{}", apps.codes.len() + 1);
        apps.codes.insert(code.clone(), false);
        let sep = if redirect.contains('?') { '&' } else { '?' };
        return Some(ResponseTemplate::new(302).insert_header(
            "location",
            format!("{redirect}{sep}code={code}&state={state}").as_str(),
        ));
    }
    if let ("POST", ["app-manifests", code, "conversions"]) = (method, segments.as_slice()) {
        return Some(match apps.codes.get_mut(*code) {
            Some(used) if !*used => {
                *used = true;
                apps.conversions += 1;
                let pem = std::fs::read_to_string(concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/tests/fixtures/test-app-key.pem"
                ))
                .expect("test key");
                let html_url = format!("https://github.com/apps/{NEW_APP_SLUG}");
                ResponseTemplate::new(201).set_body_json(json!({
                    "id": NEW_APP_ID,
                    "slug": NEW_APP_SLUG,
                    "node_id": "A_kwHOAAAAAA",
                    "owner": { "login": "acme", "id": 1, "type": "Organization" },
                    "name": "Greenlight acme",
                    "description": "",
                    "external_url": "https://greenlight.example.com",
                    "html_url": html_url,
                    "created_at": "2026-12-07T22:00:00Z",
                    "updated_at": "2026-12-07T22:00:00Z",
                    "permissions": {},
                    "events": [],
                    "client_id": "Iv1.8a61f9b3a7aba766",
                    "client_secret": "1726be1638095a19edd134c77bde3aa2ece1e5d8",
                    "webhook_secret": NEW_WEBHOOK_SECRET,
                    "pem": pem,
                }))
            }
            _ => ResponseTemplate::new(404).set_body_json(json!({ "message": "Not Found" })),
        });
    }
    if method == "POST" && path.ends_with("/access_tokens") {
        let issuer = req
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .and_then(|jwt| jwt.split('.').nth(1))
            .and_then(|claims| {
                base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(claims.trim_end_matches('='))
                    .ok()
            })
            .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
            .map(|claims| match &claims["iss"] {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            });
        apps.jwt_issuers.push(issuer.unwrap_or_default());
    }
    None
}
