\set t random(1, :tenants)
\startpipeline
BEGIN;
SELECT set_config('app.tenant_id', tenant_id::text, true) FROM bench.client_keys WHERE tenant_id = :t;
SELECT id, amount, description, booked_at FROM transactions ORDER BY booked_at DESC LIMIT 20;
END;
\endpipeline
