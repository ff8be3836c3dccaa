//! `fly.toml` keeps what the README promises: one machine that never stops (timers, retries and
//! the reconciler need a running process), routed to only when ready, metrics scraped from
//! the port the server listens on, and a VM the intake's memory bounds fit in.

use toml::Value;

fn fly() -> Value {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/fly.toml"))
        .expect("read fly.toml");
    text.parse().expect("fly.toml is TOML")
}

fn get<'v>(v: &'v Value, path: &str) -> &'v Value {
    path.split('.').fold(v, |v, key| {
        v.get(key)
            .unwrap_or_else(|| panic!("fly.toml has no {path}"))
    })
}

#[test]
fn one_machine_keeps_running() {
    let fly = fly();
    let service = get(&fly, "http_service");
    let auto_stop = get(service, "auto_stop_machines");
    assert!(
        auto_stop.as_str() == Some("off") || auto_stop.as_bool() == Some(false),
        "auto_stop_machines must be off: {auto_stop}"
    );
    assert!(
        get(service, "min_machines_running").as_integer() >= Some(1),
        "min_machines_running must keep a machine"
    );
}

#[test]
fn routing_waits_for_readiness_and_metrics_are_scraped_from_the_server() {
    let fly = fly();
    let checks = get(&fly, "http_service.checks")
        .as_array()
        .expect("[[http_service.checks]]");
    assert!(
        checks
            .iter()
            .any(|c| c.get("path").and_then(Value::as_str) == Some("/readyz")),
        "a service check on /readyz: {checks:?}"
    );
    let port = get(&fly, "http_service.internal_port").as_integer();
    let listen = get(&fly, "env.GREENLIGHT_LISTEN").as_str().expect("listen");
    assert_eq!(
        listen.rsplit(':').next().and_then(|p| p.parse().ok()),
        port,
        "GREENLIGHT_LISTEN serves the service's internal_port"
    );
    // Metrics on their own listener when GREENLIGHT_METRICS_LISTEN is set, else on the server's.
    let metrics_port = get(&fly, "env")
        .get("GREENLIGHT_METRICS_LISTEN")
        .and_then(Value::as_str)
        .map_or(port, |l| l.rsplit(':').next().and_then(|p| p.parse().ok()));
    assert_eq!(get(&fly, "metrics.port").as_integer(), metrics_port);
    assert_eq!(get(&fly, "metrics.path").as_str(), Some("/metrics"));
    assert_eq!(get(&fly, "checks.alive.path").as_str(), Some("/healthz"));
}

#[test]
fn the_vm_has_room_for_the_intake_budget() {
    let fly = fly();
    let vm = get(&fly, "vm").as_array().expect("[[vm]]");
    let memory = vm[0]
        .get("memory")
        .and_then(Value::as_str)
        .and_then(|m| m.strip_suffix("mb"))
        .and_then(|m| m.parse::<usize>().ok())
        .expect("memory = \"NNNmb\"");
    let budget = greenlight::server::DEFAULT_INTAKE_BUFFER_BYTES / (1024 * 1024);
    assert!(
        budget * 3 <= memory,
        "the intake buffer budget ({budget} MiB) is at most a third of the VM ({memory} MB)"
    );
}
