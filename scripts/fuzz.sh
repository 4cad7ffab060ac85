#!/usr/bin/env bash
# make fuzz: every cargo-fuzz target in fuzz/ for FUZZ_S seconds, two at a
# time, on the stable toolchain (`cargo fuzz run -s none`: no sanitizer, so
# no nightly; Rust's own checks and libFuzzer's coverage are enough for safe
# code). Prints per target the executions and whether anything was found.
#
#   FUZZ_S=60            seconds per target
#   FUZZ_JOBS=2          targets at once
#   FUZZ_TARGETS="..."   a subset (default: every fuzz/fuzz_targets/*.rs)
#
# New coverage goes to fuzz/work/corpus/TARGET (not committed); the
# committed seeds in fuzz/corpus/TARGET are read only. A crash is written to
# fuzz/artifacts/TARGET/: fix it, then commit the file there; the corpus
# replay test (shared/tests/fuzz_corpus.rs) runs it from then on.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
fuzz=$top/fuzz
secs=${FUZZ_S:-60}
jobs=${FUZZ_JOBS:-2}
cargo=${CARGO:-cargo}
targets=${FUZZ_TARGETS:-$(cd "$fuzz/fuzz_targets" && ls -- *.rs | sed 's/\.rs$//')}

if ! "$cargo" fuzz --version >/dev/null 2>&1; then
    echo "fuzz: installing cargo-fuzz from crates.io" >&2
    "$cargo" install cargo-fuzz --locked
fi

cd "$fuzz"
"$cargo" fuzz build -s none
mkdir -p work/logs
export cargo secs fuzz

# One target: its own log, its exit status in a file, so the summary below
# can tell "ran out of time" (0) from "found something" (not 0).
run_one() {
    t=$1
    mkdir -p "work/corpus/$t"
    set +e
    "$cargo" fuzz run -s none "$t" "work/corpus/$t" "corpus/$t" -- \
        -max_total_time="$secs" -timeout=60 -print_final_stats=1 >"work/logs/$t.log" 2>&1
    echo $? >"work/logs/$t.status"
    echo "fuzz: $t done" >&2
}
export -f run_one
printf '%s\n' $targets | xargs -P "$jobs" -I{} bash -c 'run_one {}'

found=0
printf '%-14s %12s %8s  %s\n' target executions exec/s result
for t in $targets; do
    log=work/logs/$t.log
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    if [ "$(cat "work/logs/$t.status")" = 0 ]; then
        result="nothing found"
    else
        found=1
        art=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -1)
        result="FOUND: ${art:-see fuzz/$log}"
    fi
    printf '%-14s %12s %8s  %s\n' "$t" "${runs:-?}" "${rate:-?}" "$result"
done
exit $found
