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

-- Storage per tenant and table, for capacity planning and billing
-- (src/registry.c): rows and bytes, counted or from a sample of pages with
-- the standard error of each count.  It reads every tenant's rows, each
-- table as its owner (exempt from FORCE, in a security-restricted
-- operation), so it is for administrators.
CREATE FUNCTION payymo.tenant_storage(sample_percent double precision DEFAULT 100)
RETURNS TABLE (tenant_id bigint, tbl regclass, rows bigint, rows_stderr bigint, bytes bigint)
LANGUAGE C VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'payymo_tenant_storage';

COMMENT ON FUNCTION payymo.tenant_storage(double precision) IS
'Rows and bytes per tenant and table under tenancy (leaf tables), exact or from a sample of pages with the standard error of the row count; administrators only';

REVOKE EXECUTE ON FUNCTION payymo.tenant_storage(double precision) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION payymo.tenant_storage(double precision) TO payymo_admin;
