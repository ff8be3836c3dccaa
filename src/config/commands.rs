//! The subcommands and their arguments (the process settings they share are in
//! [`super::settings`]).

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};

use super::settings::{GitHubAppArgs, GitLabArgs, Secrets, ServeArgs};

#[derive(Debug, Subcommand)]
#[expect(
    clippy::large_enum_variant,
    reason = "parsed once at start-up; boxing buys nothing"
)]
pub enum Command {
    /// Run the webhook receiver and the workers (the main job).
    Serve(ServeArgs),
    /// Apply database migrations and exit.
    Migrate,
    /// List recent and dead-lettered deliveries, or re-queue one. Never creates nor migrates
    /// the database.
    Deliveries(DeliveriesArgs),
    /// Print the audit log: approvals, refusals, deploy starts and ends. Never creates nor
    /// migrates the database.
    Audit(AuditArgs),
    /// Validate a repository policy file (`.github/greenlight.toml`) and exit 0 if it is valid.
    CheckConfig {
        /// Check with this forge's rules (default: gitlab for a path with `.gitlab`, else
        /// github).
        #[arg(long, value_enum)]
        forge: Option<ForgeArg>,
        /// Path to the policy file.
        file: PathBuf,
    },
    /// Configure a forge for this Greenlight: `setup gitlab` creates or updates the webhook
    /// and checks the token. (GitHub is set up on the page `serve` prints.)
    Setup(SetupArgs),
    /// Check the setup: the database and its dead letters, the GitHub App's permissions,
    /// events and recent webhook deliveries, the GitLab token's scopes. One ✓ or ✗ line per check with the fix; exit 0
    /// only when all pass. Never creates nor migrates the database.
    Doctor(DoctorArgs),
    /// Write starter files into a repository checkout: the policy and the pipeline and deploy
    /// workflows (github), or the policy and `.gitlab-ci.yml` (gitlab). Writes nothing if a
    /// file would be overwritten, unless --force.
    Init(InitArgs),
    /// List releases, most recently changed first. Never creates nor migrates the database.
    Releases(ReleasesArgs),
    /// List the forge installations Greenlight has been told of (GitHub App installations).
    /// Never creates nor migrates the database.
    Installations {
        /// One JSON object a line instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Ask GitHub to deliver again the App's webhook deliveries that failed (after an outage):
    /// each failed event once, unless it succeeded since or Greenlight has it. Needs the App
    /// (GITHUB_APP_ID and GITHUB_PRIVATE_KEY). Never creates nor migrates the database.
    Redeliver(RedeliverArgs),
    /// Print the policy file's JSON Schema (the same as `schema/greenlight.schema.json`), for
    /// editors and CI validators.
    Schema,
    /// Print a shell completion script: `greenlight completions bash > /etc/bash_completion.d/greenlight`.
    Completions {
        /// The shell to complete for.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

/// How the forges reach this server, and where setup stores what it obtains.
#[derive(Debug, Clone, Args)]
pub struct PublicArgs {
    /// The address the forges reach Greenlight at (`https://greenlight.example.com`): the
    /// webhook URLs are built on it. `serve`'s setup page falls back to the request's host.
    #[arg(long, env = "GREENLIGHT_PUBLIC_URL", value_name = "GREENLIGHT_PUBLIC_URL",
          value_parser = parse_public_url)]
    pub public_url: Option<String>,

    /// The env file setup writes the credentials it obtains into, mode 0600. `greenlight`
    /// reads this file at start-up when it is named by the environment variable (the flag
    /// only says where to write).
    #[arg(
        long,
        env = "GREENLIGHT_ENV_FILE",
        value_name = "GREENLIGHT_ENV_FILE",
        default_value = ".env"
    )]
    pub env_file: PathBuf,
}

/// An `http(s)://host[:port]` URL, without a trailing slash.
fn parse_public_url(s: &str) -> Result<String, String> {
    let s = s.trim().trim_end_matches('/');
    let rest = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
        .ok_or("must start with https:// (or http://)")?;
    if rest.is_empty() || rest.contains(['?', '#', ' ']) {
        return Err("must be a scheme and host, such as https://greenlight.example.com".into());
    }
    Ok(s.to_owned())
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// One JSON object (`ok`, `checks`, `remains`) instead of lines.
    #[arg(long)]
    pub json: bool,
    /// A GitLab project (`group/name`) to check: the token's role, the pipeline-variables
    /// setting, the webhook and the policy. Repeat for several.
    #[arg(long = "gitlab-project", value_name = "PATH")]
    pub gitlab_projects: Vec<String>,
    #[command(flatten)]
    pub public: PublicArgs,
    #[command(flatten)]
    pub github: GitHubAppArgs,
    #[command(flatten)]
    pub gitlab: GitLabArgs,
}

#[derive(Debug, Args)]
pub struct SetupArgs {
    #[command(subcommand)]
    pub target: SetupTarget,
}

#[derive(Debug, Subcommand)]
pub enum SetupTarget {
    /// Create or update the GitLab webhook of a project or group (URL, secret token, the
    /// triggers Greenlight needs, SSL verification), store its secret token, and check the
    /// token's scopes and role and the project's pipeline-variables setting.
    Gitlab(SetupGitLabArgs),
}

#[derive(Debug, Args)]
pub struct SetupGitLabArgs {
    /// The project (`group/name`) whose webhook to set up.
    #[arg(long, required_unless_present = "group", conflicts_with = "group")]
    pub project: Option<String>,
    /// Or the group (`group/subgroup`) whose webhook to set up (GitLab Premium).
    #[arg(long)]
    pub group: Option<String>,
    /// The secret token to give the webhook (the first of a comma-separated list); when
    /// unset, a new one is generated and stored in the env file.
    #[arg(
        long,
        env = "GITLAB_WEBHOOK_SECRET",
        value_name = "GITLAB_WEBHOOK_SECRET",
        hide_env_values = true
    )]
    pub gitlab_webhook_secret: Option<Secrets>,
    #[command(flatten)]
    pub gitlab: GitLabArgs,
    #[command(flatten)]
    pub public: PublicArgs,
}

/// A forge, as named on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ForgeArg {
    Github,
    Gitlab,
}

impl From<ForgeArg> for crate::release::Forge {
    fn from(f: ForgeArg) -> Self {
        match f {
            ForgeArg::Github => Self::GitHub,
            ForgeArg::Gitlab => Self::GitLab,
        }
    }
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Which forge the repository is on.
    #[arg(value_enum)]
    pub forge: ForgeArg,
    /// The repository checkout to write into.
    #[arg(long, default_value = ".")]
    pub dir: PathBuf,
    /// Overwrite files that exist with other content.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct ReleasesArgs {
    /// Only this repository (`owner/name`, or a GitLab project path).
    #[arg(long)]
    pub repo: Option<String>,
    /// Only releases to this environment.
    #[arg(long)]
    pub env: Option<String>,
    /// Only releases in this stage.
    #[arg(long, value_parser = parse_stage)]
    pub stage: Option<crate::release::Stage>,
    /// How many releases to print.
    #[arg(long, default_value_t = 50)]
    pub limit: u32,
    /// One JSON object a line instead of a table.
    #[arg(long)]
    pub json: bool,
}

fn parse_stage(s: &str) -> Result<crate::release::Stage, String> {
    crate::release::Stage::parse(s).ok_or_else(|| {
        "one of pipeline_pending, pipeline_running, pipeline_failed, ready, queued, deploying, \
         deployed, deploy_failed, superseded, closed"
            .to_owned()
    })
}

#[derive(Debug, Args)]
pub struct RedeliverArgs {
    /// How far back to look: 90s, 30m, 24h, 3d (GitHub keeps about three days of
    /// deliveries).
    #[arg(long, default_value = "24h", value_parser = crate::redeliver::parse_duration)]
    pub since: i64,
    /// Print what would be asked again, and ask nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// One JSON object a line instead of a table.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub github: GitHubAppArgs,
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Only this repository (`owner/name`, or a GitLab project path).
    #[arg(long)]
    pub repo: Option<String>,

    /// How many entries to print (the most recent ones, oldest first).
    #[arg(long, default_value_t = 100)]
    pub limit: u32,

    /// One JSON object a line instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct DeliveriesArgs {
    /// How many deliveries to list.
    #[arg(long, default_value_t = 20)]
    pub limit: u32,

    /// Only dead-lettered deliveries.
    #[arg(long)]
    pub dead: bool,

    /// One JSON object a line instead of a table (also for `show`).
    #[arg(long, global = true)]
    pub json: bool,

    #[command(subcommand)]
    pub action: Option<DeliveriesAction>,
}

#[derive(Debug, Subcommand)]
pub enum DeliveriesAction {
    /// Put deliveries back in the queue with a fresh attempt budget: one by id, or every
    /// dead letter.
    Retry {
        /// The delivery's numeric id, from the listing's first column.
        #[arg(required_unless_present = "all_dead", conflicts_with = "all_dead")]
        id: Option<i64>,
        /// Every dead-lettered delivery (after an outage, say).
        #[arg(long)]
        all_dead: bool,
        /// With --all-dead: only those received since this time (RFC 3339, e.g.
        /// 2026-12-07T09:00:00Z).
        #[arg(long, requires = "all_dead", value_parser = parse_time)]
        since: Option<i64>,
    },
    /// Print one delivery: its state, attempts, last error and the payload as it came
    /// (webhook headers, and so signatures and tokens, are never stored).
    Show {
        /// The delivery's numeric id, from the listing's first column.
        id: i64,
    },
}

/// An RFC 3339 time as Unix milliseconds.
fn parse_time(s: &str) -> Result<i64, String> {
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.timestamp_millis())
        .map_err(|e| format!("not an RFC 3339 time ({e}), e.g. 2026-12-07T09:00:00Z"))
}
