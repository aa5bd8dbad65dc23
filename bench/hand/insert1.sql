\set t random(1, :tenants)
\set bc (:t - 1) * :conn_per_tenant + random(1, :conn_per_tenant)
\set cents random(-100000, 100000)
\startpipeline
BEGIN;
SELECT set_config('app.tenant_id', tenant_id::text, true) FROM bench.client_keys WHERE tenant_id = :t;
INSERT INTO transactions (bank_connection_id, amount, description, booked_at) VALUES (:bc, :cents / 100.0, 'bench insert', now());
END;
\endpipeline
