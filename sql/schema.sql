-- =========================================================================
-- Schema
-- =========================================================================
--
-- The install script is generated: the Makefile concatenates the parts in
-- sql/ (schema, context, keys, crypto, stats, tenancy, audit, ddl_guard,
-- provisioning, lifecycle, users, jwt, alerts) into payymo--<version>.sql.  Edit the parts, and put every
-- change to the SQL surface into the upgrade script as well.
--
-- Everything is schema-qualified (operators too), so that no search_path can
-- redirect a call made by this script or by the SECURITY DEFINER functions.

\echo Use "CREATE EXTENSION payymo" to load this file. \quit

GRANT USAGE ON SCHEMA payymo TO PUBLIC;

-- The schema must belong to the superuser installing payymo.  A role that
-- created a schema named payymo beforehand would own the extension's schema
-- and could drop every policy with DROP SCHEMA ... CASCADE.
DO $$
BEGIN
    IF (SELECT n.nspowner FROM pg_catalog.pg_namespace n
         WHERE n.nspname OPERATOR(pg_catalog.=) 'payymo')
       OPERATOR(pg_catalog.<>) (SELECT r.oid FROM pg_catalog.pg_roles r
                                 WHERE r.rolname OPERATOR(pg_catalog.=) current_user) THEN
        RAISE EXCEPTION 'schema payymo is not owned by the installing role %', current_user
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = 'Its owner could drop every object of the extension, the policies of tables under tenancy included.',
                  HINT = 'Drop the schema, or ALTER SCHEMA payymo OWNER TO the installing superuser, then install again.';
    END IF;
END
$$;

-- payymo_admin: a NOLOGIN role holding EXECUTE on the administrative
-- functions (tenants, keys, domains, defaults, statistics, key rotation),
-- so that a DBA grants one role.  Created if absent, like pg_monitor in
-- core; it is shared by all databases and stays when the extension is
-- dropped.  A pre-existing role of that name must not be able to log in.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles r
                    WHERE r.rolname OPERATOR(pg_catalog.=) 'payymo_admin') THEN
        CREATE ROLE payymo_admin NOLOGIN;
    ELSIF EXISTS (SELECT FROM pg_catalog.pg_roles r
                   WHERE r.rolname OPERATOR(pg_catalog.=) 'payymo_admin'
                     AND (r.rolcanlogin OR r.rolsuper OR r.rolbypassrls)) THEN
        RAISE EXCEPTION 'role payymo_admin can log in or bypasses row level security'
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'ALTER ROLE payymo_admin NOLOGIN NOSUPERUSER NOBYPASSRLS, or drop it, then install again.';
    END IF;
END
$$;
