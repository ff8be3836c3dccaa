//! Process settings: one clap tree, every field settable by flag or environment variable.
//!
//! `main` parses this once (after loading `.env`); nothing deeper in the code reads the
//! environment. A bad value makes clap name the setting and exit with status 2.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use clap::{Args, Parser, ValueEnum};
use secrecy::{ExposeSecret as _, SecretString};

pub use super::commands::{
    AuditArgs, Command, DeliveriesAction, DeliveriesArgs, ForgeArg, InitArgs, PublicArgs,
    ReleasesArgs, SetupArgs, SetupTarget,
};
use super::secret_files::{FromFile, Text, either};

/// Greenlight: continuous delivery in the pull-request thread.
#[derive(Debug, Parser)]
#[command(name = "greenlight", version, about, long_about = None)]
pub struct Cli {
    /// Log output: `pretty` for people, `json` for log pipelines.
    #[arg(
        long,
        global = true,
        env = "LOG_FORMAT",
        value_name = "LOG_FORMAT",
        default_value = "pretty"
    )]
    pub log_format: LogFormat,

    #[command(flatten)]
    pub database: DatabaseArgs,

    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// Parses the command line and environment like [`Parser::parse`], except that a value
    /// clap refuses is never repeated in the message (see [`redact_invalid_value`]); exits 2
    /// on a bad value, as clap does.
    pub fn parse_redacted() -> Self {
        match Self::try_parse() {
            Ok(cli) => cli.with_files_read(),
            Err(e) => redact_invalid_value(e).exit(),
        }
    }

    /// Each `*_FILE` setting given takes the place of its setting (clap has made sure the
    /// two were not both given).
    pub fn with_files_read(mut self) -> Self {
        if let Some(f) = self.database.database_url_file.take() {
            self.database.database_url = f.value.0;
        }
        if let Command::Redeliver(r) = &mut self.command {
            either(
                &mut r.github.github_private_key,
                r.github.github_private_key_file.take(),
            );
        }
        if let Command::Serve(s) = &mut self.command {
            either(
                &mut s.github_webhook_secret,
                s.github_webhook_secret_file.take(),
            );
            either(
                &mut s.gitlab_webhook_secret,
                s.gitlab_webhook_secret_file.take(),
            );
            either(
                &mut s.gitlab_webhook_signing_token,
                s.gitlab_webhook_signing_token_file.take(),
            );
            either(
                &mut s.github.github_private_key,
                s.github.github_private_key_file.take(),
            );
            either(
                &mut s.gitlab.gitlab_token,
                s.gitlab.gitlab_token_file.take(),
            );
        }
        if let Command::Doctor(d) = &mut self.command {
            either(
                &mut d.github.github_private_key,
                d.github.github_private_key_file.take(),
            );
            either(
                &mut d.gitlab.gitlab_token,
                d.gitlab.gitlab_token_file.take(),
            );
        }
        if let Command::Setup(SetupArgs {
            target: SetupTarget::Gitlab(g),
        }) = &mut self.command
        {
            either(
                &mut g.gitlab.gitlab_token,
                g.gitlab.gitlab_token_file.take(),
            );
        }
        self
    }
}

/// A clap error about a refused value, without the value. Clap's own message is
/// `invalid value '<VALUE>' for '<ARG>'`, and the value may be a secret: the private key, a
/// token given to the wrong variable (`GITHUB_APP_ID=<the key>`), a webhook secret in
/// `GREENLIGHT_WORKERS`. So for every setting the answer names the setting and the reason,
/// never the value. Other errors (help, version, a missing value) pass unchanged.
pub fn redact_invalid_value(err: clap::Error) -> clap::Error {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    let kind = err.kind();
    if !matches!(kind, ErrorKind::ValueValidation | ErrorKind::InvalidValue) {
        return err;
    }
    let arg = match err.get(ContextKind::InvalidArg) {
        Some(ContextValue::String(arg)) => arg.clone(),
        _ => "a setting".to_owned(),
    };
    let reason = match (kind, err.get(ContextKind::ValidValue)) {
        (ErrorKind::InvalidValue, Some(ContextValue::Strings(valid))) => {
            format!("possible values: {}", valid.join(", "))
        }
        _ => std::error::Error::source(&err)
            .map_or_else(|| "not a valid value".to_owned(), ToString::to_string),
    };
    use clap::CommandFactory as _;
    clap::Error::raw(
        kind,
        format!("invalid value for '{arg}' (value not shown): {reason}\n"),
    )
    .with_cmd(&Cli::command())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Pretty,
    Json,
}

/// Where state lives: a global flag, given before or after any subcommand.
#[derive(Debug, Clone, Args)]
pub struct DatabaseArgs {
    /// `sqlite://PATH` (embedded, the default) or `postgres://…` (several replicas).
    #[arg(
        long,
        global = true,
        env = "DATABASE_URL",
        value_name = "DATABASE_URL",
        default_value = "sqlite://greenlight.db",
        hide_env_values = true
    )]
    pub database_url: String,

    /// `DATABASE_URL`, read from this file (a Docker or Kubernetes secret).
    #[arg(
        long,
        env = "DATABASE_URL_FILE",
        value_name = "PATH",
        conflicts_with = "database_url",
        global = true
    )]
    pub database_url_file: Option<FromFile<Text>>,
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address and port the HTTP server binds.
    #[arg(
        long,
        env = "GREENLIGHT_LISTEN",
        value_name = "GREENLIGHT_LISTEN",
        default_value = "0.0.0.0:8080"
    )]
    pub listen: SocketAddr,

    /// Serve `/metrics` on this address instead of the public one (which then answers 404).
    #[arg(
        long,
        env = "GREENLIGHT_METRICS_LISTEN",
        value_name = "GREENLIGHT_METRICS_LISTEN"
    )]
    pub metrics_listen: Option<SocketAddr>,

    /// GitHub webhook secret; a comma-separated list is accepted while rotating.
    #[arg(
        long,
        env = "GITHUB_WEBHOOK_SECRET",
        value_name = "GITHUB_WEBHOOK_SECRET",
        hide_env_values = true
    )]
    pub github_webhook_secret: Option<Secrets>,

    /// `GITHUB_WEBHOOK_SECRET`, read from this file (a Docker or Kubernetes secret).
    #[arg(
        long,
        env = "GITHUB_WEBHOOK_SECRET_FILE",
        value_name = "PATH",
        conflicts_with = "github_webhook_secret"
    )]
    pub github_webhook_secret_file: Option<FromFile<Secrets>>,

    /// GitLab webhook secret token (`X-Gitlab-Token`); comma-separated while rotating.
    #[arg(
        long,
        env = "GITLAB_WEBHOOK_SECRET",
        value_name = "GITLAB_WEBHOOK_SECRET",
        hide_env_values = true
    )]
    pub gitlab_webhook_secret: Option<Secrets>,

    /// `GITLAB_WEBHOOK_SECRET`, read from this file (a Docker or Kubernetes secret).
    #[arg(
        long,
        env = "GITLAB_WEBHOOK_SECRET_FILE",
        value_name = "PATH",
        conflicts_with = "gitlab_webhook_secret"
    )]
    pub gitlab_webhook_secret_file: Option<FromFile<Secrets>>,

    /// GitLab webhook signing token (`whsec_…`, Standard Webhooks); when set, every GitLab
    /// delivery must carry a valid `webhook-signature`.
    #[arg(
        long,
        env = "GITLAB_WEBHOOK_SIGNING_TOKEN",
        value_name = "GITLAB_WEBHOOK_SIGNING_TOKEN",
        hide_env_values = true
    )]
    pub gitlab_webhook_signing_token: Option<Secrets>,

    /// `GITLAB_WEBHOOK_SIGNING_TOKEN`, read from this file (a Docker or Kubernetes secret).
    #[arg(
        long,
        env = "GITLAB_WEBHOOK_SIGNING_TOKEN_FILE",
        value_name = "PATH",
        conflicts_with = "gitlab_webhook_signing_token"
    )]
    pub gitlab_webhook_signing_token_file: Option<FromFile<Secrets>>,

    #[command(flatten)]
    pub github: GitHubAppArgs,

    #[command(flatten)]
    pub gitlab: GitLabArgs,

    /// Directory of template overrides: a file there named like one in `templates/` replaces
    /// the built-in one.
    #[arg(
        long,
        env = "GREENLIGHT_TEMPLATES_DIR",
        value_name = "GREENLIGHT_TEMPLATES_DIR"
    )]
    pub templates_dir: Option<PathBuf>,

    #[command(flatten)]
    pub worker: WorkerArgs,

    #[command(flatten)]
    pub intake: IntakeArgs,

    #[command(flatten)]
    pub public: PublicArgs,
}

/// How much unauthenticated webhook bodies may cost before their signature is checked.
#[derive(Debug, Clone, Args)]
pub struct IntakeArgs {
    /// MiB that all webhook bodies being received together may hold; past it a request is
    /// answered 503 with `Retry-After`. Keep it well under the machine's memory.
    #[arg(long, env = "GREENLIGHT_INTAKE_BUFFER_MB", value_name = "GREENLIGHT_INTAKE_BUFFER_MB", default_value_t = 64,
          value_parser = clap::value_parser!(u32).range(1..=4_095))]
    pub intake_buffer_mb: u32,

    /// Seconds a webhook body may take to arrive once its headers have; slower ones get 408.
    #[arg(long, env = "GREENLIGHT_BODY_TIMEOUT_SECS", value_name = "GREENLIGHT_BODY_TIMEOUT_SECS", default_value_t = 20,
          value_parser = clap::value_parser!(u64).range(1..=600))]
    pub body_timeout_secs: u64,
}

/// The GitHub App Greenlight acts as.
#[derive(Debug, Clone, Args)]
pub struct GitHubAppArgs {
    /// The App's numeric id (App settings → "App ID").
    #[arg(
        long,
        env = "GITHUB_APP_ID",
        value_name = "GITHUB_APP_ID",
        requires = "github_key"
    )]
    pub github_app_id: Option<u64>,

    /// The App's private key: the PEM text itself, or the path of the `.pem` file.
    #[arg(
        long,
        env = "GITHUB_PRIVATE_KEY",
        value_name = "GITHUB_PRIVATE_KEY",
        hide_env_values = true,
        group = "github_key",
        requires = "github_app_id"
    )]
    pub github_private_key: Option<PrivateKey>,

    /// `GITHUB_PRIVATE_KEY`, read from this file (a Docker or Kubernetes secret).
    #[arg(
        long,
        env = "GITHUB_PRIVATE_KEY_FILE",
        value_name = "PATH",
        conflicts_with = "github_private_key",
        group = "github_key",
        requires = "github_app_id"
    )]
    pub github_private_key_file: Option<FromFile<PrivateKey>>,

    /// REST API root: `https://api.github.com`, or `https://HOST/api/v3` for GitHub Enterprise
    /// Server.
    #[arg(
        long,
        env = "GITHUB_API_URL",
        value_name = "GITHUB_API_URL",
        default_value = "https://api.github.com"
    )]
    pub github_api_url: String,

    /// GitHub's web root, where the setup page creates the App: by default derived from
    /// `GITHUB_API_URL` (`https://github.com`, or `https://HOST` for `https://HOST/api/v3`).
    #[arg(long, env = "GITHUB_URL", value_name = "GITHUB_URL")]
    pub github_url: Option<String>,
}

impl GitHubAppArgs {
    /// [`Self::github_url`], or the web root of [`Self::github_api_url`].
    pub fn web_url(&self) -> String {
        self.github_url
            .clone()
            .unwrap_or_else(|| crate::forge::github::manifest::web_url_of(&self.github_api_url))
    }
}

/// The GitLab instance and the access token Greenlight acts with.
#[derive(Debug, Clone, Args)]
pub struct GitLabArgs {
    /// The GitLab instance: `https://gitlab.com` or a self-managed host (the API is under
    /// `/api/v4`).
    #[arg(
        long,
        env = "GITLAB_URL",
        value_name = "GITLAB_URL",
        default_value = "https://gitlab.com"
    )]
    pub gitlab_url: String,

    /// A project, group or bot user access token with the `api` scope (Developer role or
    /// higher, Maintainer to set pipeline variables on protected branches). Unset: GitLab
    /// deliveries are stored and dead-lettered with the reason.
    #[arg(
        long,
        env = "GITLAB_TOKEN",
        value_name = "GITLAB_TOKEN",
        hide_env_values = true
    )]
    pub gitlab_token: Option<Token>,

    /// `GITLAB_TOKEN`, read from this file (a Docker or Kubernetes secret).
    #[arg(
        long,
        env = "GITLAB_TOKEN_FILE",
        value_name = "PATH",
        conflicts_with = "gitlab_token"
    )]
    pub gitlab_token_file: Option<FromFile<Token>>,

    /// Greenlight answers GitLab's deployment approvals (protected environments with
    /// approval rules, Premium and Ultimate): it approves its own deploy pipeline's blocked
    /// deployment and rejects every other one of the policy's environment.
    #[arg(
        long,
        env = "GITLAB_DEPLOYMENT_APPROVALS",
        value_name = "BOOL",
        default_value_t = false,
        action = clap::ArgAction::Set
    )]
    pub gitlab_deployment_approvals: bool,
}

/// An API token. Debug never shows it.
#[derive(Clone)]
pub struct Token(SecretString);

impl Token {
    /// The secret itself, for the client that sends it.
    pub fn secret(&self) -> SecretString {
        self.0.clone()
    }
}

impl FromStr for Token {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.is_empty() {
            return Err("empty token".into());
        }
        Ok(Self(SecretString::from(s.to_owned())))
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(redacted)")
    }
}

/// A private key given inline (PEM) or as a file path; read at start-up. Debug never shows it.
#[derive(Clone)]
pub struct PrivateKey(SecretString);

impl PrivateKey {
    pub fn pem(&self) -> &str {
        self.0.expose_secret()
    }
}

impl FromStr for PrivateKey {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // Environment files often carry the PEM on one line with literal `\n`s.
        let text = if s.contains("-----BEGIN") {
            s.replace("\\n", "\n")
        } else {
            // The value is never repeated: what is neither PEM nor a path may well be the key
            // in another form (base64 DER, a truncated paste), and errors reach logs.
            std::fs::read_to_string(s).map_err(|e| {
                format!(
                    "neither PEM text (no -----BEGIN line) nor the path of a readable file ({})",
                    e.kind()
                )
            })?
        };
        if !text.contains("-----BEGIN") || !text.contains("PRIVATE KEY-----") {
            return Err("not a PEM private key (expected -----BEGIN RSA PRIVATE KEY-----)".into());
        }
        Ok(Self(SecretString::from(text)))
    }
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PrivateKey(redacted)")
    }
}

/// How the job queue is worked.
#[derive(Debug, Clone, Args)]
pub struct WorkerArgs {
    /// Concurrent job workers in this process.
    #[arg(long, env = "GREENLIGHT_WORKERS", value_name = "GREENLIGHT_WORKERS", default_value_t = 4,
          value_parser = clap::value_parser!(u16).range(1..=256))]
    pub workers: u16,

    /// Attempts before a delivery is dead-lettered.
    #[arg(long, env = "GREENLIGHT_MAX_ATTEMPTS", value_name = "GREENLIGHT_MAX_ATTEMPTS", default_value_t = 12,
          value_parser = clap::value_parser!(u32).range(1..=100))]
    pub max_attempts: u32,

    /// Seconds a worker holds a job before another worker may take it over.
    #[arg(long, env = "GREENLIGHT_JOB_LEASE_SECS", value_name = "GREENLIGHT_JOB_LEASE_SECS", default_value_t = 120,
          value_parser = clap::value_parser!(u64).range(2..=86_400))]
    pub lease_secs: u64,

    /// Seconds between reconciler passes (asking GitHub about runs whose webhooks have not
    /// come for 10 minutes); 0 turns the reconciler off.
    #[arg(long, env = "GREENLIGHT_RECONCILE_SECS", value_name = "GREENLIGHT_RECONCILE_SECS", default_value_t = 120,
          value_parser = clap::value_parser!(u64).range(0..=86_400))]
    pub reconcile_secs: u64,

    /// First retry delay in milliseconds; doubles with every attempt (with jitter).
    #[arg(long, env = "GREENLIGHT_RETRY_BASE_MS", value_name = "GREENLIGHT_RETRY_BASE_MS", default_value_t = 2_000,
          value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
    pub retry_base_ms: u64,

    /// Days processed deliveries (done or ignored) are kept before they are pruned; 0 keeps
    /// them forever. Queued, running and dead-lettered deliveries are never pruned.
    #[arg(long, env = "GREENLIGHT_RETENTION_DAYS", value_name = "GREENLIGHT_RETENTION_DAYS", default_value_t = 30,
          value_parser = clap::value_parser!(u32).range(0..=36_500))]
    pub retention_days: u32,
}

/// A list of secrets from one comma-separated value. Debug never shows them.
#[derive(Clone)]
pub struct Secrets(Arc<[SecretString]>);

impl Secrets {
    pub fn as_slice(&self) -> &[SecretString] {
        &self.0
    }
}

impl FromStr for Secrets {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let list: Vec<SecretString> = s
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| SecretString::from(s.to_owned()))
            .collect();
        if list.is_empty() {
            return Err("empty secret".into());
        }
        Ok(Self(list.into()))
    }
}

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secrets([{} redacted])", self.0.len())
    }
}

impl From<Vec<String>> for Secrets {
    fn from(list: Vec<String>) -> Self {
        Self(list.into_iter().map(SecretString::from).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_is_well_formed() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn secrets_split_and_never_print() {
        let s: Secrets = "a, b,,c".parse().expect("valid");
        assert_eq!(s.as_slice().len(), 3);
        assert_eq!(format!("{s:?}"), "Secrets([3 redacted])");
        assert!("".parse::<Secrets>().is_err());
        let t: Token = "glpat-abc".parse().expect("valid");
        assert_eq!(format!("{t:?}"), "Token(redacted)");
        assert!(" ".parse::<Token>().is_err());
    }

    #[test]
    fn a_refused_value_is_never_repeated() {
        let secret = "ghs_s3cr3tValueThatMustNotPrint";
        for args in [
            vec!["greenlight", "serve", "--github-app-id", secret],
            vec!["greenlight", "serve", "--workers", secret],
            vec!["greenlight", "--log-format", secret, "serve"],
            vec![
                "greenlight",
                "serve",
                "--github-app-id",
                "1",
                "--github-private-key",
                secret,
            ],
        ] {
            let err = redact_invalid_value(Cli::try_parse_from(&args).expect_err("invalid"));
            let text = err.to_string();
            assert!(!text.contains(secret), "{text}");
            assert!(text.contains("invalid value for '--"), "{text}");
            assert_eq!(err.exit_code(), 2);
        }
    }

    #[test]
    fn bad_value_names_the_setting() {
        let err = Cli::try_parse_from(["greenlight", "serve", "--listen", "nope"])
            .expect_err("invalid address");
        assert!(err.to_string().contains("GREENLIGHT_LISTEN"), "{err}");
        assert_eq!(err.exit_code(), 2);
    }
}
