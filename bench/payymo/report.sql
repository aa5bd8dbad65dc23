\set t random(1, :tenants)
\startpipeline
BEGIN;
SELECT payymo.set_tenant(api_key) FROM bench.client_keys WHERE tenant_id = :t;
SELECT b.bank_name, count(*), sum(x.amount) FROM transactions x JOIN bank_connections b ON b.id = x.bank_connection_id GROUP BY b.bank_name ORDER BY b.bank_name;
END;
\endpipeline
