//! The HTTP stack under octocrab, built by hand so every request to GitHub says who we are
//! ([`USER_AGENT`]).
//!
//! octocrab's default client always adds `User-Agent: octocrab`, and its `add_header` appends
//! a second value instead of replacing it. Its supported way out is a custom service stack
//! (octocrab's `custom_client` example): the hyper client, then octocrab's own layers for the
//! base URI and the extra headers, with the App's credentials as the auth state, so octocrab
//! still mints and refreshes installation tokens. Timeouts are not layered here: every call
//! through [`super::GitHub`] is bounded as a whole (connect, send and read) by its own timeout.

use std::sync::Arc;

use http::HeaderValue;
use http::header::USER_AGENT as USER_AGENT_HEADER;
use octocrab::auth::AppAuth;
use octocrab::models::AppId;
use octocrab::service::middleware::base_uri::BaseUriLayer;
use octocrab::service::middleware::extra_headers::ExtraHeadersLayer;
use octocrab::{AuthState, Octocrab, OctocrabBuilder};
use tower_http::follow_redirect::FollowRedirectLayer;

use crate::forge::USER_AGENT;

/// An octocrab client authenticated as the App (`app_id`, `key`) against `api_url`
/// (`https://api.github.com`, or a GitHub Enterprise Server's `https://HOST/api/v3`), sending
/// [`USER_AGENT`] as its only `User-Agent`, and following redirects (a renamed repository
/// answers 301) as octocrab's default client does.
pub(super) fn app_client(
    app_id: u64,
    key: octocrab::EncodingKey,
    api_url: &str,
) -> anyhow::Result<Octocrab> {
    let base: http::Uri = api_url
        .parse()
        .map_err(|e| anyhow::anyhow!("GITHUB_API_URL is not a valid URL: {e}"))?;
    anyhow::ensure!(
        matches!(base.scheme_str(), Some("http" | "https")) && base.authority().is_some(),
        "GITHUB_API_URL must be an http(s) URL"
    );
    // The process may have chosen a TLS provider; otherwise ring, as octocrab's default does.
    let provider = rustls::crypto::CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::ring::default_provider()));
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_native_roots(provider)
        .map_err(|e| anyhow::anyhow!("cannot load the system's TLS roots: {e}"))?
        // Plain http is for tests and for a GHES behind a local proxy; GitHub itself is https.
        .https_or_http()
        .enable_http1()
        .build();
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build(https);
    let agent = HeaderValue::from_static(USER_AGENT);
    let crab = OctocrabBuilder::new_empty()
        .with_service(client)
        .with_layer(&FollowRedirectLayer::new())
        .with_layer(&ExtraHeadersLayer::new(Arc::new(vec![(
            USER_AGENT_HEADER,
            agent,
        )])))
        .with_layer(&BaseUriLayer::new(base))
        .with_auth(AuthState::App(AppAuth {
            app_id: AppId(app_id),
            key,
        }))
        .build()
        .map_err(|e| anyhow::anyhow!("cannot build the GitHub client: {e}"))?;
    Ok(crab)
}
