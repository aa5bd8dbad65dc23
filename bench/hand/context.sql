\set t random(1, :tenants)
\startpipeline
BEGIN;
SELECT set_config('app.tenant_id', tenant_id::text, true) FROM bench.client_keys WHERE tenant_id = :t;
END;
\endpipeline
