#!/usr/bin/env bash
# Build the libFuzzer harnesses (test/fuzz/fuzz_*.c) with clang-14 and
# AddressSanitizer + UndefinedBehaviorSanitizer, then run each for a bounded
# time starting from its committed seed corpus (test/fuzz/corpus/<name>/).
# Prints TAP; exits non-zero on any build failure, crash, sanitizer report,
# leak or failed property check.
#
#   PAYYMO_FUZZ_SECONDS   time per harness (default 30)
#   PAYYMO_FUZZ_TARGETS   which harnesses (default "apikey keyfile token_header")
#
# New inputs libFuzzer finds go to test/fuzz/build/corpus/<name>/ (git-
# ignored); a crashing input is saved as test/fuzz/build/crash-<name>-*
# and can be replayed with: test/fuzz/build/fuzz_<name> FILE
set -uo pipefail
cd "$(dirname "$0")/../.."

seconds=${PAYYMO_FUZZ_SECONDS:-30}
targets=${PAYYMO_FUZZ_TARGETS:-apikey keyfile token_header}
build=test/fuzz/build
. test/shell/tap.sh

CC=${PAYYMO_FUZZ_CC:-clang-14}
if ! command -v "$CC" >/dev/null; then
    test/deps.sh extended >&2 || true
fi
if ! command -v "$CC" >/dev/null; then
    ok 1 "$CC is installed (run: test/deps.sh extended)"
    done_testing
    exit 1
fi

pgserver=$(pg_config --includedir-server)
pgport=$(pg_config --pkglibdir)/libpgport.a
cflags=(-g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
        -Wall -Werror -Wno-ignored-attributes -Wno-unused-parameter -Isrc)

# Sources and libraries of each harness.
declare -A srcs=(
    [apikey]="test/fuzz/fuzz_apikey.c src/keyformat.c -lsodium"
    [keyfile]="test/fuzz/fuzz_keyfile.c src/keyfile.c -lsodium"
    [token_header]="-I$pgserver -Itest/fuzz test/fuzz/fuzz_token_header.c test/fuzz/shim.c src/keyfile.c $pgport -lsodium -lm"
)

mkdir -p "$build"
for t in $targets; do
    [ -n "${srcs[$t]:-}" ] || { ok_log 1 "unknown fuzz target $t"; continue; }
    log=$build/$t.build.log
    # shellcheck disable=SC2086
    "$CC" "${cflags[@]}" ${srcs[$t]} -o "$build/fuzz_$t" >"$log" 2>&1
    ok_log $? "fuzz_$t builds with ASan+UBSan, no warnings" "$log"
done

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
for t in $targets; do
    [ -x "$build/fuzz_$t" ] || continue
    work=$build/corpus/$t
    log=$build/$t.log
    mkdir -p "$work"
    "$build/fuzz_$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -max_len=4096 -print_final_stats=1 -artifact_prefix="$build/crash-$t-" \
        "$work" "test/fuzz/corpus/$t" >"$log" 2>&1
    rc=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    secs=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log")
    [ "$rc" -eq 0 ] && [ -n "$runs" ] && [ "$runs" -gt 0 ]
    ok_log $? "fuzz_$t: ${runs:-0} executions in ${secs:-?} s, no crash, leak or failed property" "$log"
done

done_testing
