//! `greenlight redeliver`: after an outage, asks GitHub to send again the webhook deliveries it
//! could not hand over. GitHub keeps a record of every delivery of the App's webhook (about
//! three days) but never redelivers a failed one by itself, so without this the events of
//! the outage are left to the reconciler to find one by one.
//!
//! One event (one `guid`, GitHub's `X-GitHub-Delivery`) is asked again at most once a run, and
//! not at all when it needs nothing: when one of its deliveries (a redelivery by hand, say)
//! has succeeded since, or when Greenlight's own deliveries table has it (it came, and a
//! failed answer was only the network's). The choice ([`plan`]) is pure; [`run`] reads and
//! writes.

use std::collections::HashMap;

use crate::forge::github::GitHub;
use crate::forge::github::hook_deliveries::HookDelivery;
use crate::forge::retry::ForgeError;
use crate::store::Store;

/// What became, or would become, of one failed event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// GitHub was asked to deliver it again (and answered 202).
    Redelivered,
    /// `--dry-run`: it would be asked again.
    WouldRedeliver,
    /// Another delivery of the same event succeeded: nothing to do.
    SucceededSince,
    /// Greenlight's deliveries table has the event: it came, nothing to do.
    AlreadyReceived,
    /// GitHub refused or failed the redelivery (the message says why).
    Failed(String),
}

impl Outcome {
    /// The outcome's name in the JSON output (`redelivered`, `would_redeliver`, …).
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Redelivered => "redelivered",
            Self::WouldRedeliver => "would_redeliver",
            Self::SucceededSince => "succeeded_since",
            Self::AlreadyReceived => "already_received",
            Self::Failed(_) => "failed",
        }
    }
}

/// One failed event of the window: its latest failed delivery, and what became of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub delivery: HookDelivery,
    pub outcome: Outcome,
}

/// The failed events among `deliveries` (newest first, as GitHub lists them), each once, by
/// its latest failed delivery, with the plan for it: [`Outcome::WouldRedeliver`] unless
/// another delivery of the event succeeded or `received` says Greenlight has it.
pub fn plan(deliveries: &[HookDelivery], received: impl Fn(&str) -> bool) -> Vec<Row> {
    let mut succeeded: HashMap<&str, bool> = HashMap::new();
    for d in deliveries {
        *succeeded.entry(d.guid.as_str()).or_default() |= d.succeeded();
    }
    let mut seen = std::collections::HashSet::new();
    deliveries
        .iter()
        .filter(|d| !d.succeeded() && seen.insert(d.guid.as_str()))
        .map(|d| {
            let outcome = if succeeded[d.guid.as_str()] {
                Outcome::SucceededSince
            } else if received(&d.guid) {
                Outcome::AlreadyReceived
            } else {
                Outcome::WouldRedeliver
            };
            Row {
                delivery: d.clone(),
                outcome,
            }
        })
        .collect()
}

/// Reads the App's deliveries back to `since_ms` (Unix milliseconds), plans, and unless
/// `dry_run` asks GitHub to redeliver each event that needs it: one row per failed event,
/// newest first ([`plan`]). A redelivery GitHub refuses (too old, already under way) is
/// reported, and the others still go out; a rate limit stops the run.
pub async fn run(
    github: &GitHub,
    store: &Store,
    since_ms: i64,
    dry_run: bool,
) -> anyhow::Result<Vec<Row>> {
    let deliveries = github
        .hook_deliveries(|d| d.delivered_at_ms().is_none_or(|t| t >= since_ms))
        .await
        .map_err(|e| anyhow::anyhow!("cannot list the App's webhook deliveries: {e}"))?;
    let mut known = HashMap::new();
    for d in deliveries.iter().filter(|d| !d.succeeded()) {
        if !known.contains_key(&d.guid) {
            let has = store.has_delivery("github", &d.guid).await?;
            known.insert(d.guid.clone(), has);
        }
    }
    let mut rows = plan(&deliveries, |guid| {
        known.get(guid).copied().unwrap_or(false)
    });
    if !dry_run {
        for row in rows
            .iter_mut()
            .filter(|r| r.outcome == Outcome::WouldRedeliver)
        {
            row.outcome = match github.redeliver(row.delivery.id).await {
                Ok(()) => Outcome::Redelivered,
                Err(e @ (ForgeError::RateLimited(_) | ForgeError::Paused(_))) => {
                    // Every later request would meet the same limit.
                    anyhow::bail!("GitHub rate limited the App: {e}; run again later");
                }
                Err(e) => Outcome::Failed(e.to_string()),
            };
        }
    }
    Ok(rows)
}

/// `"24h"`, `"30m"`, `"3d"`, `"90s"` as milliseconds: how far back `--since` looks.
pub fn parse_duration(s: &str) -> Result<i64, String> {
    let err = || format!("{s:?} is not a duration such as 90s, 30m, 24h or 3d");
    let last = s.char_indices().last().map_or(0, |(i, _)| i);
    let (n, unit) = s.split_at(last);
    let n: i64 = n.parse().map_err(|_| err())?;
    let ms = match unit {
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(err()),
    };
    if n <= 0 {
        return Err(err());
    }
    n.checked_mul(ms).ok_or_else(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(id: u64, guid: &str, status_code: u16) -> HookDelivery {
        HookDelivery {
            id,
            guid: guid.into(),
            delivered_at: "2026-12-07T10:00:00Z".into(),
            redelivery: false,
            status_code,
            status: String::new(),
            event: "pull_request".into(),
            action: Some("opened".into()),
        }
    }

    fn outcomes(rows: &[Row]) -> Vec<(u64, &'static str)> {
        rows.iter()
            .map(|r| (r.delivery.id, r.outcome.as_str()))
            .collect()
    }

    #[test]
    fn each_failed_event_once_by_its_latest_failure() {
        // Newest first: event a failed twice (a redelivery failed too), b once.
        let list = [d(5, "a", 502), d(4, "b", 0), d(3, "a", 503), d(2, "c", 200)];
        assert_eq!(
            outcomes(&plan(&list, |_| false)),
            [(5, "would_redeliver"), (4, "would_redeliver")]
        );
    }

    #[test]
    fn a_success_of_the_same_event_or_our_own_record_means_nothing_to_do() {
        let list = [
            d(6, "a", 202),
            d(5, "a", 502),
            d(4, "b", 500),
            d(3, "c", 504),
        ];
        assert_eq!(
            outcomes(&plan(&list, |guid| guid == "b")),
            [
                (5, "succeeded_since"),
                (4, "already_received"),
                (3, "would_redeliver")
            ]
        );
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s"), Ok(90_000));
        assert_eq!(parse_duration("30m"), Ok(1_800_000));
        assert_eq!(parse_duration("24h"), Ok(86_400_000));
        assert_eq!(parse_duration("3d"), Ok(259_200_000));
        for bad in ["", "h", "24", "-1h", "0h", "1w", "1.5h", "2é"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
