-- =========================================================================
-- Observability and limits
-- =========================================================================

-- Need shared_preload_libraries = 'payymo'; otherwise they raise 55000.

CREATE FUNCTION payymo.tenant_stats(
    OUT datid oid,
    OUT tenant_id bigint,
    OUT statements bigint,
    OUT rows bigint,
    OUT total_exec_time double precision,
    OUT shared_blks_hit bigint,
    OUT shared_blks_read bigint,
    OUT shared_blks_dirtied bigint,
    OUT shared_blks_written bigint,
    OUT temp_blks_read bigint,
    OUT temp_blks_written bigint,
    OUT wal_records bigint,
    OUT wal_bytes numeric,
    OUT denied bigint,
    OUT rate_limited bigint,
    OUT last_activity timestamptz)
RETURNS SETOF record
LANGUAGE C VOLATILE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'payymo_tenant_stats';

COMMENT ON FUNCTION payymo.tenant_stats() IS
'Per-tenant counters from shared memory, of every database (datid); the view payymo.tenant_stats shows the current one; raises 55000 without shared_preload_libraries';

REVOKE EXECUTE ON FUNCTION payymo.tenant_stats() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION payymo.tenant_stats() TO pg_monitor, payymo_admin;

CREATE VIEW payymo.tenant_stats AS
SELECT s.tenant_id, t.slug, s.statements, s.rows, s.total_exec_time,
       s.shared_blks_hit, s.shared_blks_read, s.shared_blks_dirtied,
       s.shared_blks_written, s.temp_blks_read, s.temp_blks_written,
       s.wal_records, s.wal_bytes, s.denied, s.rate_limited, s.last_activity
  FROM payymo.tenant_stats() s
  LEFT JOIN payymo.tenants t ON t.id OPERATOR(pg_catalog.=) s.tenant_id
 WHERE s.datid OPERATOR(pg_catalog.=) (SELECT d.oid FROM pg_catalog.pg_database d
                                        WHERE d.datname OPERATOR(pg_catalog.=) pg_catalog.current_database());

COMMENT ON VIEW payymo.tenant_stats IS
'Per tenant of the current database: top-level statements, rows, total execution time (ms), shared and temporary blocks and WAL of those statements, denied and rate-limited attempts, last activity; pg_monitor, payymo_admin and superusers only';

REVOKE ALL ON payymo.tenant_stats FROM PUBLIC;
GRANT SELECT ON payymo.tenant_stats TO pg_monitor, payymo_admin;

CREATE FUNCTION payymo.tenant_stats_reset(tenant_id bigint DEFAULT NULL)
RETURNS void
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'payymo_tenant_stats_reset';

COMMENT ON FUNCTION payymo.tenant_stats_reset(bigint) IS
'Zeroes the counters in payymo.tenant_stats, of one tenant of the current database or (NULL) all of them; keeps rate-limit buckets; raises 55000 without shared_preload_libraries';

REVOKE EXECUTE ON FUNCTION payymo.tenant_stats_reset(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION payymo.tenant_stats_reset(bigint) TO payymo_admin;

-- Storage per tenant and table, for capacity planning and billing.  It reads
-- every tenant's rows (as the extension's owner, outside row level
-- security; nothing of the table's code runs: a count grouped by the
-- integer tenant column), so it is for administrators.  sample_percent < 100
-- reads that share of each table's pages (TABLESAMPLE SYSTEM): rows are
-- scaled up, and rows_stderr estimates the standard error from the number
-- of sampled pages holding the tenant's rows (k): rows * sqrt((1 - q) / k),
-- q = sample_percent / 100; 0 when every page was read.  bytes is the
-- tenant's share of rows times the table's size with its indexes and TOAST.
CREATE FUNCTION payymo.tenant_storage(sample_percent double precision DEFAULT 100)
RETURNS TABLE (tenant_id bigint, tbl regclass, rows bigint, rows_stderr bigint, bytes bigint)
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t record;
    q double precision := sample_percent OPERATOR(pg_catalog./) 100;
BEGIN
    IF sample_percent IS NULL OR NOT (sample_percent OPERATOR(pg_catalog.>) 0
                                      AND sample_percent OPERATOR(pg_catalog.<=) 100) THEN
        RAISE EXCEPTION 'sample_percent must be greater than 0 and at most 100'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOR t IN SELECT r.relid, r.tenant_column FROM payymo.tenant_tables r
               JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) r.relid
              WHERE c.relkind OPERATOR(pg_catalog.=) 'r'
              ORDER BY r.relid LOOP
        RETURN QUERY EXECUTE pg_catalog.format(
            'SELECT s.tenant::pg_catalog.int8, %1$L::pg_catalog.regclass,
                    pg_catalog.round(s.n OPERATOR(pg_catalog./) $1)::pg_catalog.int8,
                    pg_catalog.round(s.n OPERATOR(pg_catalog./) $1 OPERATOR(pg_catalog.*)
                        pg_catalog.sqrt((1 OPERATOR(pg_catalog.-) $1) OPERATOR(pg_catalog./) s.pages))::pg_catalog.int8,
                    pg_catalog.round(s.n OPERATOR(pg_catalog./) pg_catalog.sum(s.n) OVER ()
                        OPERATOR(pg_catalog.*) pg_catalog.pg_total_relation_size(%1$L))::pg_catalog.int8
               FROM (SELECT %2$I AS tenant, pg_catalog.count(*)::float8 AS n,
                            pg_catalog.count(DISTINCT (ctid::text::point)[0])::float8 AS pages
                       FROM ONLY %1$s %3$s GROUP BY 1) s',
            t.relid, t.tenant_column,
            CASE WHEN q OPERATOR(pg_catalog.<) 1
                 THEN pg_catalog.format('TABLESAMPLE SYSTEM (%s)', sample_percent) ELSE '' END)
        USING q;
    END LOOP;
END
$$;

COMMENT ON FUNCTION payymo.tenant_storage(double precision) IS
'Rows and bytes per tenant and table under tenancy (leaf tables), exact or from a sample of pages with the standard error of the row count; administrators only';

REVOKE EXECUTE ON FUNCTION payymo.tenant_storage(double precision) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION payymo.tenant_storage(double precision) TO payymo_admin;
