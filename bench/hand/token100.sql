\set t random(1, :tenants)
\startpipeline
BEGIN;
SELECT set_config('app.tenant_id', tenant_id::text, true) FROM bench.client_keys WHERE tenant_id = :t;
SELECT id, pgp_sym_decrypt(access_token, current_setting('app.token_key')) FROM bank_connections;
END;
\endpipeline
