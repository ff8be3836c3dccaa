//! The release engine: turns a stored delivery into forge effects.
//!
//! For each job: parse the payload into our [`Event`](crate::release::Event), take the
//! repository's lease (events of one repository are worked one at a time, across replicas),
//! gather facts from the store and the forge, let the pure rules in [`crate::release`] decide,
//! and carry the effects out idempotently (ids of what we created are stored, one-shot effects
//! are keyed in the effect ledger).

mod approval_sweep;
mod flow;
pub(crate) mod ledger;
mod policy_cache;
pub mod reconcile;

use std::sync::Arc;
use std::time::Duration;

use crate::clock::{Clock, SystemClock};
use crate::config::Live;
use crate::forge::Client;
use crate::forge::client::Parsed;
use crate::forge::github::GitHub;
use crate::forge::gitlab::GitLab;
use crate::forge::retry::ForgeError;
use crate::render::Renderer;
use crate::store::{Claimed, Store};
use crate::worker::{JobError, Processor};

pub use flow::UNAPPROVED_DEPLOYMENT;
pub use policy_cache::{PolicyCache, PolicyState};

/// How long a repository's lease lasts unless renewed, by default. The holder renews it every
/// third of that while it works; a holder that died frees the repository after this long.
/// `serve` uses the job lease (`GREENLIGHT_JOB_LEASE_SECS`): a repository is never held longer
/// than the job that holds it would be.
pub const REPO_LEASE: Duration = Duration::from_secs(60);

/// How long a job waits before trying again when another job holds its repository.
pub const REPO_BUSY_RETRY: Duration = Duration::from_millis(100);

/// How long a deploy may hold its environment's lock. A deploy that has not reported back by
/// then is considered lost: the lock frees and the next release may go.
pub const DEPLOY_LEASE_MS: i64 = 6 * 60 * 60 * 1000;

/// Everything a job needs.
#[derive(Clone)]
pub struct Engine {
    pub(crate) store: Store,
    /// Live: the setup page may configure the App while the server runs.
    pub(crate) github: Live<GitHub>,
    pub(crate) gitlab: Option<GitLab>,
    pub(crate) renderer: Arc<Renderer>,
    pub(crate) policies: PolicyCache,
    pub(crate) repo_lease: Duration,
    /// The release's time ([`crate::clock`]).
    pub(crate) clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("github", &self.github.is_some())
            .field("gitlab", &self.gitlab.is_some())
            .finish()
    }
}

impl Engine {
    /// An engine on `store` that acts on no forge yet: [`Self::with_github`] and
    /// [`Self::with_gitlab`] give it the forges it acts on.
    pub fn new(store: Store, renderer: Renderer) -> Self {
        Self {
            store,
            github: Live::default(),
            gitlab: None,
            renderer: Arc::new(renderer),
            policies: PolicyCache::default(),
            repo_lease: REPO_LEASE,
            clock: Arc::new(SystemClock),
        }
    }

    /// Acts on GitHub deliveries with this client (without one they are dead-lettered with
    /// the reason).
    #[must_use]
    pub fn with_github(mut self, github: Option<GitHub>) -> Self {
        self.github = Live::new(github);
        self
    }

    /// Reads the release's time from `clock` instead of the machine's.
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The release's time now.
    pub(crate) fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// Acts on GitLab deliveries with this client (without one they are dead-lettered with
    /// the reason).
    #[must_use]
    pub fn with_gitlab(mut self, gitlab: Option<GitLab>) -> Self {
        self.gitlab = gitlab;
        self
    }

    /// The slot holding the GitHub client: whoever sets it (the setup page) changes the
    /// client every later job and reconciler pass uses. Take it after [`Self::with_github`],
    /// which puts a new slot in place.
    pub fn github_slot(&self) -> Live<GitHub> {
        self.github.clone()
    }

    /// How long a repository lease lasts without renewal (see [`REPO_LEASE`]).
    #[must_use]
    pub fn with_repo_lease(mut self, lease: Duration) -> Self {
        self.repo_lease = lease.max(Duration::from_millis(300));
        self
    }
}

impl Engine {
    /// The GitHub client as it is now (unset until the App is configured).
    pub(crate) fn github(&self) -> Option<GitHub> {
        self.github.get()
    }
}

impl Processor for Engine {
    async fn process(&self, job: &Claimed) -> Result<(), JobError> {
        let github = self.github();
        let client = Client::of(&job.forge, github.as_ref(), self.gitlab.as_ref())
            .map_err(JobError::Fatal)?;
        let parsed = client
            .parse(&job.event, &job.payload)
            .map_err(|e| JobError::Fatal(format!("payload: {e}")))?;
        match parsed {
            Parsed::Ignored(why) => {
                tracing::debug!(why, "nothing to do");
                Ok(())
            }
            Parsed::Installation(change) => self
                .store
                .upsert_installation(
                    client.forge().as_str(),
                    change.installation_id,
                    &change.account,
                    !change.removed,
                )
                .await
                .map_err(db),
            Parsed::Event(event) => flow::handle(self, client, job, event).await,
        }
    }
}

/// Runs `work` while holding the named lease; gives the job back (without counting an attempt)
/// when another job holds it.
/// The lease is renewed every third of `ttl` while `work` runs.
pub(crate) async fn with_lease<T, F>(
    store: &Store,
    name: &str,
    holder: &str,
    ttl: Duration,
    work: F,
) -> Result<T, JobError>
where
    F: std::future::Future<Output = Result<T, JobError>>,
{
    let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
    let acquired = store
        .try_lease(name, holder, ttl_ms)
        .await
        .map_err(|e| JobError::Retry {
            reason: format!("lease: {e}"),
            after: None,
        })?;
    if !acquired {
        return Err(JobError::Busy(REPO_BUSY_RETRY));
    }
    let renew = async {
        loop {
            tokio::time::sleep(ttl / 3).await;
            match store.try_lease(name, holder, ttl_ms).await {
                Ok(true) => {}
                Ok(false) => tracing::warn!(
                    lease = name,
                    "lease taken over while working (a stall longer than its term)"
                ),
                Err(e) => tracing::warn!(error = %e, lease = name, "cannot renew lease"),
            }
        }
    };
    let result = tokio::select! {
        r = work => r,
        () = renew => unreachable!("renewal never ends"),
    };
    if let Err(e) = store.release_lease(name, holder).await {
        tracing::warn!(error = %e, lease = name, "cannot release lease; it will expire");
    }
    result
}

/// Database errors inside a job: retried.
pub(crate) fn db(e: sqlx::Error) -> JobError {
    JobError::Retry {
        reason: format!("database: {e}"),
        after: None,
    }
}

/// What a forge error means for the job that met it: the forge layer knows nothing of the
/// job queue, the engine knows both.
impl From<ForgeError> for JobError {
    fn from(e: ForgeError) -> Self {
        match e {
            ForgeError::RateLimited(after) => JobError::Retry {
                reason: e.to_string(),
                after: Some(after),
            },
            // The job did nothing wrong and made no call: back to the queue until the wait is
            // over, without spending one of its attempts.
            ForgeError::Paused(wait) => JobError::Busy(wait),
            ForgeError::Transient(_) => JobError::Retry {
                reason: e.to_string(),
                after: None,
            },
            // A 404 or 4xx in the middle of a job may be a permission being granted or a race
            // with the forge's own consistency; a few retries are cheap, then it dead-letters.
            ForgeError::NotFound | ForgeError::Rejected { .. } => JobError::Retry {
                reason: e.to_string(),
                after: None,
            },
        }
    }
}
