-- Fixtures for the pgTAP suites, run once by the superuser in payymo_test.
--
-- The suites connect as payymo_client: a LOGIN role that is not superuser,
-- owns nothing, has no BYPASSRLS and holds only ordinary grants -- the
-- "client" of the threat model.  Steps that need an administrator go through
-- payymo_test.admin(), so every other statement runs with client privileges.
\set ON_ERROR_STOP 1
SET client_min_messages = warning;

CREATE EXTENSION pgtap;
CREATE EXTENSION payymo;

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'payymo_client') THEN
        CREATE ROLE payymo_client LOGIN NOSUPERUSER NOBYPASSRLS;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'payymo_job') THEN
        CREATE ROLE payymo_job LOGIN NOSUPERUSER NOBYPASSRLS;
    END IF;
END
$$;
GRANT EXECUTE ON FUNCTION payymo.assume_tenant(bigint, boolean) TO payymo_job;

CREATE SCHEMA payymo_test;
GRANT USAGE ON SCHEMA payymo_test TO payymo_client, payymo_job;

-- Tenants alpha and bravo, with their keys, known to the tests.
CREATE TABLE payymo_test.keys (
    slug text PRIMARY KEY,
    tenant_id bigint NOT NULL,
    api_key text NOT NULL
);
INSERT INTO payymo_test.keys
SELECT s, t.tenant_id, t.api_key
  FROM unnest(ARRAY['alpha', 'bravo']) AS s,
       LATERAL payymo.create_tenant(s, initcap(s) || ' Ltd') AS t;
GRANT SELECT ON payymo_test.keys TO payymo_client, payymo_job;

CREATE FUNCTION payymo_test.key(slug text) RETURNS text
LANGUAGE sql STABLE STRICT
AS $$ SELECT api_key FROM payymo_test.keys k WHERE k.slug = key.slug $$;

CREATE FUNCTION payymo_test.tenant(slug text) RETURNS bigint
LANGUAGE sql STABLE STRICT
AS $$ SELECT tenant_id FROM payymo_test.keys k WHERE k.slug = tenant.slug $$;

-- Runs one administrative statement as the superuser (test harness only).
CREATE FUNCTION payymo_test.admin(command text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public
AS $$ BEGIN EXECUTE command; END $$;

-- Same, returning a single value.
CREATE FUNCTION payymo_test.admin_value(query text) RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public
AS $$ DECLARE v text; BEGIN EXECUTE query INTO v; RETURN v; END $$;

GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA payymo_test TO payymo_client, payymo_job;

-- EXPLAIN output as rows, for plan-shape assertions.
CREATE FUNCTION payymo_test.explain(query text) RETURNS SETOF text
LANGUAGE plpgsql
AS $$ DECLARE l text; BEGIN
    FOR l IN EXECUTE 'EXPLAIN (COSTS OFF) ' || query LOOP RETURN NEXT l; END LOOP;
END $$;
GRANT EXECUTE ON FUNCTION payymo_test.explain(text) TO payymo_client, payymo_job;
