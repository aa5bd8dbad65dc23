\set t random(1, :tenants)
\startpipeline
BEGIN;
SELECT api_key FROM bench.client_keys WHERE tenant_id = :t;
END;
\endpipeline
