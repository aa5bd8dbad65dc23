\set t random(1, :tenants)
\set id (:t - 1) * :tx_per_tenant + random(1, :tx_per_tenant)
\startpipeline
BEGIN;
SELECT api_key FROM bench.client_keys WHERE tenant_id = :t;
SELECT id, bank_connection_id, amount, currency, description, booked_at FROM transactions WHERE tenant_id = :t AND id = :id;
END;
\endpipeline
