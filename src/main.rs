//! The `greenlight` command: wiring only. Each subcommand reads its settings (flags, environment,
//! `.env`) once and hands them to the library.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use greenlight::config::commands::SetupGitLabArgs;
use greenlight::config::settings::{
    DeliveriesAction, DeliveriesArgs, InitArgs, SetupArgs, SetupTarget,
};
use greenlight::config::{AuditArgs, Cli, Command, GitHubAppArgs, GitLabArgs, ServeArgs, policy};
use greenlight::engine::{Engine, reconcile};
use greenlight::forge::Forge;
use greenlight::forge::github::GitHub;
use greenlight::forge::gitlab::GitLab;
use greenlight::forge::rate_limits::RateLimits;
use greenlight::metrics::Metrics;
use greenlight::render::Renderer;
use greenlight::server::{self, Intake};
use greenlight::store::Store;
use greenlight::worker::WorkerConfig;
use tokio_util::sync::CancellationToken;

fn main() -> ExitCode {
    // A missing .env is normal; a malformed one is worth a word but not fatal. Setup writes
    // the credentials it obtains to GREENLIGHT_ENV_FILE (default .env), so that file is read.
    let loaded = match std::env::var_os("GREENLIGHT_ENV_FILE") {
        Some(path) => dotenvy::from_path(path),
        None => dotenvy::dotenv().map(drop),
    };
    if let Err(e) = loaded
        && !e.not_found()
    {
        eprintln!("warning: ignoring the env file: {e}");
    }
    let cli = Cli::parse_redacted();
    greenlight::telemetry::init(cli.log_format);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command, &cli.database.database_url)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            // A database that is missing or older than the binary is a usage error, like a
            // bad setting: status 2.
            if e.downcast_ref::<greenlight::store::OpenError>().is_some() {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

async fn run(command: Command, database_url: &str) -> anyhow::Result<()> {
    match command {
        Command::Serve(args) => serve(args, database_url).await,
        Command::Migrate => {
            let store = Store::connect(database_url).await?;
            store.migrate().await?;
            println!("migrations applied");
            Ok(())
        }
        Command::Deliveries(args) => deliveries(args, database_url).await,
        Command::Audit(args) => audit(args, database_url).await,
        Command::Releases(args) => {
            let store = Store::open_existing(database_url).await?;
            let rows = store
                .list_releases(&greenlight::store::ReleaseFilter {
                    repo: args.repo.as_deref(),
                    environment: args.env.as_deref(),
                    stage: args.stage,
                    limit: args.limit,
                })
                .await?;
            print!("{}", greenlight::listing::releases(&rows, args.json));
            Ok(())
        }
        Command::Installations { json } => {
            let store = Store::open_existing(database_url).await?;
            let rows = store.list_installations().await?;
            print!("{}", greenlight::listing::installations(&rows, json));
            Ok(())
        }
        Command::Redeliver(args) => redeliver(args, database_url).await,
        Command::CheckConfig { forge, file } => check_config(&file, forge.map(Into::into)),
        Command::Init(args) => init(&args),
        Command::Doctor(args) => doctor(args, database_url).await,
        Command::Setup(SetupArgs {
            target: SetupTarget::Gitlab(args),
        }) => setup_gitlab(args).await,
        Command::Completions { shell } => {
            use clap::CommandFactory as _;
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "greenlight",
                &mut std::io::stdout(),
            );
            Ok(())
        }
        Command::Schema => {
            print!("{}", greenlight::config::schema::policy_schema_json());
            Ok(())
        }
    }
}

/// How long a run may stay silent before the reconciler asks the forge about it.
const RECONCILE_QUIET: std::time::Duration = std::time::Duration::from_secs(10 * 60);

async fn serve(args: ServeArgs, database_url: &str) -> anyhow::Result<()> {
    let store = Store::connect(database_url).await?;
    store.migrate().await?;
    let intake = Intake {
        github_secrets: args.github_webhook_secret.into(),
        gitlab_tokens: args.gitlab_webhook_secret,
        gitlab_signing_keys: args.gitlab_webhook_signing_token,
        limits: server::IntakeLimits {
            max_body_bytes: server::MAX_BODY_BYTES,
            body_timeout: std::time::Duration::from_secs(args.intake.body_timeout_secs),
            budget: Arc::new(server::BodyBudget::new(
                args.intake.intake_buffer_mb as usize * 1024 * 1024,
            )),
        },
    };
    if !intake.any_forge() {
        tracing::warn!(
            "no forge configured: webhooks are refused until GITHUB_WEBHOOK_SECRET or GITLAB_WEBHOOK_SECRET is set"
        );
    }
    let renderer = Renderer::new(args.templates_dir.as_deref())
        .context("cannot compile the templates (GREENLIGHT_TEMPLATES_DIR)")?;
    let github = github_app(&args.github)?
        .map(|gh| gh.with_rate_limits(RateLimits::shared(Forge::GitHub, store.clone())));
    if github.is_none() && intake.github_secrets.is_some() {
        tracing::warn!(
            "GitHub webhooks are accepted but not acted on until GITHUB_APP_ID and GITHUB_PRIVATE_KEY are set"
        );
    }
    let gitlab = gitlab_client(&args.gitlab)?
        .map(|gl| gl.with_rate_limits(RateLimits::shared(Forge::GitLab, store.clone())));
    if gitlab.is_none() && intake.gitlab_tokens.is_some() {
        tracing::warn!("GitLab webhooks are accepted but not acted on until GITLAB_TOKEN is set");
    }
    let engine = Engine::new(store.clone(), renderer)
        .with_github(github)
        .with_gitlab(gitlab)
        .with_repo_lease(std::time::Duration::from_secs(args.worker.lease_secs));
    let github_slot = engine.github_slot();
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {} (GREENLIGHT_LISTEN)", args.listen))?;
    let setup = (!github_slot.is_some()).then(|| {
        server::setup::GitHubSetup::new(
            server::setup::SetupConfig {
                web_url: args.github.web_url(),
                api_url: args.github.github_api_url.clone(),
                public_url: args.public.public_url.clone(),
                env_file: args.public.env_file.clone(),
            },
            github_slot,
            intake.github_secrets.clone(),
            RateLimits::shared(Forge::GitHub, store.clone()),
        )
    });
    if let Some(setup) = &setup {
        let base = match &args.public.public_url {
            Some(url) => url.clone(),
            None => local_base(listener.local_addr()?),
        };
        // The token is for the operator's eyes: standard output, not a log line.
        println!(
            "GitHub App not configured: open {} to create it",
            setup.url(&base)
        );
        tracing::info!(
            "GitHub App not configured: the setup page's address is printed on standard output"
        );
    }
    tracing::info!(
        listen = %listener.local_addr()?,
        backend = ?store.backend(),
        version = env!("CARGO_PKG_VERSION"),
        "greenlight serving"
    );
    let metrics_listener = match args.metrics_listen {
        Some(addr) => {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on {addr} (GREENLIGHT_METRICS_LISTEN)"))?;
            tracing::info!(listen = %listener.local_addr()?, "metrics served apart");
            Some(listener)
        }
        None => None,
    };
    let metrics = Arc::new(Metrics::new());
    let shutdown = CancellationToken::new();
    tokio::spawn(cancel_on_signal(shutdown.clone()));
    tokio::spawn(store.clone().run_checkpoints(shutdown.clone()));
    tokio::spawn(greenlight::retention::run(
        store.clone(),
        args.worker.retention_days,
        shutdown.clone(),
    ));
    if args.worker.reconcile_secs > 0 {
        let every = std::time::Duration::from_secs(args.worker.reconcile_secs);
        tokio::spawn(greenlight::metrics::scoped(
            metrics.clone(),
            reconcile::run(engine.clone(), every, RECONCILE_QUIET, shutdown.clone()),
        ));
    }
    let listeners = server::Listeners {
        public: listener,
        metrics: metrics_listener,
    };
    server::run_with(
        store,
        listeners,
        metrics,
        intake,
        WorkerConfig::from(&args.worker),
        Arc::new(engine),
        shutdown,
        setup,
    )
    .await?;
    tracing::info!("stopped cleanly");
    Ok(())
}

/// `http://host:port` for a listener: `localhost` when it listens on every address.
fn local_base(addr: std::net::SocketAddr) -> String {
    if addr.ip().is_unspecified() {
        format!("http://localhost:{}", addr.port())
    } else {
        format!("http://{addr}")
    }
}

/// The App client, when the App is configured.
fn github_app(args: &GitHubAppArgs) -> anyhow::Result<Option<GitHub>> {
    let (Some(id), Some(key)) = (args.github_app_id, &args.github_private_key) else {
        return Ok(None);
    };
    let client = GitHub::new(id, key.pem(), &args.github_api_url)?;
    tracing::info!(app_id = id, api = %args.github_api_url, "GitHub App configured");
    Ok(Some(client))
}

/// The GitLab client, when a token is configured.
fn gitlab_client(args: &GitLabArgs) -> anyhow::Result<Option<GitLab>> {
    let Some(token) = &args.gitlab_token else {
        return Ok(None);
    };
    let client = GitLab::new(&args.gitlab_url, token.secret())?
        .with_deployment_approvals(args.gitlab_deployment_approvals);
    tracing::info!(url = %args.gitlab_url, "GitLab configured");
    Ok(Some(client))
}

/// `greenlight check-config FILE`: the same parser the service uses, with the line on error.
/// A file under `.gitlab/` is checked with GitLab's rules (no workflows, group paths).
fn check_config(file: &std::path::Path, forge: Option<Forge>) -> anyhow::Result<()> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let forge = forge.unwrap_or(if file.to_string_lossy().contains(".gitlab") {
        Forge::GitLab
    } else {
        Forge::GitHub
    });
    match policy::parse_for(&text, forge) {
        Ok(p) => {
            let pipelines = match forge {
                Forge::GitHub => format!(
                    "Pipeline {}, deploy {}",
                    p.pipeline.workflow, p.deploy.workflow
                ),
                Forge::GitLab => "GitLab CI pipelines, deploy".to_owned(),
            };
            println!(
                "{}: valid. {pipelines} to {}; {} approval(s) from {}.",
                file.display(),
                p.deploy.environment,
                p.approvals.required,
                p.describe_approvers_on(forge)
            );
            Ok(())
        }
        Err(e) => anyhow::bail!("{}:{}:{}: {}", file.display(), e.line, e.column, e.message),
    }
}

fn init(args: &InitArgs) -> anyhow::Result<()> {
    use greenlight::starter::{Wrote, next_steps, write};
    let forge = Forge::from(args.forge);
    for wrote in write(&args.dir, forge, args.force)? {
        match wrote {
            Wrote::Created(p) => println!("created   {}", p.display()),
            Wrote::Replaced(p) => println!("replaced  {}", p.display()),
            Wrote::Unchanged(p) => println!("unchanged {}", p.display()),
        }
    }
    println!("{}", next_steps(forge));
    Ok(())
}

/// `greenlight doctor`: exit 1 unless every check passed.
async fn doctor(
    args: greenlight::config::commands::DoctorArgs,
    database_url: &str,
) -> anyhow::Result<()> {
    let github = github_app(&args.github)?;
    let gitlab = gitlab_client(&args.gitlab)?;
    let report = greenlight::setup::doctor::run(greenlight::setup::doctor::Subjects {
        database_url,
        github: github.as_ref(),
        gitlab: gitlab.as_ref(),
        gitlab_projects: &args.gitlab_projects,
        public_url: args.public.public_url.as_deref(),
    })
    .await;
    if args.json {
        println!("{}", report.json());
    } else {
        print!("{report}");
    }
    anyhow::ensure!(report.all_passed(), "some checks failed");
    Ok(())
}

/// `greenlight setup gitlab`: exit 1 when a check failed (the webhook is written anyway).
async fn setup_gitlab(args: SetupGitLabArgs) -> anyhow::Result<()> {
    use greenlight::forge::gitlab::hooks::HookOwner;
    use secrecy::ExposeSecret as _;
    let token = args
        .gitlab
        .gitlab_token
        .as_ref()
        .context("GITLAB_TOKEN is not set: setup acts with the token Greenlight will use")?;
    let public_url = args.public.public_url.as_deref().context(
        "GREENLIGHT_PUBLIC_URL is not set: the webhook's URL is built on it (https://greenlight.example.com)",
    )?;
    let owner = match (args.project, args.group) {
        (Some(p), _) => HookOwner::Project(p),
        (None, Some(g)) => HookOwner::Group(g),
        (None, None) => anyhow::bail!("give --project group/name or --group group"),
    };
    let gl = GitLab::new(&args.gitlab.gitlab_url, token.secret())?;
    let secret = args.gitlab_webhook_secret.as_ref().and_then(|s| {
        s.as_slice()
            .first()
            .map(|s| secrecy::SecretString::from(s.expose_secret().to_owned()))
    });
    let report = greenlight::setup::gitlab::run(
        &gl,
        greenlight::setup::gitlab::Plan {
            owner,
            public_url,
            secret,
            env_file: &args.public.env_file,
        },
    )
    .await?;
    print!("{report}");
    anyhow::ensure!(
        report.all_passed(),
        "some checks failed: see the fixes above"
    );
    Ok(())
}

/// Read-only: never creates nor migrates the database ([`Store::open_existing`]).
async fn audit(args: AuditArgs, database_url: &str) -> anyhow::Result<()> {
    let store = Store::open_existing(database_url).await?;
    let entries = store.audit_log(args.repo.as_deref(), args.limit).await?;
    print!("{}", greenlight::listing::audit(&entries, args.json));
    Ok(())
}

/// Read-only on the database ([`Store::open_existing`]); asks GitHub, as the App, to
/// redeliver. Exits 1 when a redelivery failed, so a script notices.
async fn redeliver(
    args: greenlight::config::commands::RedeliverArgs,
    database_url: &str,
) -> anyhow::Result<()> {
    let Some(github) = github_app(&args.github)? else {
        anyhow::bail!("redeliver needs the App: set GITHUB_APP_ID and GITHUB_PRIVATE_KEY");
    };
    let store = Store::open_existing(database_url).await?;
    let since = greenlight::store::now_ms() - args.since;
    let rows = greenlight::redeliver::run(&github, &store, since, args.dry_run).await?;
    print!(
        "{}",
        greenlight::listing::redeliveries(&rows, args.dry_run, args.json)
    );
    let failed = rows
        .iter()
        .filter(|r| matches!(r.outcome, greenlight::redeliver::Outcome::Failed(_)))
        .count();
    anyhow::ensure!(failed == 0, "{failed} redelivery request(s) failed");
    Ok(())
}

/// SIGTERM (Fly, Docker, systemd) or Ctrl-C starts a graceful shutdown.
async fn cancel_on_signal(shutdown: CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!(error = %e, "cannot listen for SIGTERM");
                    let _ = ctrl_c.await;
                    shutdown.cancel();
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("shutdown requested: draining requests and jobs");
    shutdown.cancel();
}

/// The listing and `show` are read-only, `retry` changes rows: none creates nor migrates the
/// database ([`Store::open_existing`]).
async fn deliveries(args: DeliveriesArgs, database_url: &str) -> anyhow::Result<()> {
    let store = Store::open_existing(database_url).await?;
    match args.action {
        Some(DeliveriesAction::Retry {
            id: Some(id),
            all_dead: false,
            ..
        }) => {
            anyhow::ensure!(
                store.requeue(id).await?,
                "no delivery {id} that can be retried (it does not exist, or is already queued or running)"
            );
            println!("delivery {id} queued again");
        }
        Some(DeliveriesAction::Retry { since, .. }) => {
            let n = store.requeue_dead(since).await?;
            println!(
                "{n} dead-lettered deliver{} queued again",
                if n == 1 { "y" } else { "ies" }
            );
        }
        Some(DeliveriesAction::Show { id }) => {
            let Some((d, payload)) = store.delivery(id).await? else {
                anyhow::bail!("no delivery {id}");
            };
            print!("{}", greenlight::listing::delivery(&d, &payload, args.json));
        }
        None => {
            let rows = store.list_deliveries(args.limit, args.dead).await?;
            print!("{}", greenlight::listing::deliveries(&rows, args.json));
        }
    }
    Ok(())
}
