-- =========================================================================
-- Context
-- =========================================================================

CREATE FUNCTION payymo.current_tenant()
RETURNS bigint
LANGUAGE C STABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'payymo_current_tenant';

COMMENT ON FUNCTION payymo.current_tenant() IS
'The current tenant; raises 42501 when no tenant context is set';

CREATE FUNCTION payymo.clear_tenant()
RETURNS void
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'payymo_clear_tenant';

COMMENT ON FUNCTION payymo.clear_tenant() IS
'Drops the tenant context';
