#!/usr/bin/env bash
# Fuzzes the sans-IO cores (Range parsing, preconditions, path decoding, signed-link tokens) and
# the movie metadata adapter with cargo-fuzz: each target in turn for a bounded time, then one line
# per target with its executions and whether it found anything. Exits 1 if any target found a
# crash (a failed assert or a panic), a hang or a leak.
#
#   scripts/fuzz.sh                        # 60 s per target
#   scripts/fuzz.sh 600                    # 10 min per target
#   FUZZ_TARGETS=range scripts/fuzz.sh 30  # one target
#   FUZZ_SANITIZER=none scripts/fuzz.sh    # no AddressSanitizer: ~4x the executions
#
# Findings land in fuzz/artifacts/<target>/ (see fuzz/README.md to reproduce and minimise them);
# libFuzzer's full output in fuzz/target/fuzz-logs/<target>/.
set -euo pipefail

seconds=${1:-60}
if ! [[ $seconds =~ ^[1-9][0-9]*$ ]]; then
    echo "usage: $0 [SECONDS_PER_TARGET]   (a whole number of seconds, default 60)" >&2
    exit 2
fi
fuzz_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")/../fuzz" && pwd)
targets=${FUZZ_TARGETS:-range conditional resolve signed_link media}

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "cargo-fuzz is not installed; installing it (once, about a minute)"
    cargo install cargo-fuzz --locked
fi

# cargo-fuzz asks rustc for nightly-only flags (-Zsanitizer=address; -Z options are refused by
# a stable rustc: "the option `Z` is only accepted on the nightly compiler"). We build with the
# stable toolchain, so RUSTC_BOOTSTRAP=1 lets it accept them; nothing else needs nightly.
export RUSTC_BOOTSTRAP=1
# Stable toolchains ship the AddressSanitizer runtime on x86_64 Linux
# (lib/rustlib/<host>/lib/librustc-stable_rt.asan.a); where it is missing, fuzz with
# `--sanitizer none` (which needs no -Z flag at all): still coverage-guided by libFuzzer, and in
# the safe code these targets reach it is the targets' asserts and Rust's own panics that find
# bugs, not ASan.
if [[ -z ${FUZZ_SANITIZER:-} ]]; then
    host=$(rustc -vV | sed -n 's/^host: //p')
    if compgen -G "$(rustc --print sysroot)/lib/rustlib/$host/lib/librustc-*_rt.asan.a" >/dev/null; then
        FUZZ_SANITIZER=address
    else
        FUZZ_SANITIZER=none
    fi
fi
# --debug-assertions: the release build keeps `debug_assert!`s and overflow checks, so an
# arithmetic overflow is a panic (a finding) rather than a silently wrong range.
build_flags=(--fuzz-dir "$fuzz_dir" --sanitizer "$FUZZ_SANITIZER" --debug-assertions)

echo "rustc: $(rustc -V); sanitizer: $FUZZ_SANITIZER; $seconds s per target: $targets"
# Build every target first so that compiling does not eat into any target's time.
cargo fuzz build "${build_flags[@]}"

found=0
for target in $targets; do
    logs=$fuzz_dir/target/fuzz-logs/$target
    rm -rf "$logs"
    mkdir -p "$logs" "$fuzz_dir/artifacts/$target"
    touch "$logs/started"
    # -jobs=1 -workers=1: one fuzzing process at a time (the machine's cores are shared).
    # In that mode libFuzzer writes the run's output to fuzz-0.log in the working directory,
    # hence the cd. -timeout: an input that takes 10 s is a hang, and a finding.
    set +e
    (cd "$logs" && cargo fuzz run "${build_flags[@]}" "$target" -- \
        -max_total_time="$seconds" -timeout=10 -jobs=1 -workers=1 -print_final_stats=1) \
        >"$logs/run.log" 2>&1
    status=$?
    set -e
    stat() { sed -n "s/^stat::$1: *//p" "$logs/fuzz-0.log" 2>/dev/null | tail -n 1; }
    executions=$(stat number_of_executed_units)
    new_inputs=$(stat new_units_added)
    artifacts=$(find "$fuzz_dir/artifacts/$target" -type f -newer "$logs/started" | sort)
    summary=$(printf '%-12s %10s executions, %5s new corpus inputs' \
        "$target" "${executions:-?}" "${new_inputs:-?}")
    if [[ $status -eq 0 && -z $artifacts ]]; then
        echo "$summary: nothing found"
        continue
    fi
    found=1
    if [[ -z $artifacts ]]; then
        echo "$summary: FAILED (exit $status) without an artifact; see $logs/run.log:"
        tail -n 30 "$logs/run.log"
        continue
    fi
    echo "$summary: FOUND (exit $status)"
    for artifact in $artifacts; do
        echo "  input: $artifact"
        od -An -c "$artifact" | head -n 8
    done
    # The panic message or sanitizer report that ended the run.
    grep -m 1 -A 8 -E "panicked at|ERROR: (AddressSanitizer|libFuzzer)" "$logs/fuzz-0.log" || true
    echo "  reproduce: cargo fuzz run --sanitizer $FUZZ_SANITIZER --debug-assertions $target <input>"
    echo "  minimise:  cargo fuzz tmin --sanitizer $FUZZ_SANITIZER --debug-assertions $target <input>"
    echo "  (with RUSTC_BOOTSTRAP=1 on a stable toolchain; run from the repository root)"
done
exit "$found"
