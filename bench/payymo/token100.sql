\set t random(1, :tenants)
\startpipeline
BEGIN;
SELECT payymo.set_tenant(api_key) FROM bench.client_keys WHERE tenant_id = :t;
SELECT id, payymo.decrypt_token(access_token, 'bank_connections.access_token') FROM bank_connections;
END;
\endpipeline
