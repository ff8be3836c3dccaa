//! What the operator's commands print: a table for people, or one JSON object a line
//! (`--json`) for scripts. Times are UTC; in JSON as RFC 3339 and as Unix milliseconds.

use std::fmt::Write as _;

use serde_json::{Value, json};

use crate::store::{AuditEntry, Delivery, Installation, ReleaseRow, format_utc};

fn rfc3339(ms: i64) -> Value {
    chrono::DateTime::from_timestamp_millis(ms)
        .map_or(Value::Null, |t| Value::String(t.to_rfc3339()))
}

fn lines(objects: impl Iterator<Item = Value>) -> String {
    let mut out = String::new();
    for o in objects {
        let _ = writeln!(out, "{o}");
    }
    out
}

fn delivery_json(d: &Delivery) -> Value {
    json!({
        "id": d.id,
        "forge": d.forge,
        "delivery": d.delivery_id,
        "event": d.event,
        "state": d.state.as_str(),
        "attempts": d.attempts,
        "received_at": rfc3339(d.received_at),
        "received_at_ms": d.received_at,
        "next_attempt_at_ms": d.next_attempt_at,
        "last_error": d.last_error,
    })
}

/// `greenlight deliveries`.
pub fn deliveries(rows: &[Delivery], as_json: bool) -> String {
    if as_json {
        return lines(rows.iter().map(delivery_json));
    }
    let mut out = format!(
        "{:>8}  {:<6}  {:<38}  {:<26}  {:<7}  {:>3}  {:<20}  last error\n",
        "id", "forge", "delivery", "event", "state", "try", "received (UTC)"
    );
    for d in rows {
        let _ = writeln!(
            out,
            "{:>8}  {:<6}  {:<38}  {:<26}  {:<7}  {:>3}  {:<20}  {}",
            d.id,
            d.forge,
            d.delivery_id,
            d.event,
            d.state.as_str(),
            d.attempts,
            format_utc(d.received_at),
            d.last_error.as_deref().unwrap_or("")
        );
    }
    out
}

/// `greenlight deliveries show ID`: the row, then the payload (pretty JSON when it is JSON).
pub fn delivery(d: &Delivery, payload: &[u8], as_json: bool) -> String {
    let parsed: Option<Value> = serde_json::from_slice(payload).ok();
    if as_json {
        let mut o = delivery_json(d);
        o["payload"] =
            parsed.unwrap_or_else(|| Value::String(String::from_utf8_lossy(payload).into_owned()));
        return lines(std::iter::once(o));
    }
    let mut out = String::new();
    for (k, v) in [
        ("id", d.id.to_string()),
        ("forge", d.forge.clone()),
        ("delivery", d.delivery_id.clone()),
        ("event", d.event.clone()),
        ("state", d.state.as_str().to_owned()),
        ("attempts", d.attempts.to_string()),
        ("received", format!("{} UTC", format_utc(d.received_at))),
        ("last error", d.last_error.clone().unwrap_or_default()),
    ] {
        let _ = writeln!(out, "{k:<10}  {v}");
    }
    out.push('\n');
    match parsed {
        Some(v) => {
            let _ = writeln!(
                out,
                "{}",
                serde_json::to_string_pretty(&v).unwrap_or_default()
            );
        }
        None => out.push_str(&String::from_utf8_lossy(payload)),
    }
    out
}

/// `greenlight audit`.
pub fn audit(entries: &[AuditEntry], as_json: bool) -> String {
    if as_json {
        return lines(entries.iter().map(|e| {
            json!({
                "at": rfc3339(e.at),
                "at_ms": e.at,
                "forge": e.forge,
                "repo": e.repo,
                "pr": e.pr,
                "sha": e.sha,
                "actor": e.actor,
                "action": e.action,
                "outcome": e.outcome,
                "reason": e.reason,
            })
        }));
    }
    let mut out = format!(
        "{:<20}  {:<28}  {:>5}  {:<7}  {:<16}  {:<13}  {:<8}  reason\n",
        "when (UTC)", "repository", "pr", "sha", "actor", "action", "outcome"
    );
    for e in entries {
        let _ = writeln!(
            out,
            "{:<20}  {:<28}  {:>5}  {:<7}  {:<16}  {:<13}  {:<8}  {}",
            format_utc(e.at),
            format!("{}:{}", e.forge, e.repo),
            e.pr,
            e.sha.get(..7).unwrap_or(&e.sha),
            e.actor,
            e.action,
            e.outcome,
            e.reason
        );
    }
    out
}

/// `greenlight releases`.
pub fn releases(rows: &[ReleaseRow], as_json: bool) -> String {
    if as_json {
        return lines(rows.iter().map(|r| {
            json!({
                "id": r.id,
                "forge": r.forge,
                "repo": r.repo,
                "pr": r.pr,
                "sha": r.sha.as_str(),
                "stage": r.stage.as_str(),
                "environment": r.environment,
                "pipeline_url": r.pipeline_url,
                "deploy_url": r.deploy_url,
                "detail": r.detail,
                "updated_at": rfc3339(r.updated_at),
                "updated_at_ms": r.updated_at,
            })
        }));
    }
    let mut out = format!(
        "{:>6}  {:<28}  {:>5}  {:<7}  {:<16}  {:<12}  {:<20}  detail\n",
        "id", "repository", "pr", "sha", "stage", "environment", "updated (UTC)"
    );
    for r in rows {
        let _ = writeln!(
            out,
            "{:>6}  {:<28}  {:>5}  {:<7}  {:<16}  {:<12}  {:<20}  {}",
            r.id,
            format!("{}:{}", r.forge, r.repo),
            r.pr,
            r.sha.short(),
            r.stage.as_str(),
            r.environment,
            format_utc(r.updated_at),
            r.detail.as_deref().unwrap_or("")
        );
    }
    out
}

/// `greenlight installations`.
pub fn installations(rows: &[Installation], as_json: bool) -> String {
    if as_json {
        return lines(rows.iter().map(|i| {
            json!({
                "forge": i.forge,
                "id": i.id,
                "account": i.account,
                "active": i.active,
                "updated_at": rfc3339(i.updated_at),
                "updated_at_ms": i.updated_at,
            })
        }));
    }
    let mut out = format!(
        "{:<6}  {:>12}  {:<32}  {:<6}  updated (UTC)\n",
        "forge", "id", "account", "active"
    );
    for i in rows {
        let _ = writeln!(
            out,
            "{:<6}  {:>12}  {:<32}  {:<6}  {}",
            i.forge,
            i.id,
            i.account,
            if i.active { "yes" } else { "no" },
            format_utc(i.updated_at)
        );
    }
    out
}

/// `greenlight redeliver`: one row per failed event of the window (its latest failed
/// delivery), what became of it, then (in the table) a count of what was asked again.
pub fn redeliveries(rows: &[crate::redeliver::Row], dry_run: bool, as_json: bool) -> String {
    use crate::redeliver::Outcome;
    let error = |o: &Outcome| match o {
        Outcome::Failed(e) => Some(e.clone()),
        _ => None,
    };
    if as_json {
        return lines(rows.iter().map(|r| {
            let d = &r.delivery;
            json!({
                "id": d.id,
                "guid": d.guid,
                "event": d.event,
                "action": d.action,
                "delivered_at": d.delivered_at,
                "status_code": d.status_code,
                "status": d.status,
                "outcome": r.outcome.as_str(),
                "error": error(&r.outcome),
            })
        }));
    }
    let mut out = format!(
        "{:>12}  {:<38}  {:<28}  {:<20}  {:>4}  outcome\n",
        "id", "delivery", "event", "delivered (UTC)", "code"
    );
    for r in rows {
        let d = &r.delivery;
        let event = match &d.action {
            Some(a) => format!("{}.{a}", d.event),
            None => d.event.clone(),
        };
        let outcome = match &r.outcome {
            Outcome::Failed(e) => format!("failed: {e}"),
            other => other.as_str().replace('_', " "),
        };
        let _ = writeln!(
            out,
            "{:>12}  {:<38}  {:<28}  {:<20}  {:>4}  {outcome}",
            d.id,
            d.guid,
            event,
            d.delivered_at_ms().map_or_else(String::new, format_utc),
            d.status_code,
        );
    }
    let count = |o: &str| rows.iter().filter(|r| r.outcome.as_str() == o).count();
    let _ = if dry_run {
        writeln!(
            out,
            "{} to redeliver (dry run: nothing asked)",
            count("would_redeliver")
        )
    } else {
        writeln!(
            out,
            "{} redelivered, {} failed",
            count("redelivered"),
            count("failed")
        )
    };
    out
}
