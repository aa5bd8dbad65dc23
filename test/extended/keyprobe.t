#!/usr/bin/env bash
# Timing: set_tenant takes as long for a well-formed key with an unknown key
# id as for a real key id with a wrong secret, so an attacker cannot learn
# which key ids exist.  Runs bench/keyprobe.sh with its check on: the medians
# of 1,000 samples each must be within 5 % of each other and the two
# distributions interleaved (0.1.0 gave 1.25-1.31, share below 0.1).
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib.sh
. test/shell/tap.sh

out=$(PROBE_CHECK=1 BENCH_BUILD=0 bench/keyprobe.sh 2>&1)
rc=$?
printf '%s\n' "$out" | sed 's/^/# /'
ok $rc "an unknown key id and a real one with a wrong secret take the same time"
done_testing
