\set t random(1, :tenants)
\set bc (:t - 1) * :conn_per_tenant + random(1, :conn_per_tenant)
\startpipeline
BEGIN;
SELECT api_key FROM bench.client_keys WHERE tenant_id = :t;
SELECT id, access_token FROM bank_connections WHERE tenant_id = :t AND id = :bc;
END;
\endpipeline
