#!/usr/bin/env bash
# The pgTAP suites with every backend under valgrind memcheck: no error in
# payymo's code, no crash; see test/sanitize.sh for what this does and does
# not prove.
exec "$(dirname "$0")/../sanitize.sh"
