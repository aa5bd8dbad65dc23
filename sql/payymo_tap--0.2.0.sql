/* payymo_tap--0.2.0.sql */

\echo Use "CREATE EXTENSION payymo_tap" to load this file. \quit

-- pgTAP assertions for your own tables under payymo, for the isolation
-- checks every application needs: is the table under tenancy, can one
-- tenant see or write another's rows, does it fail closed without a
-- context, can a constraint reveal another tenant's values.  Each is one
-- pgTAP test (it returns ok() with diagnostics), so plan one per call.
--
-- They call pgTAP's ok() and diag() unqualified, as pgTAP's own functions
-- do: pgTAP's schema must be on the search_path, as in any pgTAP test.
-- They are SECURITY INVOKER: isolation_ok and fails_closed_ok switch to the
-- client role you name with SET LOCAL ROLE, which the caller (a superuser in
-- CI) must be allowed to do, and assume_tenant must be callable by the
-- caller.  Every probe runs in a subtransaction that is rolled back.

-- The problems audit() and the DDL guard know for the table, as text.
CREATE FUNCTION payymo_tap._findings(tbl regclass)
RETURNS text[]
LANGUAGE sql STABLE
AS $$
    SELECT COALESCE(pg_catalog.array_agg(a.severity || ': ' || a.object || ': ' || a.problem
                                         ORDER BY a.object, a.problem), '{}')
      FROM payymo.audit() a
     WHERE a.object OPERATOR(pg_catalog.=) tbl::text
        OR a.object OPERATOR(pg_catalog.~~) ('% on ' || tbl::text)
        OR a.object OPERATOR(pg_catalog.~~) ('% of ' || tbl::text)
$$;

-- One pgTAP test: ok when nothing failed, else not ok with the failures as
-- diagnostics.
CREATE FUNCTION payymo_tap._result(failures text[], description text)
RETURNS text
LANGUAGE sql
AS $$
    SELECT ok(pg_catalog.cardinality(failures) OPERATOR(pg_catalog.=) 0, description)
        || CASE WHEN pg_catalog.cardinality(failures) OPERATOR(pg_catalog.=) 0 THEN ''
                ELSE E'\n' || diag(pg_catalog.array_to_string(failures, E'\n')) END
$$;

CREATE FUNCTION payymo_tap.tenancy_ok(tbl regclass, description text DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql
AS $$
DECLARE
    problems text[];
BEGIN
    IF NOT EXISTS (SELECT FROM payymo.tenant_tables t WHERE t.relid OPERATOR(pg_catalog.=) tbl) THEN
        problems := ARRAY[tbl::text || ' is not under tenancy (payymo.enable_tenancy)'];
    ELSE
        problems := payymo_tap._findings(tbl);
    END IF;
    RETURN payymo_tap._result(problems,
        COALESCE(description, tbl::text || ' is under tenancy, intact, and audit() finds nothing on it'));
END
$$;

COMMENT ON FUNCTION payymo_tap.tenancy_ok(regclass, text) IS
'pgTAP: the table is under tenancy, has every piece enable_tenancy gave it, and payymo.audit() reports nothing about it';

CREATE FUNCTION payymo_tap.no_oracle_ok(tbl regclass, description text DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql
AS $$
DECLARE
    problems text[];
BEGIN
    SELECT COALESCE(pg_catalog.array_agg(f ORDER BY f), '{}') INTO problems
      FROM pg_catalog.unnest(payymo_tap._findings(tbl)) f
     WHERE f OPERATOR(pg_catalog.~) '(unique index|exclusion constraint|foreign key)';
    RETURN payymo_tap._result(problems,
        COALESCE(description, tbl::text || ' has no unique key, exclusion constraint or reference that crosses tenants'));
END
$$;

COMMENT ON FUNCTION payymo_tap.no_oracle_ok(regclass, text) IS
'pgTAP: no unique index, exclusion constraint or foreign key of the table can reveal or point at another tenant''s rows';

-- Runs command as client_role under tenant's context (none: NULL) in a
-- subtransaction that is always rolled back; returns the SQLSTATE it
-- raised, or 'rows=N' with the rows it processed.
CREATE FUNCTION payymo_tap._probe(client_role name, tenant bigint, command text)
RETURNS text
LANGUAGE plpgsql
AS $$
DECLARE
    n bigint;
    outcome text;
BEGIN
    BEGIN
        PERFORM payymo.clear_tenant();
        IF tenant IS NOT NULL THEN
            PERFORM payymo.assume_tenant(tenant, true);
        END IF;
        EXECUTE pg_catalog.format('SET LOCAL ROLE %I', client_role);
        EXECUTE command;
        GET DIAGNOSTICS n = ROW_COUNT;
        outcome := 'rows=' || n;
        RAISE SQLSTATE 'P0T01';
    EXCEPTION WHEN SQLSTATE 'P0T01' THEN
        NULL;
    WHEN OTHERS THEN
        outcome := SQLSTATE;
    END;
    RETURN outcome;
END
$$;

CREATE FUNCTION payymo_tap.isolation_ok(tbl regclass, tenant_a bigint, tenant_b bigint,
                                        client_role name, description text DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql
AS $$
DECLARE
    col name;
    b_rows bigint;
    cols text;
    vals text;
    pkey text;
    failures text[] := '{}';
    got text;
    probe record;
BEGIN
    SELECT t.tenant_column INTO col FROM payymo.tenant_tables t WHERE t.relid OPERATOR(pg_catalog.=) tbl;
    IF col IS NULL THEN
        RETURN payymo_tap._result(ARRAY[tbl::text || ' is not under tenancy'],
            COALESCE(description, tbl::text || ': tenant ' || tenant_a || ' cannot read or write tenant '
                                  || tenant_b || '''s rows (as ' || client_role || ')'));
    END IF;
    -- B's rows, counted as the caller (who bypasses row level security when
    -- a superuser); there must be some, or the probes prove nothing.
    EXECUTE pg_catalog.format('SELECT count(*) FROM %s WHERE %I OPERATOR(pg_catalog.=) %s', tbl, col, tenant_b)
       INTO b_rows;
    IF b_rows OPERATOR(pg_catalog.=) 0 THEN
        failures := failures || ('tenant ' || tenant_b || ' has no rows in ' || tbl::text || ' to probe');
    END IF;
    -- A copy of a row with B's tenant id, every other column kept.
    SELECT pg_catalog.string_agg(pg_catalog.quote_ident(a.attname), ', ' ORDER BY a.attnum),
           pg_catalog.string_agg(CASE WHEN a.attname OPERATOR(pg_catalog.=) col THEN tenant_b::text
                                      ELSE pg_catalog.quote_ident(a.attname) END, ', ' ORDER BY a.attnum)
      INTO cols, vals
      FROM pg_catalog.pg_attribute a
     WHERE a.attrelid OPERATOR(pg_catalog.=) tbl AND a.attnum OPERATOR(pg_catalog.>) 0
       AND NOT a.attisdropped AND a.attgenerated OPERATOR(pg_catalog.=) '';
    SELECT pg_catalog.string_agg(pg_catalog.quote_ident(a.attname), ', ') INTO pkey
      FROM pg_catalog.pg_constraint c
      JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) c.conrelid
                                    AND a.attnum OPERATOR(pg_catalog.=) ANY (c.conkey)
     WHERE c.conrelid OPERATOR(pg_catalog.=) tbl AND c.contype OPERATOR(pg_catalog.=) 'p';

    FOR probe IN
        SELECT * FROM (VALUES
            ('read B''s rows', pg_catalog.format(
                'SELECT FROM %s WHERE %I OPERATOR(pg_catalog.=) %s', tbl, col, tenant_b), 'rows=0'),
            ('read any row not A''s', pg_catalog.format(
                'SELECT FROM %s WHERE %I OPERATOR(pg_catalog.<>) %s', tbl, col, tenant_a), 'rows=0'),
            ('update B''s rows', pg_catalog.format(
                'UPDATE %s SET %I = %I WHERE %I OPERATOR(pg_catalog.=) %s', tbl, col, col, col, tenant_b), 'rows=0'),
            ('delete B''s rows', pg_catalog.format(
                'DELETE FROM %s WHERE %I OPERATOR(pg_catalog.=) %s', tbl, col, tenant_b), 'rows=0'),
            ('move A''s rows to B', pg_catalog.format(
                'UPDATE %s SET %I = %s', tbl, col, tenant_b), '42501'),
            ('insert a row for B', pg_catalog.format(
                'INSERT INTO %s (%s) OVERRIDING SYSTEM VALUE SELECT %s FROM %s LIMIT 1', tbl, cols, vals, tbl), '42501'),
            ('upsert a row for B', pg_catalog.format(
                'INSERT INTO %s (%s) OVERRIDING SYSTEM VALUE SELECT %s FROM %s LIMIT 1 ON CONFLICT (%s) DO UPDATE SET %I = excluded.%I',
                tbl, cols, vals, tbl, pkey, col, col), '42501')
        ) AS p(what, command, expected)
         WHERE p.command IS NOT NULL
    LOOP
        got := payymo_tap._probe(client_role, tenant_a, probe.command);
        -- Writing a copy of a row needs one: A's table may be empty.
        IF got OPERATOR(pg_catalog.<>) probe.expected
           AND NOT (probe.expected OPERATOR(pg_catalog.=) '42501' AND got OPERATOR(pg_catalog.=) 'rows=0'
                    AND probe.what OPERATOR(pg_catalog.~~) '%a row for B') THEN
            failures := failures || (probe.what || ' as tenant ' || tenant_a || ': expected '
                                     || probe.expected || ', got ' || got);
        END IF;
    END LOOP;

    RETURN payymo_tap._result(failures,
        COALESCE(description, tbl::text || ': tenant ' || tenant_a || ' cannot read or write tenant '
                              || tenant_b || '''s rows (as ' || client_role || ')'));
END
$$;

COMMENT ON FUNCTION payymo_tap.isolation_ok(regclass, bigint, bigint, name, text) IS
'pgTAP: as client_role under tenant_a''s context, tenant_b''s rows cannot be read, updated or deleted, and no row can be moved to, inserted or upserted for tenant_b';

CREATE FUNCTION payymo_tap.fails_closed_ok(tbl regclass, client_role name, description text DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql
AS $$
DECLARE
    failures text[] := '{}';
    got text;
    probe record;
    n bigint;
    col name;
BEGIN
    SELECT t.tenant_column INTO col FROM payymo.tenant_tables t WHERE t.relid OPERATOR(pg_catalog.=) tbl;
    IF col IS NULL THEN
        failures := failures || (tbl::text || ' is not under tenancy');
        col := 'tenant_id';
    END IF;
    -- Rows to probe: on an empty table a query without a context finds
    -- nothing whether or not it would fail.
    EXECUTE pg_catalog.format('SELECT count(*) FROM %s', tbl) INTO n;
    IF n OPERATOR(pg_catalog.=) 0 THEN
        failures := failures || (tbl::text || ' has no rows to probe');
    END IF;
    FOR probe IN
        SELECT * FROM (VALUES
            ('SELECT', pg_catalog.format('SELECT FROM %s', tbl)),
            ('INSERT', pg_catalog.format('INSERT INTO %s DEFAULT VALUES', tbl)),
            ('UPDATE', pg_catalog.format('UPDATE %s SET %I = %I', tbl, col, col)),
            ('DELETE', pg_catalog.format('DELETE FROM %s', tbl))
        ) AS p(what, command)
    LOOP
        got := payymo_tap._probe(client_role, NULL, probe.command);
        IF got IS DISTINCT FROM '42501' THEN
            failures := failures || (probe.what || ' without a tenant context: expected 42501, got '
                                     || COALESCE(got, 'nothing'));
        END IF;
    END LOOP;
    RETURN payymo_tap._result(failures,
        COALESCE(description, tbl::text || ' fails closed without a tenant context (as ' || client_role || ')'));
END
$$;

COMMENT ON FUNCTION payymo_tap.fails_closed_ok(regclass, name, text) IS
'pgTAP: as client_role with no tenant context, SELECT, INSERT, UPDATE and DELETE on the table raise 42501 instead of touching rows';
