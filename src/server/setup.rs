//! The GitHub App setup page: `GET /setup?token=…` and GitHub's redirect back to
//! `GET /setup/callback?code=…&state=…`.
//!
//! Offered only while the App is not configured, and only to who holds the one-time token
//! `serve` printed: the page is reachable by anyone who finds the host, and whoever finished
//! it first would make Greenlight trust their App. The token is GitHub's `state` too, so a
//! redirect carrying another state is refused. Every refusal, and every request once the App
//! is set up, answers 404 as an unknown path does. The credentials GitHub hands over are
//! written to the env file ([`crate::config::env_file`]) and swapped into the running server
//! (webhook verifier and engine) through [`Live`] slots: no restart. They are never logged
//! nor shown.

use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use secrecy::{ExposeSecret as _, SecretString};
use serde::Deserialize;
use subtle::ConstantTimeEq as _;

use super::AppState;
use crate::config::env_file::{self, Entry};
use crate::config::{Live, Secrets};
use crate::forge::github::GitHub;
use crate::forge::github::manifest::{self, AppCredentials};
use crate::forge::rate_limits::RateLimits;
use crate::render::pages::{Pages, SetupDoneView, SetupFailedView, SetupView};

/// Where the setup page's App goes and comes from.
#[derive(Debug, Clone)]
pub struct SetupConfig {
    /// GitHub's web root (`https://github.com`, or a GitHub Enterprise Server's).
    pub web_url: String,
    /// GitHub's REST API root, for the code exchange and the new client.
    pub api_url: String,
    /// How GitHub reaches this server (`GREENLIGHT_PUBLIC_URL`); from the request's `Host`
    /// when unset.
    pub public_url: Option<String>,
    /// Where the credentials are stored (`GREENLIGHT_ENV_FILE`).
    pub env_file: PathBuf,
}

/// The setup page's state: its token, and where the credentials go once obtained.
pub struct GitHubSetup {
    config: SetupConfig,
    token: SecretString,
    /// The engine's GitHub client.
    app: Live<GitHub>,
    /// The webhook verifier's secrets.
    secrets: Live<Secrets>,
    /// Rate-limit pauses the new client shares (with the database, across replicas).
    limits: RateLimits,
    /// Set once the App is configured; held while a redirect is worked, so two redirects
    /// (a double click) cannot both configure an App.
    done: tokio::sync::Mutex<bool>,
    pages: Pages,
}

impl std::fmt::Debug for GitHubSetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitHubSetup")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl GitHubSetup {
    /// A setup page with a fresh random token, filling `app` and `secrets` when done.
    pub fn new(
        config: SetupConfig,
        app: Live<GitHub>,
        secrets: Live<Secrets>,
        limits: RateLimits,
    ) -> Self {
        let bytes: [u8; 24] = rand::random();
        Self {
            config,
            token: SecretString::from(hex::encode(bytes)),
            app,
            secrets,
            limits,
            done: tokio::sync::Mutex::new(false),
            pages: Pages::default(),
        }
    }

    /// The page's address on `base` (`http://host:port`), token included: for the operator's
    /// eyes only (`serve` prints it once, on standard output, never in a log line).
    pub fn url(&self, base: &str) -> String {
        format!(
            "{}/setup?token={}",
            base.trim_end_matches('/'),
            self.token.expose_secret()
        )
    }

    fn token_is(&self, given: Option<&str>) -> bool {
        given.is_some_and(|g| bool::from(g.as_bytes().ct_eq(self.token.expose_secret().as_bytes())))
    }

    /// `GREENLIGHT_PUBLIC_URL`, else the scheme and host the request came to.
    fn public_url(&self, headers: &HeaderMap) -> Option<String> {
        if let Some(url) = &self.config.public_url {
            return Some(url.trim_end_matches('/').to_owned());
        }
        let host = headers.get(header::HOST)?.to_str().ok()?;
        // A Host header is name[:port]; anything else is not put into a manifest.
        if host.is_empty()
            || !host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b))
        {
            return None;
        }
        let proto = match headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
        {
            Some("https") => "https",
            _ => "http",
        };
        Some(format!("{proto}://{host}"))
    }

    /// Stores the credentials and puts them to use; the error names what failed, never a
    /// secret.
    fn adopt(&self, app: &AppCredentials) -> Result<(), String> {
        let client = GitHub::new(app.id, app.pem.expose_secret(), &self.config.api_url)
            .map_err(|e| format!("GitHub's private key cannot be used: {e}"))?
            .with_rate_limits(self.limits.clone());
        let id = app.id.to_string();
        env_file::write(
            &self.config.env_file,
            &[
                Entry {
                    key: "GITHUB_APP_ID",
                    value: &id,
                },
                Entry {
                    key: "GITHUB_PRIVATE_KEY",
                    value: app.pem.expose_secret(),
                },
                Entry {
                    key: "GITHUB_WEBHOOK_SECRET",
                    value: app.webhook_secret.expose_secret(),
                },
                Entry {
                    key: "GITHUB_CLIENT_ID",
                    value: &app.client_id,
                },
                Entry {
                    key: "GITHUB_CLIENT_SECRET",
                    value: app.client_secret.expose_secret(),
                },
            ],
        )
        .map_err(|e| e.to_string())?;
        self.secrets.set(Secrets::from(vec![
            app.webhook_secret.expose_secret().to_owned(),
        ]));
        self.app.set(client);
        Ok(())
    }
}

#[derive(Debug, Deserialize)]
pub struct PageQuery {
    token: Option<String>,
    org: Option<String>,
}

fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "not found\n").into_response()
}

/// Pages with secrets in their forms or links are neither cached nor framed.
fn page(status: StatusCode, html: String) -> Response {
    (
        status,
        [
            (header::CACHE_CONTROL, "no-store"),
            (header::X_FRAME_OPTIONS, "DENY"),
        ],
        Html(html),
    )
        .into_response()
}

/// `GET /setup?token=…[&org=…]`
pub async fn show(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<PageQuery>,
) -> Response {
    let Some(setup) = state.setup.as_ref() else {
        return not_found();
    };
    if *setup.done.lock().await || !setup.token_is(q.token.as_deref()) {
        return not_found();
    }
    let Some(public) = setup.public_url(&headers) else {
        return page(
            StatusCode::BAD_REQUEST,
            setup.pages.setup_failed(&SetupFailedView {
                reason:
                    "The request's Host header cannot name this server: set GREENLIGHT_PUBLIC_URL."
                        .into(),
                app_url: None,
            }),
        );
    };
    let typed = q.org.as_deref().map(str::trim).filter(|o| !o.is_empty());
    let org = typed.filter(|o| manifest::is_account_name(o));
    let org_error = match (typed, org) {
        (Some(t), None) => Some(format!("{t:?} is not an organization name.")),
        _ => None,
    };
    let token = setup.token.expose_secret();
    let manifest = manifest::manifest(&public, &format!("{public}/setup/callback"));
    let view = SetupView {
        action: manifest::new_app_url(&setup.config.web_url, org, token),
        manifest: manifest.to_string(),
        owner: org.map_or_else(
            || "your personal account".to_owned(),
            |o| format!("the organization {o}"),
        ),
        org: org.map(str::to_owned),
        org_error,
        token: token.to_owned(),
        webhook_url: format!("{public}/webhooks/github"),
        env_file: setup.config.env_file.display().to_string(),
    };
    page(StatusCode::OK, setup.pages.setup(&view))
}

#[derive(Debug, Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
}

/// `GET /setup/callback?code=…&state=…`: GitHub's redirect after the App was created.
pub async fn callback(State(state): State<AppState>, Query(q): Query<CallbackQuery>) -> Response {
    let Some(setup) = state.setup.as_ref() else {
        return not_found();
    };
    let mut done = setup.done.lock().await;
    if *done || !setup.token_is(q.state.as_deref()) {
        return not_found();
    }
    let failed = |status, reason: String, app_url: Option<String>| {
        tracing::warn!(%reason, "GitHub App setup did not finish");
        page(
            status,
            setup
                .pages
                .setup_failed(&SetupFailedView { reason, app_url }),
        )
    };
    let app = match manifest::convert(&setup.config.api_url, q.code.as_deref().unwrap_or("")).await
    {
        Ok(app) => app,
        Err(e) => return failed(StatusCode::BAD_GATEWAY, e.to_string(), None),
    };
    if let Err(reason) = setup.adopt(&app) {
        return failed(
            StatusCode::INTERNAL_SERVER_ERROR,
            reason,
            Some(app.html_url.clone()),
        );
    }
    *done = true;
    tracing::info!(
        app_id = app.id,
        slug = %app.slug,
        file = %setup.config.env_file.display(),
        "GitHub App created and configured; its credentials are stored"
    );
    page(
        StatusCode::OK,
        setup.pages.setup_done(&SetupDoneView {
            slug: app.slug.clone(),
            install_url: format!("{}/installations/new", app.html_url.trim_end_matches('/')),
            env_file: setup.config.env_file.display().to_string(),
        }),
    )
}

/// Shared by the router's state.
pub type Shared = Option<Arc<GitHubSetup>>;
