# Minimal TAP producer for the shell tests.  Source it after test/lib.sh.
#   ok STATUS "name"; is GOT WANT "name"; like TEXT REGEX "name"
#   unlike TEXT REGEX "name"; done_testing at the end
# Every check prints one "ok"/"not ok" line; a failure also prints what
# was seen, as TAP diagnostics.

_tap_n=0
_tap_failed=0

_tap_result() {
    _tap_n=$((_tap_n + 1))
    if [ "$1" -eq 0 ]; then
        echo "ok $_tap_n - $2"
    else
        echo "not ok $_tap_n - $2"
        _tap_failed=$((_tap_failed + 1))
        [ -n "${3:-}" ] && printf '%s\n' "$3" | sed 's/^/#   /'
    fi
    return 0
}

# ok STATUS NAME: passes when STATUS is 0.
ok() { _tap_result "$1" "$2"; }

is() {
    [ "$1" = "$2" ]
    _tap_result $? "$3" "got: '$1'
expected: '$2'"
}

# (grep reads a here-string, not a pipe: with pipefail, grep -q exiting at
# the first match would fail the pipe's writer and the check with it.)
like() {
    grep -qE -- "$2" <<<"$1"
    _tap_result $? "$3" "'$1' does not match /$2/"
}

unlike() {
    ! grep -qE -- "$2" <<<"$1"
    _tap_result $? "$3" "matched /$2/"
}

# ok_log STATUS NAME [FILE]: like ok, showing the end of FILE on failure.
ok_log() {
    local diag=""
    [ -n "${3:-}" ] && [ -f "$3" ] && diag=$(tail -60 "$3")
    _tap_result "$1" "$2" "$diag"
}

# End of a test script: print the plan, exit non-zero on any failure.
done_testing() { echo "1..$_tap_n"; [ "$_tap_failed" -eq 0 ]; }

# wait_for_log REGEX [FILE]: wait (bounded) until the server log matches;
# the logging collector writes asynchronously.
wait_for_log() {
    local file=${2:-$PAYYMO_LOG} i
    for i in $(seq 1 50); do
        grep -qE -- "$1" "$file" 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}
