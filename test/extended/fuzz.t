#!/usr/bin/env bash
# libFuzzer harnesses for the pure parsers (API key format, key file,
# token header), each for PAYYMO_FUZZ_SECONDS (default 30); see
# test/fuzz/run.sh.
exec "$(dirname "$0")/../fuzz/run.sh"
