-- =========================================================================
-- Schema
-- =========================================================================
--
-- The install script is generated: the Makefile concatenates the parts in
-- sql/ (schema, context, keys, crypto, stats, tenancy, audit, ddl_guard,
-- provisioning) into payymo--<version>.sql.  Edit the parts, and put every
-- change to the SQL surface into the upgrade script as well.
--
-- Everything is schema-qualified (operators too), so that no search_path can
-- redirect a call made by this script or by the SECURITY DEFINER functions.

\echo Use "CREATE EXTENSION payymo" to load this file. \quit

GRANT USAGE ON SCHEMA payymo TO PUBLIC;
