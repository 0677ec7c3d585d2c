#!/usr/bin/env bash
# Runs every fuzz target (or the ones named as arguments) for a short while and fails if
# any of them crashes, times out or runs out of memory.
#
#   fuzz/smoke.sh                      # every target, 10 s each
#   FUZZ_SECONDS=180 fuzz/smoke.sh     # longer
#   fuzz/smoke.sh jwk bundle           # some targets only
#
# Environment:
#   FUZZ_SECONDS   seconds per target (default 10)
#   FUZZ_TIMEOUT   seconds one input may take before it counts as a hang (default 25)
#   FUZZ_TOOLCHAIN rustup toolchain to build with (default nightly)
#   FUZZ_LOG_DIR   where the libFuzzer output of each target goes (default fuzz/target/smoke-logs)
#
# New inputs go to fuzz/corpus/<target> (git-ignored), listed first so that libFuzzer
# writes there; fuzz/seeds/<target> (committed) is only read. Crashing inputs land in
# fuzz/artifacts/<target>/.
#
# Needs a nightly toolchain (`rustup toolchain install nightly`); installs cargo-fuzz
# (`cargo install cargo-fuzz --locked`) if it is missing.
set -uo pipefail

seconds="${FUZZ_SECONDS:-10}"
timeout="${FUZZ_TIMEOUT:-25}"
toolchain="${FUZZ_TOOLCHAIN:-nightly}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
log_dir="${FUZZ_LOG_DIR:-$root/fuzz/target/smoke-logs}"

case "$seconds" in
    '' | *[!0-9]*) echo "FUZZ_SECONDS must be a whole number of seconds, got '$seconds'" >&2; exit 2 ;;
esac

if ! rustup run "$toolchain" rustc --version >/dev/null 2>&1; then
    echo "error: the '$toolchain' toolchain is not installed; run: rustup toolchain install $toolchain" >&2
    exit 2
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "cargo-fuzz not found; installing it" >&2
    cargo install cargo-fuzz --locked || exit 2
fi

cd "$root" || exit 2

if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo "+$toolchain" fuzz list)
fi
if [ "${#targets[@]}" -eq 0 ]; then
    echo "error: no fuzz targets found" >&2
    exit 2
fi

echo "building ${#targets[@]} targets with $(rustup run "$toolchain" rustc --version)"
cargo "+$toolchain" fuzz build || exit 2

mkdir -p "$log_dir"
failed=()
summary=()
for t in "${targets[@]}"; do
    seeds="fuzz/seeds/$t"
    corpus="fuzz/corpus/$t"
    mkdir -p "$corpus" "$seeds"
    log="$log_dir/$t.log"
    echo "== $t: ${seconds}s (log: $log)"
    cargo "+$toolchain" fuzz run "$t" "$corpus" "$seeds" -- \
        -max_total_time="$seconds" -timeout="$timeout" -print_final_stats=1 >"$log" 2>&1
    status=$?
    execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)"
    rate="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n1)"
    size="$(grep -E '^#[0-9]+' "$log" | tail -n1 | sed -n 's/.*corp: \([0-9]*\).*/\1/p')"
    line="$t: exit $status, ${execs:-?} execs, ${rate:-?} exec/s, corpus ${size:-?}"
    summary+=("$line")
    if [ "$status" -ne 0 ]; then
        failed+=("$t")
        echo "!! $line"
        grep -E 'panicked at|ERROR: libFuzzer|SUMMARY|Test unit written to|^Error' "$log" | head -n 20
    else
        echo "   $line"
    fi
done

echo
echo "summary:"
printf '  %s\n' "${summary[@]}"
if [ "${#failed[@]}" -gt 0 ]; then
    echo "FAILED: ${failed[*]} (inputs under fuzz/artifacts/, logs under $log_dir)" >&2
    exit 1
fi
echo "all ${#targets[@]} targets ran ${seconds}s without a crash"
