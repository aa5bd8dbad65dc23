\set t random(1, :tenants)
\set bc (:t - 1) * :conn_per_tenant + random(1, :conn_per_tenant)
\startpipeline
BEGIN;
SELECT payymo.set_tenant(api_key) FROM bench.client_keys WHERE tenant_id = :t;
INSERT INTO transactions (bank_connection_id, amount, description, booked_at) SELECT :bc, (g * 7 % 2000 - 1000) / 10.0, 'bench batch ' || g, now() FROM generate_series(1, 100) g;
END;
\endpipeline
