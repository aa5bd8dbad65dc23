#!/usr/bin/env bash
# Every line of test/mutants.txt still applies: its text occurs exactly once
# in its file, and the tests it names exist.  `make test-mutants` takes a
# quarter of an hour; this catches a mutation that a refactoring left behind
# in the quick suite.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/shell/tap.sh

while IFS= read -r line; do
    IFS=$'\x1f' read -r file from _ tests what < <(awk -F' @@ ' '{ printf "%s\x1f%s\x1f%s\x1f%s\x1f%s\n", $1, $2, $3, $4, $5 }' <<<"$line")
    count=$(python3 - "$file" "$from" <<'PY'
import sys
path, old = sys.argv[1], sys.argv[2].replace('\\n', '\n').replace('\\t', '\t')
print(open(path).read().count(old))
PY
)
    missing=
    for t in $tests; do
        [ "$t" = regress ] || [ -f "$t" ] || missing="$missing $t"
    done
    is "$count${missing:+ missing:$missing}" 1 "mutation applies: $what"
done < <(grep -v '^#' test/mutants.txt | grep -v '^[[:space:]]*$')

done_testing
