#!/usr/bin/env bash
# Sessions and logins seen from outside: a well-formed session token with a
# real session id and a forged secret (valid checksum, so only the stored
# hash can refuse it), a user disabled behind payymo's back, what reaches
# the server log (never a password or a token, even from a failing
# statement), and logins without the preload.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib.sh
. test/shell/tap.sh

db=payymo_sessions
trap 'q -c "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1' EXIT
q -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >/dev/null
q -d "$db" >/dev/null <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION payymo;
DO $$ BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'session_client') THEN CREATE ROLE session_client LOGIN; END IF;
END $$;
ALTER DATABASE payymo_sessions SET payymo.password_opslimit = 1;
ALTER DATABASE payymo_sessions SET payymo.password_memlimit = '8MB';
SELECT payymo.create_tenant('acme', 'Acme', admin_email => 'boss@acme.example',
                            admin_password => 'Sw0rdfish-PASSWORD');
SQL
c() { psql -X -q -A -t -v VERBOSITY=verbose -U session_client -d "$db" "$@" 2>&1 | grep -v '^LOCATION:'; }

from=$(wc -l <"$PAYYMO_LOG")
token=$(c -c "SELECT payymo.login('acme', 'boss@acme.example', 'Sw0rdfish-PASSWORD')")
like "$token" '^pys_[a-z2-7]{16}_[a-z2-7]{60}$' "a client logs in"
is "$(c -c "SELECT payymo.set_session('$token', false)")" "1" "its token sets the context"

sid=${token:4:16}
forged=$(FORGE_PREFIX=pys_ test/forge_key.py "$sid")
is "${forged:0:21}" "${token:0:21}" "a forged token with the real session id and a valid checksum"
is "$(c -c "SELECT payymo.set_session('$forged', false)" | head -1)" "ERROR:  28000: invalid session token" \
   "... is refused: only the secret's hash decides"
unknown=$(FORGE_PREFIX=pys_ test/forge_key.py "aaaaaaaaaaaaaaaa")
is "$(c -c "SELECT payymo.set_session('$unknown', false)" | head -1)" "ERROR:  28000: invalid session token" \
   "a well-formed token with an unknown session id is refused the same way"

# Disabled behind payymo's back (not through set_user_status, which also
# revokes the sessions): the session check itself must look at the user.
q -d "$db" -c "UPDATE payymo.users SET status = 'disabled'" >/dev/null
is "$(c -c "SELECT payymo.set_session('$token', false)" | head -1)" "ERROR:  28000: invalid session token" \
   "a session of a user disabled in the table is refused"
q -d "$db" -c "UPDATE payymo.users SET status = 'active'" >/dev/null

# Failing statements that carry secrets: a wrong password, a bad token, an
# error inside the same statement after a successful login.
c -c "SELECT payymo.login('acme', 'boss@acme.example', 'Wr0ng-SECRET-passw0rd')" >/dev/null
c -c "SELECT payymo.set_session('${token:0:60}Zz')" >/dev/null
c -c "SELECT payymo.login('acme', 'boss@acme.example', 'Sw0rdfish-PASSWORD') || 1/0" >/dev/null
c -c "SELECT payymo.set_session('$token') + (1/0)" >/dev/null
psql -X -q -A -t -U session_client -d "$db" >/dev/null 2>&1 <<SQL
SELECT payymo.login('acme', 'boss@acme.example', 'Sw0rdfish-PASSWORD') IS NULL;
SELECT payymo.set_session('$token') IS NULL;
SQL
# log_statement logs every statement's text before it runs.
q -c "ALTER ROLE session_client SET log_statement = 'all'" >/dev/null
c -c "SELECT payymo.login('acme', 'boss@acme.example', 'Sw0rdfish-PASSWORD') IS NULL" >/dev/null
c -c "SELECT length('$token') + 0" >/dev/null
q -c "ALTER ROLE session_client RESET log_statement" >/dev/null
c -c "SELECT payymo.logout('$token')" >/dev/null
q -d "$db" -c "DO \$\$ BEGIN RAISE LOG 'sessions-mark'; END \$\$" >/dev/null
wait_for_log "sessions-mark"
log=$(tail -n +"$((from + 1))" "$PAYYMO_LOG")
like "$log" "payymo security event: bad_login" "a failed login is a security event"
like "$log" "payymo security event: bad_session" "so is a refused session token"
like "$log" "statement: \\*\\*\\*" "log_statement's text of a login is blanked"
like "$log" "statement: SELECT length\\('pys_${sid}_\\*\\*\\*" "a session token in a logged statement keeps its id, not its secret"
unlike "$log" "Sw0rdfish|Wr0ng-SECRET" "no password reaches the server log"
unlike "$log" "${token:21:52}" "no session secret reaches the server log"
unlike "$log" "${forged:21:52}" "not even a forged one"

is "$(c -c "SELECT payymo.set_session('$token', false)" | head -1)" "ERROR:  28000: invalid session token" \
   "logout ended the session"

done_testing
