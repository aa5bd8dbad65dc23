\set t random(1, :tenants)
\set id (:t - 1) * :tx_per_tenant + random(1, :tx_per_tenant)
\startpipeline
BEGIN;
SELECT set_config('app.tenant_id', tenant_id::text, true) FROM bench.client_keys WHERE tenant_id = :t;
SELECT id, bank_connection_id, amount, currency, description, booked_at FROM transactions WHERE id = :id;
END;
\endpipeline
