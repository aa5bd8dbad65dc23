# Sourced by alerts.t and alerts_worker.t: a cluster of their own with the
# alerts worker (payymo.alerts_database = 'postgres', every second), and
# setup DB: payymo, tenants acme (1), globex (2), initech (3), a client role
# (alert_client) and an administrator (alert_admin, in payymo_admin, not
# superuser).
. test/lib.sh
. test/shell/tap.sh

keydir=$(mktemp -d /tmp/payymo-keys.XXXXXX)
cluster_start "shared_preload_libraries = 'payymo'" \
    "payymo.key_file = '$(make_key_file "$keydir")'" \
    "payymo.alerts_database = 'postgres'" "payymo.alerts_interval = 1" >/dev/null \
    || { echo "1..0 # cluster did not start"; exit 1; }
setup() {
    { [ "$1" = postgres ] || q -c "CREATE DATABASE $1"; } && q -d "$1" >/dev/null <<'SQL'
CREATE EXTENSION payymo;
DO $$ BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'alert_client') THEN
        CREATE ROLE alert_client LOGIN;
        CREATE ROLE alert_admin LOGIN IN ROLE payymo_admin;
    END IF;
END $$;
SELECT payymo.create_tenant(s, s || ' Ltd') FROM unnest(ARRAY['acme', 'globex', 'initech']) s;
CREATE TABLE public.notes (id bigserial PRIMARY KEY, tenant_id bigint NOT NULL, body text);
SELECT payymo.enable_tenancy('public.notes');
GRANT SELECT, INSERT ON public.notes TO alert_client;
GRANT USAGE ON SEQUENCE public.notes_id_seq TO alert_client;
SQL
}
