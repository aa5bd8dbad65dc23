#!/usr/bin/env bash
# White-label domains under a collation whose case folding is not ASCII's:
# with a Turkish ICU locale, lower('I') is a dotless i, so folding host names
# with lower() would make BILLING.ACME.EXAMPLE unresolvable.  payymo folds
# ASCII letters only.  Uses the cluster of test/run.sh.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib.sh
. test/shell/tap.sh

q -c "DROP DATABASE IF EXISTS turkish" 2>/dev/null
q -c "CREATE DATABASE turkish TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'tr-TR' LOCALE 'C'"
q -d turkish -c "CREATE EXTENSION payymo"
is "$(q -d turkish -c "SELECT lower('BILLING') = 'billing'")" "f" \
    "control: in this database lower() does not fold I to i"
id=$(q -d turkish -c "SELECT tenant_id FROM payymo.create_tenant('acme', 'Acme')")
is "$(q -d turkish -c "SELECT payymo.add_tenant_domain($id, 'BILLING.ACME.EXAMPLE')")" "billing.acme.example" \
    "an upper-case domain is stored folded to ASCII lowercase"
is "$(q -d turkish -c "SELECT tenant_id FROM payymo.tenant_for_domain('Billing.Acme.Example:443')")" "$id" \
    "and resolves from any spelling of the host"
out=$(q -d turkish -c "SELECT payymo.normalize_domain('bılling.acme.example')" 2>&1)
like "$out" "invalid domain name" "a dotless i is not a letter of a host name (punycode is)"
q -c "DROP DATABASE turkish"

done_testing
