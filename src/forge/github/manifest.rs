//! The GitHub App manifest flow
//! ([Registering a GitHub App from a manifest](https://docs.github.com/en/apps/sharing-github-apps/registering-a-github-app-from-a-manifest)):
//! the manifest Greenlight posts to GitHub, where it is posted, and the exchange of the code
//! GitHub sends back for the new App's credentials.
//!
//! The manifest is built from [`super::requirements`], so the App is created with exactly the
//! permissions and events Greenlight needs.

use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;
use serde_json::{Value, json};

use super::requirements::{EVENTS, PERMISSIONS};

/// How long the code exchange may take (one request; GitHub answers it at once).
pub const CONVERSION_TIMEOUT: Duration = Duration::from_secs(30);

/// GitHub's longest App name.
const MAX_NAME: usize = 34;

/// The web root of the GitHub whose API is `api_url`: `https://github.com` for
/// `https://api.github.com`, `https://HOST` for GitHub Enterprise Server's
/// `https://HOST/api/v3`.
pub fn web_url_of(api_url: &str) -> String {
    let api = api_url.trim_end_matches('/');
    if let Some(rest) = api.strip_prefix("https://api.") {
        return format!("https://{rest}");
    }
    api.strip_suffix("/api/v3").unwrap_or(api).to_owned()
}

/// Where the manifest form is posted: the personal account's new-App page, or the
/// organisation's, with `state` to be handed back on the redirect.
pub fn new_app_url(web_url: &str, org: Option<&str>, state: &str) -> String {
    let web = web_url.trim_end_matches('/');
    match org {
        Some(org) => format!("{web}/organizations/{org}/settings/apps/new?state={state}"),
        None => format!("{web}/settings/apps/new?state={state}"),
    }
}

/// True for a name GitHub could give an account: letters, digits and inner hyphens.
pub fn is_account_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 39
        && !s.starts_with('-')
        && !s.ends_with('-')
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// The manifest for a Greenlight served at `public_url` (scheme and host, no trailing
/// slash), returning to `redirect_url`.
pub fn manifest(public_url: &str, redirect_url: &str) -> Value {
    let host = public_url
        .split_once("://")
        .map_or(public_url, |(_, h)| h)
        .trim_end_matches('/');
    let mut name = format!("Greenlight {host}");
    name.truncate(
        name.char_indices()
            .nth(MAX_NAME)
            .map_or(name.len(), |(i, _)| i),
    );
    let permissions: serde_json::Map<String, Value> = PERMISSIONS
        .iter()
        .map(|p| (p.key.to_owned(), json!(p.access.as_str())))
        .collect();
    let events: Vec<&str> = EVENTS.iter().map(|e| e.key).collect();
    json!({
        "name": name,
        "url": public_url,
        "hook_attributes": { "url": format!("{public_url}/webhooks/github"), "active": true },
        "redirect_url": redirect_url,
        "description": "Continuous delivery in the pull-request thread: /approve-release deploys exactly the commit that passed.",
        "public": false,
        "default_permissions": permissions,
        "default_events": events,
    })
}

/// The new App, as [Create a GitHub App from a manifest](https://docs.github.com/en/rest/apps/apps#create-a-github-app-from-a-manifest)
/// answers. Debug never shows the secrets.
#[derive(Deserialize)]
pub struct AppCredentials {
    pub id: u64,
    pub slug: String,
    pub html_url: String,
    pub client_id: String,
    #[serde(deserialize_with = "secret")]
    pub client_secret: SecretString,
    #[serde(deserialize_with = "secret")]
    pub webhook_secret: SecretString,
    #[serde(deserialize_with = "secret")]
    pub pem: SecretString,
}

fn secret<'de, D: serde::Deserializer<'de>>(d: D) -> Result<SecretString, D::Error> {
    String::deserialize(d).map(SecretString::from)
}

impl std::fmt::Debug for AppCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppCredentials")
            .field("id", &self.id)
            .field("slug", &self.slug)
            .finish_non_exhaustive()
    }
}

/// Why the code could not be exchanged. Never holds a secret.
#[derive(Debug, thiserror::Error)]
pub enum ConversionError {
    #[error("the code is not one GitHub hands out")]
    BadCode,
    #[error("GitHub could not be reached: {0}")]
    Unreachable(String),
    #[error("GitHub refused the code ({0}); it is valid for one hour and one use")]
    Refused(u16),
    #[error("GitHub's answer is not an App's credentials: {0}")]
    Malformed(String),
}

/// Exchanges the redirect's `code` for the App's credentials:
/// [`POST /app-manifests/{code}/conversions`](https://docs.github.com/en/rest/apps/apps#create-a-github-app-from-a-manifest),
/// unauthenticated (the code is the credential). Not retried: the code works once, so a
/// retry after a lost answer could only fail.
pub async fn convert(api_url: &str, code: &str) -> Result<AppCredentials, ConversionError> {
    if code.is_empty()
        || code.len() > 100
        || !code
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(ConversionError::BadCode);
    }
    let http = reqwest::Client::builder()
        .timeout(CONVERSION_TIMEOUT)
        .build()
        .map_err(|e| ConversionError::Unreachable(e.to_string()))?;
    let url = format!(
        "{}/app-manifests/{code}/conversions",
        api_url.trim_end_matches('/')
    );
    let response = http
        .post(url)
        .header("accept", "application/vnd.github+json")
        .header("x-github-api-version", "2022-11-28")
        .header(
            "user-agent",
            concat!("greenlight/", env!("CARGO_PKG_VERSION")),
        )
        .send()
        .await
        .map_err(|e| ConversionError::Unreachable(e.without_url().to_string()))?;
    let status = response.status();
    if !status.is_success() {
        return Err(ConversionError::Refused(status.as_u16()));
    }
    let body = response
        .bytes()
        .await
        .map_err(|e| ConversionError::Unreachable(e.without_url().to_string()))?;
    // serde's message names the field, never its value.
    serde_json::from_slice(&body).map_err(|e| ConversionError::Malformed(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn web_urls() {
        assert_eq!(web_url_of("https://api.github.com"), "https://github.com");
        assert_eq!(
            web_url_of("https://ghe.acme.io/api/v3/"),
            "https://ghe.acme.io"
        );
        assert_eq!(web_url_of("http://127.0.0.1:9"), "http://127.0.0.1:9");
        assert_eq!(
            new_app_url("https://github.com", Some("acme"), "t"),
            "https://github.com/organizations/acme/settings/apps/new?state=t"
        );
    }

    #[test]
    fn account_names() {
        assert!(is_account_name("acme-corp"));
        for bad in ["", "-a", "a-", "a/b", "a b", "a?x=1"] {
            assert!(!is_account_name(bad), "{bad}");
        }
    }

    #[test]
    fn the_manifest_holds_the_list() {
        let m = manifest(
            "https://gl.example.com",
            "https://gl.example.com/setup/callback",
        );
        assert_eq!(
            m["hook_attributes"]["url"],
            "https://gl.example.com/webhooks/github"
        );
        assert_eq!(m["public"], false);
        assert_eq!(m["default_permissions"]["actions"], "write");
        assert_eq!(m["default_permissions"]["contents"], "read");
        assert_eq!(
            m["default_events"].as_array().map(Vec::len),
            Some(EVENTS.len())
        );
        assert!(
            m["name"]
                .as_str()
                .is_some_and(|n| n.chars().count() <= MAX_NAME)
        );
    }
}
