//! The `greenlight` command: wiring only. Each subcommand reads its settings (flags, environment,
//! `.env`) once and hands them to the library.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use clap::Parser as _;
use greenlight::config::settings::{DeliveriesAction, DeliveriesArgs};
use greenlight::config::{Cli, Command, ServeArgs};
use greenlight::server::{self, Intake};
use greenlight::store::Store;
use greenlight::worker::{NoopProcessor, WorkerConfig};
use tokio_util::sync::CancellationToken;

fn main() -> ExitCode {
    // A missing .env is normal; a malformed one is worth a word but not fatal.
    if let Err(e) = dotenvy::dotenv()
        && !e.not_found()
    {
        eprintln!("warning: ignoring .env: {e}");
    }
    let cli = Cli::parse();
    greenlight::telemetry::init(cli.log_format);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Serve(args) => serve(args).await,
        Command::Migrate(db) => {
            let store = Store::connect(&db.database_url).await?;
            store.migrate().await?;
            println!("migrations applied");
            Ok(())
        }
        Command::Deliveries(args) => deliveries(args).await,
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let store = Store::connect(&args.database.database_url).await?;
    store.migrate().await?;
    let intake = Intake {
        github_secrets: args.github_webhook_secret,
        gitlab_tokens: args.gitlab_webhook_secret,
        gitlab_signing_keys: args.gitlab_webhook_signing_token,
    };
    if !intake.any_forge() {
        tracing::warn!(
            "no forge configured: webhooks are refused until GITHUB_WEBHOOK_SECRET or GITLAB_WEBHOOK_SECRET is set"
        );
    }
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {} (GREENLIGHT_LISTEN)", args.listen))?;
    tracing::info!(
        listen = %listener.local_addr()?,
        backend = ?store.backend(),
        version = env!("CARGO_PKG_VERSION"),
        "greenlight serving"
    );
    let shutdown = CancellationToken::new();
    tokio::spawn(cancel_on_signal(shutdown.clone()));
    server::run(
        store,
        listener,
        intake,
        WorkerConfig::from(&args.worker),
        Arc::new(NoopProcessor),
        shutdown,
    )
    .await?;
    tracing::info!("stopped cleanly");
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

async fn deliveries(args: DeliveriesArgs) -> anyhow::Result<()> {
    let store = Store::connect(&args.database.database_url).await?;
    store.migrate().await?;
    if let Some(DeliveriesAction::Retry { id }) = args.action {
        anyhow::ensure!(
            store.requeue(id).await?,
            "no delivery {id} that can be retried (it does not exist, or is already queued or running)"
        );
        println!("delivery {id} queued again");
        return Ok(());
    }
    let rows = store.list_deliveries(args.limit, args.dead).await?;
    println!(
        "{:>8}  {:<6}  {:<38}  {:<26}  {:<7}  {:>3}  {:<20}  last error",
        "id", "forge", "delivery", "event", "state", "try", "received (UTC)"
    );
    for d in rows {
        println!(
            "{:>8}  {:<6}  {:<38}  {:<26}  {:<7}  {:>3}  {:<20}  {}",
            d.id,
            d.forge,
            d.delivery_id,
            d.event,
            d.state.as_str(),
            d.attempts,
            greenlight::store::format_utc(d.received_at),
            d.last_error.as_deref().unwrap_or("")
        );
    }
    Ok(())
}
