//! Reading a webhook body before anyone is authenticated, without letting the callers exhaust
//! memory.
//!
//! The signature covers the raw bytes, so the whole body is buffered before it can be checked:
//! whoever can reach the port can make the server hold bytes. Three bounds keep that small
//! (the `fly.toml` VM has 256 MB):
//! - **per request**: a `Content-Length` over [`MAX_BODY_BYTES`] (or over the whole budget) is
//!   refused 413 before a byte is read; a body without one is refused 413 once it grows past it;
//! - **across requests**: every byte buffered is first charged to one [`BodyBudget`] shared by
//!   all in-flight requests (a semaphore counted in bytes). A request with a `Content-Length`
//!   is charged all of it up front; a chunked one, frame by frame. When the budget is spent
//!   the request is answered 503 with `Retry-After` at once, holding nothing; the budget is
//!   given back when the request is answered;
//! - **in time**: the body must arrive within the body timeout, else 408, so a slow sender
//!   cannot hold its share of the budget for long.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use axum::body::{Body, Bytes, HttpBody as _};
use axum::http::{HeaderMap, header};
use bytes::BytesMut;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Largest webhook body accepted. GitHub caps payloads at 25 MB; anything larger is not a
/// genuine delivery.
pub const MAX_BODY_BYTES: usize = 25 * 1024 * 1024;

/// Default of `GREENLIGHT_INTAKE_BUFFER_MB`: bytes all in-flight webhook requests together may
/// hold while their bodies are read and checked. Two full-size (25 MiB) deliveries, or
/// thousands of ordinary ones (a few KB), fit; it is a quarter of the Fly.io VM's 256 MB.
pub const DEFAULT_INTAKE_BUFFER_BYTES: usize = 64 * 1024 * 1024;

/// Default of `GREENLIGHT_BODY_TIMEOUT_SECS`: how long a body may take to arrive once its
/// headers have. GitHub and GitLab send a few KB at once; 25 MB takes seconds on a slow link.
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(20);

/// `Retry-After` of a 503 for a spent budget: bodies in flight are read within seconds.
pub const BUSY_RETRY_AFTER_SECS: u64 = 5;

/// How bodies are read: the per-request limit, the timeout and the shared budget.
#[derive(Debug, Clone)]
pub struct IntakeLimits {
    /// Largest body of one request ([`MAX_BODY_BYTES`]).
    pub max_body_bytes: usize,
    /// How long a body may take to arrive ([`DEFAULT_BODY_TIMEOUT`]).
    pub body_timeout: Duration,
    /// The bytes all requests together may hold.
    pub budget: Arc<BodyBudget>,
}

impl Default for IntakeLimits {
    fn default() -> Self {
        Self {
            max_body_bytes: MAX_BODY_BYTES,
            body_timeout: DEFAULT_BODY_TIMEOUT,
            budget: Arc::new(BodyBudget::new(DEFAULT_INTAKE_BUFFER_BYTES)),
        }
    }
}

/// Bytes that in-flight requests may buffer, all together, with the accounting to show it:
/// what is held now, the most ever held, and how many requests were turned away.
#[derive(Debug)]
pub struct BodyBudget {
    permits: Arc<Semaphore>,
    cap: usize,
    held: AtomicUsize,
    peak: AtomicUsize,
    refused: AtomicU64,
}

impl BodyBudget {
    /// A budget of `cap` bytes (at most `u32::MAX`: the semaphore counts in `u32`).
    pub fn new(cap: usize) -> Self {
        let cap = cap.clamp(1, u32::MAX as usize);
        Self {
            permits: Arc::new(Semaphore::new(cap)),
            cap,
            held: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
            refused: AtomicU64::new(0),
        }
    }

    /// The budget, in bytes.
    pub fn cap(&self) -> usize {
        self.cap
    }

    /// Bytes charged to requests in flight now.
    pub fn held(&self) -> usize {
        self.held.load(Ordering::SeqCst)
    }

    /// The most bytes ever charged at once.
    pub fn peak(&self) -> usize {
        self.peak.load(Ordering::SeqCst)
    }

    /// Requests answered 503 because the budget was spent.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::SeqCst)
    }
}

/// Bytes charged to one request, given back when it is dropped (after the answer).
#[derive(Debug)]
pub struct Charge {
    budget: Arc<BodyBudget>,
    bytes: usize,
    permit: Option<OwnedSemaphorePermit>,
}

impl Charge {
    fn new(budget: Arc<BodyBudget>) -> Self {
        Self {
            budget,
            bytes: 0,
            permit: None,
        }
    }

    /// Charges `n` more bytes, or refuses without waiting when the budget does not have them.
    fn add(&mut self, n: usize) -> Result<(), Refused> {
        if n == 0 {
            return Ok(());
        }
        let want = u32::try_from(n).map_err(|_| Refused::TooLarge(self.budget.cap))?;
        let Ok(permit) = self.budget.permits.clone().try_acquire_many_owned(want) else {
            self.budget.refused.fetch_add(1, Ordering::SeqCst);
            return Err(Refused::Busy);
        };
        match &mut self.permit {
            Some(held) => held.merge(permit),
            None => self.permit = Some(permit),
        }
        self.bytes += n;
        // Counted after the permits are taken and (in `drop`) before they are given back, so
        // `held` never exceeds what the semaphore granted.
        let now = self.budget.held.fetch_add(n, Ordering::SeqCst) + n;
        self.budget.peak.fetch_max(now, Ordering::SeqCst);
        Ok(())
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.budget.held.fetch_sub(self.bytes, Ordering::SeqCst);
        self.permit.take();
    }
}

/// Why a body was not read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Larger than the per-request limit (the limit, in bytes): 413.
    TooLarge(usize),
    /// The shared budget is spent: 503 with `Retry-After`.
    Busy,
    /// The body did not arrive within the timeout: 408.
    TooSlow,
    /// The connection failed while the body was read: 400.
    Broken,
}

/// Reads the whole body under `limits`, charged to their budget. The charge is held by the
/// caller until it has answered.
pub async fn read(
    limits: &IntakeLimits,
    headers: &HeaderMap,
    body: Body,
) -> Result<(Bytes, Charge), Refused> {
    let limit = limits.max_body_bytes.min(limits.budget.cap);
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let mut charge = Charge::new(limits.budget.clone());
    if let Some(len) = declared {
        if len > limit as u64 {
            return Err(Refused::TooLarge(limit));
        }
        charge.add(len as usize)?;
    }
    let bytes = tokio::time::timeout(
        limits.body_timeout,
        collect(body, limit, declared.is_none(), &mut charge),
    )
    .await
    .map_err(|_| Refused::TooSlow)??;
    Ok((bytes, charge))
}

/// The body's frames, gathered; each charged first when `charge_frames` (no `Content-Length`:
/// HTTP itself holds a declared body to its length).
async fn collect(
    mut body: Body,
    limit: usize,
    charge_frames: bool,
    charge: &mut Charge,
) -> Result<Bytes, Refused> {
    let mut buf = BytesMut::new();
    loop {
        let frame = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await;
        let Some(frame) = frame else {
            return Ok(buf.freeze());
        };
        let frame = frame.map_err(|_| Refused::Broken)?;
        let Ok(data) = frame.into_data() else {
            continue; // trailers
        };
        if buf.len() + data.len() > limit {
            return Err(Refused::TooLarge(limit));
        }
        if charge_frames {
            charge.add(data.len())?;
        }
        buf.extend_from_slice(&data);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_charge_is_refused_past_the_cap_and_given_back_when_dropped() {
        let budget = Arc::new(BodyBudget::new(100));
        let mut a = Charge::new(budget.clone());
        a.add(60).expect("fits");
        let mut b = Charge::new(budget.clone());
        assert_eq!(b.add(50), Err(Refused::Busy));
        b.add(40).expect("fits exactly");
        assert_eq!(
            (budget.held(), budget.peak(), budget.refused()),
            (100, 100, 1)
        );
        drop(a);
        assert_eq!(budget.held(), 40);
        b.add(60).expect("room again");
        drop(b);
        assert_eq!((budget.held(), budget.peak()), (0, 100));
    }
}
