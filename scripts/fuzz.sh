#!/usr/bin/env bash
# Runs the cargo-fuzz targets of the Rust core (rust_ext/fuzz, see docs/FUZZING.md), each
# for a bounded time, and prints one line per target.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
#
# SECONDS_PER_TARGET defaults to 60; with no TARGET, every target in
# rust_ext/fuzz/fuzz_targets/ runs, one after the other. Needs the nightly toolchain;
# installs cargo-fuzz (`cargo install cargo-fuzz --locked`) when it is missing.
#
# The committed seeds in rust_ext/fuzz/corpus/<target>/ are only read: new inputs go to a
# scratch directory that is removed afterwards, so the corpus stays small. Exits non-zero
# when a target crashes (or times out), naming the input it wrote to
# rust_ext/fuzz/artifacts/<target>/; logs are kept in $FUZZ_LOG_DIR (default: a temp dir).
set -euo pipefail

usage() { sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; }
die() { printf 'fuzz.sh: %s\n' "$*" >&2; exit 2; }

case ${1:-} in
    -h|--help|help) usage; exit 0 ;;
esac

seconds=60
if [ $# -gt 0 ] && [[ $1 =~ ^[0-9]+$ ]]; then
    seconds=$1
    shift
fi
[ "$seconds" -gt 0 ] || die "SECONDS_PER_TARGET must be a positive number"

cd "$(dirname "$0")/../rust_ext"
all_targets=$(for f in fuzz/fuzz_targets/*.rs; do basename "$f" .rs; done)
if [ $# -gt 0 ]; then
    targets=("$@")
    for target in "${targets[@]}"; do
        grep -qx -- "$target" <<<"$all_targets" \
            || die "no target '$target' (targets: ${all_targets//$'\n'/ })"
    done
else
    mapfile -t targets <<<"$all_targets"
fi

rustup toolchain list | grep -q '^nightly' \
    || die "the nightly toolchain is needed (rustup toolchain install nightly)"
if ! command -v cargo-fuzz >/dev/null; then
    echo "fuzz.sh: installing cargo-fuzz" >&2
    cargo install cargo-fuzz --locked
fi

log_dir=${FUZZ_LOG_DIR:-$(mktemp -d -t nymchat-fuzz-logs.XXXXXX)}
mkdir -p "$log_dir"
scratch_root=$(mktemp -d -t nymchat-fuzz-corpus.XXXXXX)
trap 'rm -rf "$scratch_root"' EXIT

# -a: debug assertions and overflow checks on, so arithmetic slips crash too.
fuzz_flags=(--debug-assertions)
echo "fuzz.sh: building the targets; logs in $log_dir" >&2
cargo +nightly fuzz build "${fuzz_flags[@]}" >"$log_dir/build.log" 2>&1 \
    || { tail -20 "$log_dir/build.log" >&2; die "build failed (see $log_dir/build.log)"; }

failed=0
for target in "${targets[@]}"; do
    scratch=$scratch_root/$target
    mkdir -p "$scratch"
    log=$log_dir/$target.log
    status=0
    # The scratch dir comes first: libFuzzer writes new inputs only to the first directory.
    cargo +nightly fuzz run "${fuzz_flags[@]}" "$target" "$scratch" "fuzz/corpus/$target" -- \
        -max_total_time="$seconds" -timeout=20 -rss_limit_mb=2048 -print_final_stats=1 \
        >"$log" 2>&1 || status=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    took=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2 || true)
    if [ "$status" -eq 0 ]; then
        printf '%-26s ok     %s runs in %s s (%s exec/s, cov %s)\n' \
            "$target" "${runs:-?}" "${took:-?}" "${rate:-?}" "${cov:-?}"
    else
        failed=1
        artifact=$(sed -n 's/.*Test unit written to \([^ ]*\).*/\1/p' "$log" | head -1)
        kind=$(grep -o -m1 -E 'ERROR: libFuzzer: [a-z-]+|panicked at [^ ]*' "$log" \
            || echo "exit $status")
        printf '%-26s CRASH  %s runs; %s; artifact: %s (log: %s)\n' \
            "$target" "${runs:-?}" "${kind%:}" "${artifact:-none}" "$log"
    fi
done
exit "$failed"
