#!/usr/bin/env bash
# Runs Greenlight's fuzz targets (fuzz/, cargo-fuzz + libFuzzer) one after another.
#
#   scripts/fuzz.sh                    # every target, 10 minutes each
#   scripts/fuzz.sh command policy     # only these
#   FUZZ_SECONDS=60 scripts/fuzz.sh    # shorter
#   FUZZ_ARGS=-len_control=0 scripts/fuzz.sh command   # extra libFuzzer flags (long inputs at once)
#
# Needs a nightly toolchain and cargo-fuzz (`rustup toolchain install nightly`,
# `cargo install cargo-fuzz --locked`). Runs niced on one core. Each target starts from the
# seeds in fuzz/seeds/ (the documented payloads and policies), the inputs of earlier findings
# (fuzz/regressions/) and its corpus from earlier runs (fuzz/corpus/, not committed). A crash
# leaves its input in fuzz/artifacts/TARGET/ and stops that target: reproduce with
# `cargo +nightly fuzz run TARGET artifacts/TARGET/crash-…` in fuzz/, then keep the input as a
# #[test] in the main crate and in fuzz/regressions/TARGET/. Prints, per target: executions,
# time, coverage and findings. (Edit this script only while it is not running: bash reads it
# as it goes.)
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

SECONDS_EACH="${FUZZ_SECONDS:-600}"
ALL=(command github_event github_event_structured gitlab_event gitlab_event_structured policy)
TARGETS=("$@")
[ ${#TARGETS[@]} -eq 0 ] && TARGETS=("${ALL[@]}")
TARGET_DIR="${FUZZ_TARGET_DIR:-$PWD/target}"

FUZZ_DIR="$PWD"

# Seeds, and the inputs of earlier findings (kept in fuzz/regressions/ once fixed).
seeds_for() {
    [ -d "$FUZZ_DIR/seeds/$1" ] && echo "$FUZZ_DIR/seeds/$1"
    [ -d "$FUZZ_DIR/regressions/$1" ] && echo "$FUZZ_DIR/regressions/$1"
    return 0   # the *_structured targets build their inputs from the fixtures themselves
}

dict_for() {
    [ -f "$FUZZ_DIR/$1.dict" ] && echo "-dict=$FUZZ_DIR/$1.dict"
    return 0
}

summary=()
for target in "${TARGETS[@]}"; do
    mkdir -p "corpus/$target" "artifacts/$target"
    out="$FUZZ_DIR/artifacts/$target"
    rm -f "$out/fuzz-0.log"
    echo "== $target: ${SECONDS_EACH}s"
    # libFuzzer's job writes its log to fuzz-0.log in the working directory: one per target.
    set +e
    # shellcheck disable=SC2046
    (cd "$out" && nice -n 19 cargo +nightly fuzz run --fuzz-dir "$FUZZ_DIR" --target-dir "$TARGET_DIR" \
        --debug-assertions "$target" "$FUZZ_DIR/corpus/$target" $(seeds_for "$target") -- \
        -max_total_time="$SECONDS_EACH" -jobs=1 -workers=1 -timeout=10 -rss_limit_mb=2048 \
        -max_len=8192 -print_final_stats=1 $(dict_for "$target") ${FUZZ_ARGS:-}) >"$out/cargo-fuzz.log" 2>&1
    status=$?
    set -e
    log="$out/fuzz-0.log"
    grep -E '^(==|SUMMARY)|panicked|Test unit written' "$log" || true
    execs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' | tail -1)
    cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1 | grep -oE '[0-9]+')
    ft=$(grep -oE 'ft: [0-9]+' "$log" | tail -1 | grep -oE '[0-9]+')
    corpus=$(find "corpus/$target" -type f | wc -l)
    crashes=$(find "$out" -name 'crash-*' -o -name 'timeout-*' -o -name 'oom-*' | wc -l)
    summary+=("$target: ${execs:-?} executions in ${SECONDS_EACH}s, coverage ${cov:-?} edges / ${ft:-?} features, corpus $corpus, exit $status, findings in artifacts/$target: $crashes")
done
echo
echo "== summary"
printf '%s\n' "${summary[@]}"
