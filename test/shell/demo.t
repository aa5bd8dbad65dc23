#!/usr/bin/env bash
# The walkthrough (`make demo`) runs in CI: it must succeed, and every
# refusal it claims must be in its output with the right SQLSTATE.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib.sh
. test/shell/tap.sh

out=$(PAYYMO_DEMO_REUSE=1 test/demo.sh 2>&1)
ok $? "the walkthrough exits 0"
like "$out" "Walkthrough complete\." "it runs to the end"
like "$out" "refused, SQLSTATE 42501: no tenant context set" "no context: tenancy tables fail closed"
like "$out" "refused, SQLSTATE 42501: parameter \"payymo.tenant_id\" cannot be set directly" \
    "a forged SET is refused"
like "$out" "refused, SQLSTATE 42501: cannot write another tenant's row" "a cross-tenant insert is refused"
is "$(printf '%s\n' "$out" | grep -A2 'Globex rows an Acme UPDATE touched' | tail -1 | tr -d ' ')" 0 \
    "an UPDATE of another tenant's rows touches none"
like "$out" "refused, SQLSTATE 22P03: payymo token could not be decrypted" \
    "a cross-tenant decrypt is refused"
is "$(printf '%s\n' "$out" | grep -c 'refused, SQLSTATE 28000: invalid API key')" 2 \
    "a made-up key and a suspended tenant's key are refused"
like "$out" "acme-oauth-access-token" "a tenant decrypts its own token"
unlike "$out" "globex-oauth-access-token" "no one ever sees the other tenant's plaintext"
like "$out" '1 \| acme \| \{"logo_url"' "the custom domain resolves to Acme and its branding"

done_testing
