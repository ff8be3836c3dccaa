#!/usr/bin/env bash
# Greenlight's benchmarks, side by side with the floor, printed as one table.
#
#   bench/run.sh            the full run (about 10 minutes on 2 cores)
#   bench/run.sh --quick    a short run to try it out (about 2 minutes; smaller growth tables)
#
# Needs a Rust toolchain and, for the PostgreSQL rows, a server at $BENCH_PG_URL (default
# postgres://postgres@127.0.0.1:5432, trust auth; skipped when it does not answer) with psql;
# sqlite3 for the growth rows. Everything runs on 127.0.0.1; every load is bounded in time.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

QUICK=0
[ "${1:-}" = "--quick" ] && QUICK=1
if [ "$QUICK" = 1 ]; then
    DUR=3; ROUNDS=1; GROWTH="0 100000"; APPROVALS=200
else
    DUR=10; ROUNDS=3; GROWTH="0 100000 1000000"; APPROVALS=1000
fi
RATE=500
CONNS=50
PG_URL="${BENCH_PG_URL:-postgres://postgres@127.0.0.1:5432}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
export GITHUB_WEBHOOK_SECRET="bench-secret-$$"
BIN="$CARGO_TARGET_DIR/release"
WORK="$(mktemp -d /tmp/greenlight-bench.XXXXXX)"
PIDS=()
PG_DBS=()

cleanup() {
    for pid in "${PIDS[@]:-}"; do [ -n "$pid" ] && kill "$pid" 2>/dev/null || true; done
    for db in "${PG_DBS[@]:-}"; do
        [ -n "$db" ] && psql -q "$PG_URL/postgres" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT

for tool in sqlite3 curl; do
    command -v "$tool" >/dev/null || { echo "bench/run.sh needs $tool (apt-get install $tool)" >&2; exit 1; }
done
LOAD_BEFORE="$(cut -d" " -f1-3 /proc/loadavg)"
PG=0
if command -v psql >/dev/null && psql -q "$PG_URL/postgres" -c "SELECT 1" >/dev/null 2>&1; then PG=1; fi

echo "== building (release)" >&2
cargo build --release --locked --quiet
(cd bench && cargo build --release --locked --quiet)
cargo bench --locked --no-run --quiet --bench approve --bench micro 2>/dev/null

# ---- helpers --------------------------------------------------------------------------------

field() { # field KEY LINE: the value of key=value in a loadgen line
    tr ' ' '\n' <<<"$2" | sed -n "s/^$1=//p"
}
status_kb() { # status_kb PID VmRSS|VmHWM
    awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"
}
mb() { awk -v kb="$1" 'BEGIN { printf "%.1f", kb / 1024 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f%%", (b > 0 ? 100 * a / b : 0) }'; }

PORT=18180
next_port() { PORT=$((PORT + 1)); }

start_floor() {
    next_port
    "$BIN/floor" --listen "127.0.0.1:$PORT" --secret "$GITHUB_WEBHOOK_SECRET" &
    SERVER_PID=$!; PIDS+=("$SERVER_PID")
    "$BIN/readyz" --addr "127.0.0.1:$PORT" >/dev/null
}

# start_greenlight DATABASE_URL: sets SERVER_PID, READY_MS
start_greenlight() {
    next_port
    local dir="$WORK/gl-$PORT"; mkdir -p "$dir"
    # No GitHub App: deliveries are stored and queued, and the workers dead-letter them at
    # once (the cheapest work a queued delivery can cause), so the queue never grows.
    (cd "$dir" && exec env RUST_LOG=warn GREENLIGHT_LISTEN="127.0.0.1:$PORT" DATABASE_URL="$1" \
        GREENLIGHT_RECONCILE_SECS=0 "$BIN/greenlight" serve >"$dir/log" 2>&1) &
    SERVER_PID=$!; PIDS+=("$SERVER_PID")
    READY_MS="$("$BIN/readyz" --addr "127.0.0.1:$PORT")"
}

stop_server() {
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
}

load() { # load ARGS...: one loadgen run against the current server
    "$BIN/loadgen" --addr "127.0.0.1:$PORT" "$@"
}

fresh_pg() { # fresh_pg: prints the URL of a new, empty database
    local name="greenlight_bench_$$_$RANDOM"
    psql -q "$PG_URL/postgres" -c "CREATE DATABASE $name" >/dev/null
    PG_DBS+=("$name")
    echo "$PG_URL/$name"
}

ROWS=()
row() { ROWS+=("$(printf '| %-52s | %-26s | %-22s |' "$1" "$2" "$3")"); }

# ---- ingest: the floor and Greenlight, side by side -------------------------------------------

# All servers run at once and take turns, round after round, so that the machine's drift
# (±15% from minute to minute here) falls on each of them alike; each figure is the median of
# its rounds. Only one server is loaded at a time, and a Greenlight server's queue is empty
# before any server is loaded: its workers never drain a backlog during another's run.

declare -A PORT_OF PID_OF RPS P50 P99 P999 DRAIN_P99 DRAIN_DEPTH
LABELS=(floor sqlite)
use() { PORT=${PORT_OF[$1]}; } # use LABEL: the next load and queue_depth go to LABEL's server
queue_depth() { # queue_depth: deliveries queued or running on the current server (its /metrics)
    curl -fsS "127.0.0.1:$PORT/metrics" | awk '$1 == "greenlight_queue_depth" { print $2 }'
}
drained() { # drained: waits (at most 3 minutes) until the current server's queue is empty
    [ "$1" = floor ] && return 0
    for _ in $(seq 1 900); do
        [ "$(queue_depth)" = 0 ] && return 0
        sleep 0.2
    done
    echo "   the queue did not drain in 3 minutes" >&2
}
median() { tr ' ' '\n' | grep . | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

echo "== ingest: floor, SQLite$([ "$PG" = 1 ] && echo ", PostgreSQL") ($ROUNDS rounds, taking turns)" >&2
start_floor
PORT_OF[floor]=$PORT; PID_OF[floor]=$SERVER_PID
start_greenlight "sqlite://$WORK/ingest.db"
PORT_OF[sqlite]=$PORT; PID_OF[sqlite]=$SERVER_PID
START_MS="$READY_MS"
sleep 1
IDLE_KB="$(status_kb "$SERVER_PID" VmRSS)"
if [ "$PG" = 1 ]; then
    start_greenlight "$(fresh_pg)"
    PORT_OF[postgres]=$PORT; PID_OF[postgres]=$SERVER_PID
    LABELS+=(postgres)
fi
for l in "${LABELS[@]}"; do
    use "$l"; load --connections "$CONNS" --duration 1 >/dev/null; drained "$l" # warm-up
done
# Open loop at $RATE/s on an empty queue: the steady state, every delivery stored and worked
# as it comes.
declare -A P50S P99S P999S RPSS
for r in $(seq 1 "$ROUNDS"); do
    for l in "${LABELS[@]}"; do
        use "$l"
        line="$(load --connections 16 --rate "$RATE" --duration "$DUR")"
        echo "   $r $l $RATE/s: $line" >&2
        P50S[$l]+=" $(field p50_ms "$line")"; P99S[$l]+=" $(field p99_ms "$line")"
        P999S[$l]+=" $(field p999_ms "$line")"
        drained "$l"
    done
done
# Closed loop, the most 50 connections get through. After Greenlight's last round, $RATE/s
# again at once, while its workers drain the backlog the run left (a row of its own).
for r in $(seq 1 "$ROUNDS"); do
    for l in "${LABELS[@]}"; do
        use "$l"
        line="$(load --connections "$CONNS" --duration "$DUR")"
        echo "   $r $l max:     $line" >&2
        RPSS[$l]+=" $(field rps "$line")"
        if [ "$l" != floor ] && [ "$r" = "$ROUNDS" ]; then
            DRAIN_DEPTH[$l]="$(queue_depth)"
            line="$(load --connections 16 --rate "$RATE" --duration "$DUR")"
            echo "   $r $l $RATE/s with ${DRAIN_DEPTH[$l]} queued: $line" >&2
            DRAIN_P99[$l]="$(field p99_ms "$line")"
        fi
        drained "$l"
    done
done
for l in "${LABELS[@]}"; do
    RPS[$l]="$(median <<<"${RPSS[$l]}")"; P50[$l]="$(median <<<"${P50S[$l]}")"
    P99[$l]="$(median <<<"${P99S[$l]}")"; P999[$l]="$(median <<<"${P999S[$l]}")"
done
PEAK_KB="$(status_kb "${PID_OF[sqlite]}" VmHWM)"
[ "$PG" = 1 ] && PG_PEAK_KB="$(status_kb "${PID_OF[postgres]}" VmHWM)"
for l in "${LABELS[@]}"; do SERVER_PID=${PID_OF[$l]}; stop_server; done

# ---- growth: stored history must not slow intake or claiming ---------------------------------

# prefill_sqlite FILE N: N processed deliveries (1 KiB payloads) inserted with SQL directly,
# received over the last hours: inside the retention window, so the history is still there
# while the load runs (older rows would be pruned by the retention task meanwhile, and the run
# would measure the prune instead).
prefill_sqlite() {
    DATABASE_URL="sqlite://$1" "$BIN/greenlight" migrate >/dev/null
    sqlite3 "$1" <<SQL >/dev/null
PRAGMA journal_mode = WAL;
WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < $2),
     t(now) AS (SELECT CAST(strftime('%s', 'now') AS INTEGER) * 1000)
INSERT INTO deliveries (forge, delivery_id, event, received_at, payload, state, attempts,
                        next_attempt_at, finished_at)
SELECT 'github', 'prefill-' || x, 'issue_comment', now - $2 * 10 + x * 10, zeroblob(1024), 'done', 1,
       now - $2 * 10 + x * 10, now - $2 * 10 + x * 10 FROM n, t;
SQL
}

# claim_ms FILE: mean time of one claim over 500 queued jobs (the statement of Store::claim in
# src/store/deliveries.rs, copied: keep the two alike)
claim_ms() {
    local file=$1 start end
    sqlite3 "$file" <<SQL >/dev/null
WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 500)
INSERT INTO deliveries (forge, delivery_id, event, received_at, payload, state, next_attempt_at)
SELECT 'github', 'claim-' || x, 'issue_comment', 0, zeroblob(1024), 'queued', 0 FROM n;
SQL
    {
        echo "PRAGMA synchronous = OFF;"
        for _ in $(seq 1 500); do
            echo "UPDATE deliveries SET state = 'running', attempts = attempts + 1, lease_until = 9e15,
                          next_attempt_at = 9e15, lease_token = 't'
                   WHERE id = (SELECT id FROM deliveries WHERE state IN ('queued', 'running') AND next_attempt_at <= 1
                               ORDER BY next_attempt_at, id LIMIT 1)
               RETURNING id;"
        done
    } >"$WORK/claims.sql"
    start=$(date +%s%N)
    sqlite3 "$file" <"$WORK/claims.sql" >/dev/null
    end=$(date +%s%N)
    awk -v ns=$((end - start)) 'BEGIN { printf "%.3f", ns / 500 / 1e6 }'
}

declare -A GROWTH_RPS GROWTH_CLAIM
for n in $GROWTH; do
    echo "== growth: $n stored deliveries (SQLite)" >&2
    db="$WORK/growth-$n.db"
    prefill_sqlite "$db" "$n"
    GROWTH_CLAIM[$n]="$(claim_ms "$db")"
    start_greenlight "sqlite://$db"
    load --connections "$CONNS" --duration 1 >/dev/null
    line="$(load --connections "$CONNS" --duration "$DUR")"
    echo "   $line" >&2
    GROWTH_RPS[$n]="$(field rps "$line")"
    stop_server
    rm -f "$db" "$db-wal" "$db-shm"
done

echo "== memory with 10k jobs queued (SQLite)" >&2
db="$WORK/queued.db"
DATABASE_URL="sqlite://$db" "$BIN/greenlight" migrate >/dev/null
sqlite3 "$db" <<SQL >/dev/null
WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 10000)
INSERT INTO deliveries (forge, delivery_id, event, received_at, payload, state, next_attempt_at)
SELECT 'github', 'queued-' || x, 'issue_comment', 0, zeroblob(10240), 'queued', 0 FROM n;
SQL
start_greenlight "sqlite://$db"
for _ in $(seq 1 600); do
    left="$(sqlite3 "$db" "SELECT COUNT(*) FROM deliveries WHERE state IN ('queued', 'running')" 2>/dev/null || echo 1)"
    [ "$left" = 0 ] && break
    sleep 0.1
done
QUEUED_HWM_KB="$(status_kb "$SERVER_PID" VmHWM)"
stop_server

# ---- command latency and forge calls ----------------------------------------------------------

echo "== /approve-release → deploy dispatch ($APPROVALS approvals, fake GitHub on loopback)" >&2
APPROVE="$(BENCH_APPROVALS=$APPROVALS cargo bench --locked --quiet --bench approve 2>/dev/null | grep '^approve ')"
echo "   $APPROVE" >&2

# ---- micro benchmarks (criterion) -------------------------------------------------------------

echo "== micro benchmarks" >&2
MICRO="$(cargo bench --locked --quiet --bench micro -- --warm-up-time 1 --measurement-time "$((DUR / 2 + 1))" 2>/dev/null |
    awk '/time:/ && !/%/ { if ($1 != "time:") name = $1; sub(/.*time: *\[[^ ]+ [^ ]+ /, ""); t = $1 " " $2; print name "=" t; next }
         /^[a-z]/ { name = $1 }')"
echo "$MICRO" | sed 's/^/   /' >&2

# ---- the table --------------------------------------------------------------------------------

BIN_BYTES="$(stat -c %s "$BIN/greenlight")"
row "Ingest, floor (verify + 202, no storage), $CONNS conns" "${RPS[floor]} req/s" "100%"
row "Ingest, Greenlight SQLite (durable), $CONNS conns" "${RPS[sqlite]} req/s" "$(ratio "${RPS[sqlite]}" "${RPS[floor]}") of floor (>= 50%)"
if [ "$PG" = 1 ]; then
    row "Ingest, Greenlight PostgreSQL, $CONNS conns" "${RPS[postgres]} req/s" "$(ratio "${RPS[postgres]}" "${RPS[floor]}") of floor"
fi
for l in floor sqlite postgres; do
    [ -n "${P99[$l]:-}" ] || continue
    target=""; [ "$l" = sqlite ] && target="p99 <= 5 ms"
    row "Latency at $RATE req/s, $l: p50 / p99 / p99.9" "${P50[$l]} / ${P99[$l]} / ${P999[$l]} ms" "$target"
done
for l in sqlite postgres; do
    [ -n "${DRAIN_P99[$l]:-}" ] || continue
    row "p99 at $RATE req/s, $l, draining ${DRAIN_DEPTH[$l]} queued" "${DRAIN_P99[$l]} ms" ""
done
row "Idle RSS (SQLite, after start)" "$(mb "$IDLE_KB") MB" "<= 20 MB"
row "Peak RSS under ingest load (VmHWM), SQLite" "$(mb "$PEAK_KB") MB" "<= 64 MB"
[ "$PG" = 1 ] && row "Peak RSS under ingest load (VmHWM), PostgreSQL" "$(mb "$PG_PEAK_KB") MB" "<= 64 MB"
row "Start -> /readyz answering (fresh SQLite file)" "$START_MS ms" "<= 50 ms"
row "Release binary size" "$(mb $((BIN_BYTES / 1024))) MB" "<= 30 MB"
for n in $GROWTH; do
    row "Growth: ingest with $n stored deliveries" "${GROWTH_RPS[$n]} req/s" "$(ratio "${GROWTH_RPS[$n]}" "${GROWTH_RPS[0]}") of empty (>= 90%)"
done
for n in $GROWTH; do
    row "Growth: one claim with $n stored deliveries" "${GROWTH_CLAIM[$n]} ms" ""
done
row "Peak RSS working 10k queued jobs" "$(mb "$QUEUED_HWM_KB") MB" "<= 64 MB"
if [ -n "$APPROVE" ]; then
    row "/approve-release -> deploy dispatch: p50 / p99" "$(field p50_ms "$APPROVE") / $(field p99_ms "$APPROVE") ms" "<= 5 / <= 25 ms"
    row "Forge calls: one approval (comment -> deployed)" "$(field approval_calls "$APPROVE")" "<= 8"
    row "Forge calls: full PR lifecycle" "$(field lifecycle_calls "$APPROVE")" ""
fi
while IFS='=' read -r name time; do
    [ -n "$name" ] && row "Micro: $name" "$time" ""
done <<<"$MICRO"

echo
echo "Machine: $(nproc) cores, $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -n1), $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo); load average before the run: $LOAD_BEFORE; ingest and latency rows: medians of $ROUNDS rounds"
printf '| %-52s | %-26s | %-22s |\n' "Measure" "Result" "Target"
printf '|%s|%s|%s|\n' "$(printf -- '-%.0s' {1..54})" "$(printf -- '-%.0s' {1..28})" "$(printf -- '-%.0s' {1..24})"
printf '%s\n' "${ROWS[@]}"
