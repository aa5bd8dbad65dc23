\set t random(1, :tenants)
\startpipeline
BEGIN;
SELECT api_key FROM bench.client_keys WHERE tenant_id = :t;
SELECT id, amount, description, booked_at FROM transactions WHERE tenant_id = :t ORDER BY booked_at DESC LIMIT 20;
END;
\endpipeline
