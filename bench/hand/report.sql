\set t random(1, :tenants)
\startpipeline
BEGIN;
SELECT set_config('app.tenant_id', tenant_id::text, true) FROM bench.client_keys WHERE tenant_id = :t;
SELECT b.bank_name, count(*), sum(x.amount) FROM transactions x JOIN bank_connections b ON b.id = x.bank_connection_id GROUP BY b.bank_name ORDER BY b.bank_name;
END;
\endpipeline
