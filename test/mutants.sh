#!/usr/bin/env bash
# `make test-mutants`: applies each security-relevant mutation of
# test/mutants.txt to a scratch copy of the source tree, builds it, installs
# it into a private copy of the PostgreSQL installation (never the system's
# extension directory) and runs the tests the line names against it.  A
# mutation the tests do not catch "survives": that is a missing test, and
# the run fails.  First the unmutated copy must pass the same tests, or the
# kills would mean nothing.
#
#   test/mutants.sh                 every mutation (about 15 minutes on 2 cores)
#   test/mutants.sh PATTERN         only those whose line matches PATTERN
#
# The private installation is a copy of the one pg_config names (Debian's
# PostgreSQL 15 by default), made once in $PAYYMO_CACHE/pg-private: PostgreSQL
# finds its files relative to its binaries, so the copy is complete.  Prints
# TAP and ends with "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
. test/lib.sh

filter=${1:-}
cache=${PAYYMO_CACHE:-/var/cache/payymo}
private=$cache/pg-private

# --- the private installation: the files of pg_config's installation
# copied under $private at the same paths, headers shared by a link
if [ ! -f "$private/.complete" ]; then
    rm -rf "$private"
    mkdir -p "$private"
    lib=$(dirname "$("$PG_CONFIG" --bindir)")
    share=$("$PG_CONFIG" --sharedir)
    (cd / && cp -a --parents "${lib#/}" "${share#/}" "$private/")
    mkdir -p "$private$(dirname "$("$PG_CONFIG" --includedir)")"
    ln -s "$("$PG_CONFIG" --includedir)" "$private$("$PG_CONFIG" --includedir)"
    ln -s "$private$("$PG_CONFIG" --bindir)" "$private/bin"
    chmod -R a+rX "$private"
    touch "$private/.complete"
fi
export PG_CONFIG=$private/bin/pg_config

scratch=$(mktemp -d /tmp/payymo-mutants.XXXXXX)
trap 'rm -rf "$scratch"' EXIT
tar --exclude=.git --exclude='*.o' --exclude='*.so' --exclude='*.bc' -cf - . | tar -xf - -C "$scratch"
rm -f "$scratch/.build-pg-config"

n=0
survived=0
killed=0
tap() { n=$((n + 1)); echo "$1 $n - $2"; }

# run_tests TESTS...: the tests in the scratch tree; 0 when all passed.
run_tests() {
    (cd "$scratch" && test/run.sh "$@") >"$scratch/last.log" 2>&1
}

mapfile -t lines < <(grep -v '^#' test/mutants.txt | grep -v '^[[:space:]]*$' | grep -e "$filter")
all_tests=$(printf '%s\n' "${lines[@]}" | awk -F' @@ ' '{ print $4 }' | tr ' ' '\n' | sort -u | tr '\n' ' ')

if run_tests $all_tests; then
    tap ok "control: the unmutated source passes $all_tests"
else
    tap "not ok" "control: the unmutated source passes $all_tests"
    tail -40 "$scratch/last.log" | sed 's/^/#   /'
    echo "1..$n"
    echo "0 passed, 1 failed"
    exit 1
fi

for line in "${lines[@]}"; do
    IFS=$'\x1f' read -r file from to tests what < <(awk -F' @@ ' '{ printf "%s\x1f%s\x1f%s\x1f%s\x1f%s\n", $1, $2, $3, $4, $5 }' <<<"$line")
    cp "$file" "$scratch/$file"
    if ! python3 - "$scratch/$file" "$from" "$to" <<'PY'
import sys
path, old, new = sys.argv[1], *(a.replace('\\n', '\n').replace('\\t', '\t') for a in sys.argv[2:4])
text = open(path).read()
if text.count(old) != 1:
    sys.exit(f"expected the text once in {path}, found it {text.count(old)} times: {old!r}")
open(path, 'w').write(text.replace(old, new))
PY
    then
        tap "not ok" "$what: the mutation does not apply to $file (edit test/mutants.txt)"
        survived=$((survived + 1))
        continue
    fi
    if run_tests $tests; then
        tap "not ok" "$what: SURVIVED $tests ($file)"
        survived=$((survived + 1))
    elif ! grep -q '^== cluster' "$scratch/last.log"; then
        tap "not ok" "$what: the mutated source does not build ($file; edit test/mutants.txt)"
        grep -E 'error' "$scratch/last.log" | head -5 | sed 's/^/#   /'
        survived=$((survived + 1))
    else
        tap ok "$what: caught by $tests"
        killed=$((killed + 1))
    fi
    cp "$file" "$scratch/$file"
done

echo "1..$n"
echo
echo "$((killed + 1)) passed, $survived failed"
[ "$survived" -eq 0 ]
