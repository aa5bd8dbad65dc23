-- =========================================================================
-- Tables under tenancy
-- =========================================================================
--
-- payymo.enable_tenancy() puts a table under tenancy: tenant column (NOT
-- NULL, DEFAULT payymo.current_tenant(), FK to payymo.tenants), ENABLE and
-- FORCE row level security, the policy payymo_tenant_isolation, a unique key
-- (tenant column, primary key), an index led by the tenant column, the row
-- trigger payymo_stamp_tenant and the TRUNCATE guard payymo_refuse_truncate.
-- The policy compares with (SELECT payymo.current_tenant()): an InitPlan,
-- evaluated once per query, that the planner uses as an index condition.
--
-- payymo.tenant_tables registers the tables (and the partitions of a
-- registered partitioned table).  The event triggers at the end of this
-- section refuse DDL that leaves a registered table weaker; enable_tenancy
-- and disable_tenancy unregister a table while they work on it, which is
-- how they get past the guard.

CREATE TABLE payymo.tenant_tables (
    relid regclass PRIMARY KEY,
    tenant_column name NOT NULL,
    root regclass,
    policy_qual text,
    enabled_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);

COMMENT ON TABLE payymo.tenant_tables IS
'Tables under tenancy: the table, its tenant column, the partitioned table it is a partition of (NULL for the table enable_tenancy was called on), and the policy expression the DDL guard expects (NULL only while enable_tenancy works on the table)';

GRANT SELECT ON payymo.tenant_tables TO PUBLIC;

-- pg_dump keeps the registrations of user tables; CREATE EXTENSION makes
-- those of payymo's own tables again on restore.
SELECT pg_catalog.pg_extension_config_dump('payymo.tenant_tables',
    $$WHERE (SELECT c.relnamespace FROM pg_catalog.pg_class c
              WHERE c.oid OPERATOR(pg_catalog.=) relid)
            OPERATOR(pg_catalog.<>) 'payymo'::pg_catalog.regnamespace$$);

CREATE FUNCTION payymo.stamp_tenant()
RETURNS trigger
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'payymo_stamp_tenant';

COMMENT ON FUNCTION payymo.stamp_tenant() IS
'Row trigger of tables under tenancy (argument: the tenant column): stamps the current tenant on INSERT, refuses another tenant''s id and any change of the column with 42501';

CREATE FUNCTION payymo.refuse_truncate()
RETURNS trigger
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'payymo_refuse_truncate';

COMMENT ON FUNCTION payymo.refuse_truncate() IS
'Statement trigger of tables under tenancy: refuses TRUNCATE, which ignores row level security, with 42501';

-- Tickets (src/tenancy.c): the public functions are SECURITY INVOKER
-- wrappers that check, as the real caller, that it may do the work -- own
-- the tables to put them under tenancy, be a superuser or a member of
-- payymo_admin to take one out (weakens) -- then call a SECURITY DEFINER
-- worker that consumes the ticket.
CREATE FUNCTION payymo._issue_ticket(tbl regclass, tbl2 regclass,
                                     weakens boolean DEFAULT false)
RETURNS void
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'payymo_issue_ticket';

COMMENT ON FUNCTION payymo._issue_ticket(regclass, regclass, boolean) IS
'Internal: raises 42501 unless current_user may do the work (owns the tables and their partitions; to weaken: superuser or payymo_admin member), then records a one-call ticket for them';

CREATE FUNCTION payymo._take_ticket(tbl regclass, tbl2 regclass,
                                    weakens boolean DEFAULT false)
RETURNS void
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'payymo_take_ticket';

COMMENT ON FUNCTION payymo._take_ticket(regclass, regclass, boolean) IS
'Internal: consumes the ticket for the tables and that kind of work, raising 42501 when there is none';

-- The workers run every statement on the caller's table through this, so
-- that the table's triggers, CHECK constraints, index expressions and rules
-- run as its owner, not as the workers' superuser owner.  Only payymo's own
-- SECURITY DEFINER functions may call it: it runs any SQL as a table's owner.
CREATE FUNCTION payymo._as_table_owner(tbl regclass, command text,
                                       bypass_force_rls boolean DEFAULT false)
RETURNS bigint
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'payymo_as_table_owner';

COMMENT ON FUNCTION payymo._as_table_owner(regclass, text, boolean) IS
'Internal: runs a statement as the owner of the table, in a security-restricted operation (optionally exempt from FORCE ROW LEVEL SECURITY), and returns the rows it processed; not granted to PUBLIC';

REVOKE EXECUTE ON FUNCTION payymo._as_table_owner(regclass, text, boolean) FROM PUBLIC;

-- What an intact table under tenancy is, in one place: the DDL guard
-- refuses a statement after which a registered table has any of these
-- problems, and payymo.audit() reports each of them as critical.  One row
-- per problem (object, problem, fix); none when the table is intact or not
-- registered (or still being set up: policy_qual NULL).
--
-- The row trigger must be BEFORE INSERT OR UPDATE FOR EACH ROW, on all
-- columns, without WHEN, with the tenant column as its argument (tgtype
-- 23 = ROW 1 + BEFORE 2 + INSERT 4 + UPDATE 16); the TRUNCATE guard BEFORE
-- TRUNCATE FOR EACH STATEMENT (34 = BEFORE 2 + TRUNCATE 32).  Any other
-- permissive policy is OR-ed with payymo's and widens access.
CREATE FUNCTION payymo._tenancy_problems(tbl regclass)
RETURNS TABLE (object text, problem text, fix text)
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH t AS (
        SELECT t.relid, t.relid::text AS name, t.tenant_column, t.policy_qual,
               c.relrowsecurity, c.relforcerowsecurity, a.attnum, a.attnotnull,
               pg_catalog.format('SELECT payymo.enable_tenancy(%L, %L);',
                                 COALESCE(t.root, t.relid)::text, t.tenant_column) AS repair
          FROM payymo.tenant_tables t
          JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) t.relid
          LEFT JOIN pg_catalog.pg_attribute a
            ON a.attrelid OPERATOR(pg_catalog.=) c.oid
           AND a.attname OPERATOR(pg_catalog.=) t.tenant_column
           AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped
         WHERE t.relid OPERATOR(pg_catalog.=) tbl AND t.policy_qual IS NOT NULL
    )
    SELECT t.name, 'row level security is not enabled', t.repair
      FROM t WHERE NOT t.relrowsecurity
    UNION ALL
    SELECT t.name, 'row level security is not forced: the owner bypasses it',
           pg_catalog.format('ALTER TABLE %s FORCE ROW LEVEL SECURITY;', t.name)
      FROM t WHERE NOT t.relforcerowsecurity
    UNION ALL
    SELECT t.name, pg_catalog.format('tenant column %I is missing', t.tenant_column), t.repair
      FROM t WHERE t.attnum IS NULL
    UNION ALL
    SELECT t.name, pg_catalog.format('tenant column %I allows NULL', t.tenant_column),
           pg_catalog.format('ALTER TABLE %s ALTER COLUMN %I SET NOT NULL;', t.name, t.tenant_column)
      FROM t WHERE NOT t.attnotnull
    UNION ALL
    SELECT t.name, 'policy payymo_tenant_isolation is missing or was changed', t.repair
      FROM t
     WHERE NOT EXISTS (
            SELECT FROM pg_catalog.pg_policy p
             WHERE p.polrelid OPERATOR(pg_catalog.=) t.relid
               AND p.polname OPERATOR(pg_catalog.=) 'payymo_tenant_isolation'
               AND p.polpermissive AND p.polcmd OPERATOR(pg_catalog.=) '*'
               AND p.polroles OPERATOR(pg_catalog.=) '{0}'::oid[]
               AND pg_catalog.pg_get_expr(p.polqual, p.polrelid) OPERATOR(pg_catalog.=) t.policy_qual
               AND pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid) OPERATOR(pg_catalog.=) t.policy_qual)
    UNION ALL
    SELECT pg_catalog.format('policy %I on %s', p.polname, t.name),
           CASE WHEN p.polqual IS NULL
                  OR pg_catalog.pg_get_expr(p.polqual, p.polrelid) OPERATOR(pg_catalog.=) 'true'
                THEN 'always-true permissive policy: every tenant''s rows are visible'
                ELSE 'permissive policy OR-ed with payymo_tenant_isolation widens access' END,
           pg_catalog.format('DROP POLICY %I ON %s;  -- or create it again AS RESTRICTIVE', p.polname, t.name)
      FROM t JOIN pg_catalog.pg_policy p ON p.polrelid OPERATOR(pg_catalog.=) t.relid
     WHERE p.polname OPERATOR(pg_catalog.<>) 'payymo_tenant_isolation' AND p.polpermissive
    UNION ALL
    SELECT t.name, pg_catalog.format('trigger %s is missing, disabled or was changed', g.name), t.repair
      FROM t
     CROSS JOIN (VALUES ('payymo_stamp_tenant', 'payymo.stamp_tenant()', 23::int2, true),
                        ('payymo_refuse_truncate', 'payymo.refuse_truncate()', 34::int2, false))
             AS g(name, func, tgtype, with_column)
     WHERE NOT EXISTS (
            SELECT FROM pg_catalog.pg_trigger x
             WHERE x.tgrelid OPERATOR(pg_catalog.=) t.relid
               AND x.tgname OPERATOR(pg_catalog.=) g.name
               AND x.tgfoid OPERATOR(pg_catalog.=) g.func::pg_catalog.regprocedure
               AND x.tgtype OPERATOR(pg_catalog.=) g.tgtype
               AND x.tgenabled OPERATOR(pg_catalog.=) ANY ('{O,A}'::"char"[])
               AND x.tgqual IS NULL
               AND pg_catalog.cardinality(x.tgattr::int2[]) OPERATOR(pg_catalog.=) 0
               AND pg_catalog.encode(x.tgargs, 'escape') OPERATOR(pg_catalog.=)
                   CASE WHEN g.with_column
                        THEN t.tenant_column::text OPERATOR(pg_catalog.||) '\000' ELSE '' END)
$$;

COMMENT ON FUNCTION payymo._tenancy_problems(regclass) IS
'Internal: what weakens a registered table under tenancy, one row per problem with its fix; no rows when it is intact (the DDL guard and audit() both use it)';

-- RLS, FORCE, the policy, the triggers and the registration of one relation
-- (the table enable_tenancy was called on, or one of its partitions).  The
-- caller has checked ownership and unregistered the relation.
CREATE FUNCTION payymo._protect_relation(tbl regclass, tenant_column name, root regclass)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
SET client_min_messages = warning
AS $$
DECLARE
    expr text := pg_catalog.format(
        '%I OPERATOR(pg_catalog.=) (SELECT payymo.current_tenant())', tenant_column);
    pol record;
    qual text;
BEGIN
    IF EXISTS (SELECT FROM pg_catalog.pg_class c
                WHERE c.oid OPERATOR(pg_catalog.=) tbl
                  AND c.relkind OPERATOR(pg_catalog.<>) ALL ('{r,p}'::"char"[])) THEN
        RAISE EXCEPTION 'partition % is not a table', tbl
            USING ERRCODE = 'wrong_object_type',
                  DETAIL = 'Row level security cannot protect foreign tables.';
    END IF;
    -- Registered as pending (policy_qual NULL): the guard leaves it alone and
    -- the partition coverage does not recurse into it.
    INSERT INTO payymo.tenant_tables AS t (relid, tenant_column, root, policy_qual)
    VALUES (tbl, tenant_column, root, NULL)
    ON CONFLICT (relid) DO UPDATE
       SET tenant_column = excluded.tenant_column, root = excluded.root,
           policy_qual = NULL;

    PERFORM payymo._as_table_owner(tbl, pg_catalog.format(
        'ALTER TABLE %s ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY', tbl));

    SELECT p.polpermissive, p.polcmd INTO pol
      FROM pg_catalog.pg_policy p
     WHERE p.polrelid OPERATOR(pg_catalog.=) tbl
       AND p.polname OPERATOR(pg_catalog.=) 'payymo_tenant_isolation';
    IF FOUND AND (NOT pol.polpermissive OR pol.polcmd OPERATOR(pg_catalog.<>) '*') THEN
        PERFORM payymo._as_table_owner(tbl, pg_catalog.format(
            'DROP POLICY payymo_tenant_isolation ON %s', tbl));
    END IF;
    IF FOUND AND pol.polpermissive AND pol.polcmd OPERATOR(pg_catalog.=) '*' THEN
        PERFORM payymo._as_table_owner(tbl, pg_catalog.format(
            'ALTER POLICY payymo_tenant_isolation ON %s TO PUBLIC USING (%s) WITH CHECK (%s)',
            tbl, expr, expr));
    ELSE
        PERFORM payymo._as_table_owner(tbl, pg_catalog.format(
            'CREATE POLICY payymo_tenant_isolation ON %s AS PERMISSIVE FOR ALL TO PUBLIC'
            ' USING (%s) WITH CHECK (%s)', tbl, expr, expr));
    END IF;
    SELECT pg_catalog.pg_get_expr(p.polqual, p.polrelid) INTO qual
      FROM pg_catalog.pg_policy p
     WHERE p.polrelid OPERATOR(pg_catalog.=) tbl
       AND p.polname OPERATOR(pg_catalog.=) 'payymo_tenant_isolation';

    IF root IS NULL THEN
        -- On a partitioned table this also creates the partitions' clones.
        PERFORM payymo._as_table_owner(tbl, pg_catalog.format(
            'DROP TRIGGER IF EXISTS payymo_stamp_tenant ON %s', tbl));
        PERFORM payymo._as_table_owner(tbl, pg_catalog.format(
            'CREATE TRIGGER payymo_stamp_tenant BEFORE INSERT OR UPDATE ON %s'
            ' FOR EACH ROW EXECUTE FUNCTION payymo.stamp_tenant(%L)', tbl, tenant_column));
    ELSIF EXISTS (SELECT FROM pg_catalog.pg_trigger g
                   WHERE g.tgrelid OPERATOR(pg_catalog.=) tbl
                     AND g.tgname OPERATOR(pg_catalog.=) 'payymo_stamp_tenant') THEN
        PERFORM payymo._as_table_owner(tbl, pg_catalog.format(
            'ALTER TABLE %s ENABLE TRIGGER payymo_stamp_tenant', tbl));
    ELSE
        PERFORM payymo._as_table_owner(tbl, pg_catalog.format(
            'CREATE TRIGGER payymo_stamp_tenant BEFORE INSERT OR UPDATE ON %s'
            ' FOR EACH ROW EXECUTE FUNCTION payymo.stamp_tenant(%L)', tbl, tenant_column));
    END IF;
    -- Statement triggers are not cloned to partitions: each gets its own.
    PERFORM payymo._as_table_owner(tbl, pg_catalog.format(
        'DROP TRIGGER IF EXISTS payymo_refuse_truncate ON %s', tbl));
    PERFORM payymo._as_table_owner(tbl, pg_catalog.format(
        'CREATE TRIGGER payymo_refuse_truncate BEFORE TRUNCATE ON %s'
        ' FOR EACH STATEMENT EXECUTE FUNCTION payymo.refuse_truncate()', tbl));

    UPDATE payymo.tenant_tables t SET policy_qual = qual
     WHERE t.relid OPERATOR(pg_catalog.=) tbl;
END
$$;

COMMENT ON FUNCTION payymo._protect_relation(regclass, name, regclass) IS
'Internal: row level security, policy, triggers and registration of one table or partition';

REVOKE EXECUTE ON FUNCTION payymo._protect_relation(regclass, name, regclass) FROM PUBLIC;

-- Protects the partitions of a registered partitioned table that are not
-- registered yet (at enable_tenancy, and for CREATE TABLE ... PARTITION OF
-- and ATTACH PARTITION through the event trigger below).
CREATE FUNCTION payymo._cover_partitions(root regclass)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    col name;
    part regclass;
BEGIN
    SELECT t.tenant_column INTO col FROM payymo.tenant_tables t
     WHERE t.relid OPERATOR(pg_catalog.=) _cover_partitions.root AND t.root IS NULL
       AND t.policy_qual IS NOT NULL;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    FOR part IN
        SELECT pt.relid FROM pg_catalog.pg_partition_tree(root) pt
         WHERE pt.relid OPERATOR(pg_catalog.<>) root
           AND NOT EXISTS (SELECT FROM payymo.tenant_tables t
                            WHERE t.relid OPERATOR(pg_catalog.=) pt.relid)
         ORDER BY pt.level
    LOOP
        PERFORM payymo._protect_relation(part, col, root);
    END LOOP;
END
$$;

COMMENT ON FUNCTION payymo._cover_partitions(regclass) IS
'Internal: puts the unregistered partitions of a registered partitioned table under tenancy';

REVOKE EXECUTE ON FUNCTION payymo._cover_partitions(regclass) FROM PUBLIC;

CREATE FUNCTION payymo._enable_tenancy(tbl regclass, tenant_column name)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    rel record;
    att record;
    pk_cols int2[];
    part regclass;
    pol record;
    orphan record;
BEGIN
    -- The ticket first: an error below must not leave it unconsumed.
    PERFORM payymo._take_ticket(tbl, NULL);
    IF tbl IS NULL OR tenant_column IS NULL THEN
        RAISE EXCEPTION 'tbl and tenant_column must not be null'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT c.relname, c.relkind, c.relispartition, c.relpersistence INTO rel
      FROM pg_catalog.pg_class c WHERE c.oid OPERATOR(pg_catalog.=) tbl;
    IF rel.relpersistence OPERATOR(pg_catalog.=) 't' THEN
        RAISE EXCEPTION '% is a temporary table', tbl
            USING ERRCODE = 'feature_not_supported',
                  DETAIL = 'Tables under tenancy are registered for every session; a temporary table belongs to one.';
    END IF;
    IF rel.relkind OPERATOR(pg_catalog.<>) ALL ('{r,p}'::"char"[]) THEN
        RAISE EXCEPTION '% is not a table', tbl
            USING ERRCODE = 'wrong_object_type',
                  DETAIL = 'Only ordinary and partitioned tables can be put under tenancy.';
    END IF;
    IF rel.relispartition THEN
        RAISE EXCEPTION '% is a partition', tbl
            USING ERRCODE = 'wrong_object_type',
                  HINT = pg_catalog.format('Call payymo.enable_tenancy() on the partitioned table %s; it covers every partition.',
                                           pg_catalog.pg_partition_root(tbl));
    END IF;
    EXECUTE pg_catalog.format('LOCK TABLE %s IN ACCESS EXCLUSIVE MODE', tbl);

    SELECT con.conkey INTO pk_cols FROM pg_catalog.pg_constraint con
     WHERE con.conrelid OPERATOR(pg_catalog.=) tbl
       AND con.contype OPERATOR(pg_catalog.=) 'p';
    IF pk_cols IS NULL THEN
        RAISE EXCEPTION 'table % has no primary key', tbl
            USING ERRCODE = 'invalid_table_definition',
                  DETAIL = 'References within a tenant (payymo.add_tenant_reference) point to the tenant column and the primary key.',
                  HINT = 'Add a primary key, then call payymo.enable_tenancy() again.';
    END IF;

    SELECT a.attnum, a.atttypid, a.attnotnull, a.attgenerated, a.attidentity INTO att
      FROM pg_catalog.pg_attribute a
     WHERE a.attrelid OPERATOR(pg_catalog.=) tbl
       AND a.attname OPERATOR(pg_catalog.=) tenant_column
       AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped;
    IF FOUND AND att.atttypid OPERATOR(pg_catalog.<>) ALL ('{int4,int8}'::regtype[]) THEN
        RAISE EXCEPTION 'column % of table % must be integer or bigint', tenant_column, tbl
            USING ERRCODE = 'datatype_mismatch',
                  DETAIL = pg_catalog.format('Its type is %s; tenant ids are bigint.', att.atttypid::regtype);
    END IF;
    IF FOUND AND (att.attgenerated OPERATOR(pg_catalog.<>) '' OR att.attidentity OPERATOR(pg_catalog.<>) '') THEN
        RAISE EXCEPTION 'column % of table % must not be generated or an identity column', tenant_column, tbl
            USING ERRCODE = 'invalid_table_definition';
    END IF;
    -- Other permissive policies are OR-ed with payymo's and would widen it.
    SELECT p.polname, p.polrelid::regclass AS rel INTO pol
      FROM pg_catalog.pg_policy p
     WHERE p.polrelid OPERATOR(pg_catalog.=) ANY (
               SELECT pt.relid FROM pg_catalog.pg_partition_tree(tbl) pt
               UNION SELECT tbl)
       AND p.polname OPERATOR(pg_catalog.<>) 'payymo_tenant_isolation' AND p.polpermissive
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'table % has the permissive policy %', pol.rel, pol.polname
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = 'Permissive policies are OR-ed with payymo_tenant_isolation, so it would let rows of other tenants through.',
                  HINT = 'Drop it, or create it again AS RESTRICTIVE, then call payymo.enable_tenancy() again.';
    END IF;

    -- Unregister while working, so that the DDL guard lets the repairs through.
    DELETE FROM payymo.tenant_tables t
     WHERE t.relid OPERATOR(pg_catalog.=) tbl OR t.root OPERATOR(pg_catalog.=) tbl;

    IF att.attnum IS NULL THEN
        -- Existing rows get the current tenant.
        IF pg_catalog.current_setting('payymo.tenant_id') OPERATOR(pg_catalog.=) ''
           AND payymo._as_table_owner(tbl, pg_catalog.format('SELECT FROM %s LIMIT 1', tbl), true)
               OPERATOR(pg_catalog.>) 0 THEN
            RAISE EXCEPTION 'table % has rows, and no tenant context is set to give them', tbl
                USING ERRCODE = 'object_not_in_prerequisite_state',
                      DETAIL = pg_catalog.format('The new column %I gets the current tenant in every existing row.', tenant_column),
                      HINT = 'In the same transaction, call payymo.assume_tenant(<tenant id>) first (as a role granted it), or add and fill the tenant column yourself.';
        END IF;
        PERFORM payymo._as_table_owner(tbl, pg_catalog.format(
            'ALTER TABLE %s ADD COLUMN %I bigint', tbl, tenant_column));
        PERFORM payymo._as_table_owner(tbl, pg_catalog.format(
            'ALTER TABLE %s ALTER COLUMN %I SET DEFAULT payymo.current_tenant()',
            tbl, tenant_column));
        -- What the row trigger checks for every write: the tenant exists
        -- (a session context can outlive drop_tenant), locked against it.
        IF pg_catalog.current_setting('payymo.tenant_id') OPERATOR(pg_catalog.<>) '' THEN
            PERFORM payymo._check_tenant_for_write(payymo.current_tenant(), tbl);
        END IF;
        PERFORM payymo._as_table_owner(tbl, pg_catalog.format(
            'UPDATE %s SET %I = payymo.current_tenant()', tbl, tenant_column));
        PERFORM payymo._as_table_owner(tbl, pg_catalog.format(
            'ALTER TABLE %s ALTER COLUMN %I SET NOT NULL', tbl, tenant_column));
        SELECT a.attnum INTO att FROM pg_catalog.pg_attribute a
         WHERE a.attrelid OPERATOR(pg_catalog.=) tbl
           AND a.attname OPERATOR(pg_catalog.=) tenant_column;
    ELSE
        PERFORM payymo._as_table_owner(tbl, pg_catalog.format(
            'ALTER TABLE %s ALTER COLUMN %I SET DEFAULT payymo.current_tenant()',
            tbl, tenant_column));
        IF NOT att.attnotnull THEN
            PERFORM payymo._as_table_owner(tbl, pg_catalog.format(
                'ALTER TABLE %s ALTER COLUMN %I SET NOT NULL', tbl, tenant_column));
        END IF;
    END IF;

    -- No foreign key to payymo.tenants and no unique key of its own: the
    -- row trigger stamps only the verified context's tenant, and locks the
    -- tenant against drop_tenant once per transaction (src/registry.c);
    -- add_tenant_reference adds the unique key (tenant column, primary key)
    -- to a table when a reference first points to it.  What remains is an
    -- index led by the tenant column, for the policy.
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_index i
                    WHERE i.indrelid OPERATOR(pg_catalog.=) tbl
                      AND i.indkey[0] OPERATOR(pg_catalog.=) att.attnum
                      AND i.indpred IS NULL) THEN
        PERFORM payymo._as_table_owner(tbl, pg_catalog.format(
            'CREATE INDEX ON %s (%I)', tbl, tenant_column));
    END IF;

    PERFORM payymo._protect_relation(tbl, tenant_column, NULL);
    PERFORM payymo._cover_partitions(tbl);

    -- Rows already there must belong to tenants that exist: a tenant
    -- created later with such an id would get them.
    SELECT r.relid, o.tenant_id INTO orphan
      FROM payymo.tenant_tables r,
           LATERAL payymo._orphan_tenants(r.relid, r.tenant_column) o(tenant_id)
     WHERE r.relid OPERATOR(pg_catalog.=) tbl OR r.root OPERATOR(pg_catalog.=) tbl
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'table % has rows of tenant %, which does not exist', orphan.relid, orphan.tenant_id
            USING ERRCODE = 'foreign_key_violation',
                  HINT = 'Create the tenant first (payymo.create_tenant(..., tenant_id => ...)), or delete those rows.';
    END IF;
END
$$;

COMMENT ON FUNCTION payymo._enable_tenancy(regclass, name) IS
'Internal: the work of payymo.enable_tenancy(), which must have issued a ticket';

CREATE FUNCTION payymo.enable_tenancy(tbl regclass, tenant_column name DEFAULT 'tenant_id')
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM payymo._issue_ticket(tbl, NULL);
    PERFORM payymo._enable_tenancy(tbl, tenant_column);
END
$$;

COMMENT ON FUNCTION payymo.enable_tenancy(regclass, name) IS
'Puts a table under tenancy (tenant column, FORCEd row level security, policy, index led by the tenant column, triggers, registration); idempotent; the caller must own the table';

CREATE FUNCTION payymo._disable_tenancy(tbl regclass)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET client_min_messages = warning
AS $$
DECLARE
    reg record;
    part regclass;
BEGIN
    -- The ticket first: an error below must not leave it unconsumed.
    PERFORM payymo._take_ticket(tbl, NULL, true);
    IF tbl IS NULL THEN
        RAISE EXCEPTION 'tbl must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT t.tenant_column, t.root INTO reg FROM payymo.tenant_tables t
     WHERE t.relid OPERATOR(pg_catalog.=) tbl;
    IF NOT FOUND THEN
        RAISE NOTICE 'table % is not under tenancy, skipping', tbl;
        RETURN;
    END IF;
    IF reg.root IS NOT NULL THEN
        RAISE EXCEPTION '% is a partition', tbl
            USING ERRCODE = 'wrong_object_type',
                  HINT = pg_catalog.format('Call payymo.disable_tenancy() on %s.', reg.root);
    END IF;

    -- Unregistering first is what lets the statements below past the guard.
    DELETE FROM payymo.tenant_tables t
     WHERE t.relid OPERATOR(pg_catalog.=) tbl OR t.root OPERATOR(pg_catalog.=) tbl;

    PERFORM payymo._as_table_owner(tbl, pg_catalog.format(
        'DROP TRIGGER IF EXISTS payymo_stamp_tenant ON %s', tbl));
    FOR part IN SELECT tbl
                UNION
                SELECT pt.relid FROM pg_catalog.pg_partition_tree(tbl) pt
    LOOP
        PERFORM payymo._as_table_owner(part, pg_catalog.format(
            'DROP TRIGGER IF EXISTS payymo_refuse_truncate ON %s', part));
        PERFORM payymo._as_table_owner(part, pg_catalog.format(
            'DROP POLICY IF EXISTS payymo_tenant_isolation ON %s', part));
        PERFORM payymo._as_table_owner(part, pg_catalog.format(
            'ALTER TABLE %s NO FORCE ROW LEVEL SECURITY, DISABLE ROW LEVEL SECURITY', part));
    END LOOP;
    IF EXISTS (SELECT FROM pg_catalog.pg_attrdef d
                 JOIN pg_catalog.pg_attribute a
                   ON a.attrelid OPERATOR(pg_catalog.=) d.adrelid
                  AND a.attnum OPERATOR(pg_catalog.=) d.adnum
                WHERE d.adrelid OPERATOR(pg_catalog.=) tbl
                  AND a.attname OPERATOR(pg_catalog.=) reg.tenant_column
                  AND pg_catalog.pg_get_expr(d.adbin, d.adrelid)
                      OPERATOR(pg_catalog.~) 'payymo\.current_tenant\(\)') THEN
        PERFORM payymo._as_table_owner(tbl, pg_catalog.format(
            'ALTER TABLE %s ALTER COLUMN %I DROP DEFAULT', tbl, reg.tenant_column));
    END IF;
END
$$;

COMMENT ON FUNCTION payymo._disable_tenancy(regclass) IS
'Internal: the work of payymo.disable_tenancy(), which must have issued a ticket';

CREATE FUNCTION payymo.disable_tenancy(tbl regclass)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM payymo._issue_ticket(tbl, NULL, true);
    PERFORM payymo._disable_tenancy(tbl);
END
$$;

COMMENT ON FUNCTION payymo.disable_tenancy(regclass) IS
'Takes a table out of tenancy: drops the policy, triggers and default and disables row level security; the column, its keys and the data stay; for superusers and members of payymo_admin only';

-- SECURITY DEFINER because validating the new key reads both tables, which
-- row level security (FORCEd, with no tenant context) would hide from their
-- owner; the caller must own both tables.  ADD ... NOT VALID followed by
-- VALIDATE as the owner would not help: the owner's scan is filtered too.
CREATE FUNCTION payymo._add_tenant_reference(child regclass, child_column name, parent regclass)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    child_tenant name;
    parent_tenant name;
    child_attnum int2;
    child_tenant_attnum int2;
    parent_tenant_attnum int2;
    parent_key int2[];
    parent_key_name name;
BEGIN
    -- The ticket first: an error below must not leave it unconsumed.
    PERFORM payymo._take_ticket(child, parent);
    IF child IS NULL OR child_column IS NULL OR parent IS NULL THEN
        RAISE EXCEPTION 'child, child_column and parent must not be null'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT t.tenant_column INTO child_tenant FROM payymo.tenant_tables t
     WHERE t.relid OPERATOR(pg_catalog.=) child;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'table % is not under tenancy', child
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = pg_catalog.format('Call payymo.enable_tenancy(%L) first.', child::text);
    END IF;
    SELECT t.tenant_column INTO parent_tenant FROM payymo.tenant_tables t
     WHERE t.relid OPERATOR(pg_catalog.=) parent;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'table % is not under tenancy', parent
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = pg_catalog.format('Call payymo.enable_tenancy(%L) first.', parent::text);
    END IF;

    SELECT a.attnum INTO child_attnum FROM pg_catalog.pg_attribute a
     WHERE a.attrelid OPERATOR(pg_catalog.=) child
       AND a.attname OPERATOR(pg_catalog.=) child_column
       AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'column % of table % does not exist', child_column, child
            USING ERRCODE = 'undefined_column';
    END IF;
    SELECT a.attnum INTO child_tenant_attnum FROM pg_catalog.pg_attribute a
     WHERE a.attrelid OPERATOR(pg_catalog.=) child
       AND a.attname OPERATOR(pg_catalog.=) child_tenant;
    SELECT a.attnum INTO parent_tenant_attnum FROM pg_catalog.pg_attribute a
     WHERE a.attrelid OPERATOR(pg_catalog.=) parent
       AND a.attname OPERATOR(pg_catalog.=) parent_tenant;

    SELECT pg_catalog.array_remove(con.conkey, parent_tenant_attnum) INTO parent_key
      FROM pg_catalog.pg_constraint con
     WHERE con.conrelid OPERATOR(pg_catalog.=) parent
       AND con.contype OPERATOR(pg_catalog.=) 'p';
    IF pg_catalog.cardinality(parent_key) OPERATOR(pg_catalog.<>) 1 THEN
        RAISE EXCEPTION 'primary key of table % must have exactly one column besides the tenant column', parent
            USING ERRCODE = 'feature_not_supported';
    END IF;
    SELECT a.attname INTO parent_key_name FROM pg_catalog.pg_attribute a
     WHERE a.attrelid OPERATOR(pg_catalog.=) parent
       AND a.attnum OPERATOR(pg_catalog.=) parent_key[1];

    IF EXISTS (SELECT FROM pg_catalog.pg_constraint con
                WHERE con.conrelid OPERATOR(pg_catalog.=) child
                  AND con.contype OPERATOR(pg_catalog.=) 'f'
                  AND con.confrelid OPERATOR(pg_catalog.=) parent
                  AND con.conkey OPERATOR(pg_catalog.=) ARRAY[child_tenant_attnum, child_attnum]
                  AND con.confkey OPERATOR(pg_catalog.=) ARRAY[parent_tenant_attnum, parent_key[1]]) THEN
        RETURN;
    END IF;
    -- Defence in depth (the key is added and validated as the owner, below):
    -- the four columns have built-in types (OID below FirstNormalObjectId,
    -- 16384: no domain, no user-defined implicit cast or operator) and every
    -- unique index that could back the key uses built-in operator classes.
    IF EXISTS (SELECT FROM pg_catalog.pg_attribute a
                WHERE ((a.attrelid OPERATOR(pg_catalog.=) child
                        AND a.attnum OPERATOR(pg_catalog.=) ANY (ARRAY[child_tenant_attnum, child_attnum]))
                       OR (a.attrelid OPERATOR(pg_catalog.=) parent
                           AND a.attnum OPERATOR(pg_catalog.=) ANY (ARRAY[parent_tenant_attnum, parent_key[1]])))
                  AND a.atttypid OPERATOR(pg_catalog.>=) '16384'::pg_catalog.oid)
       OR EXISTS (SELECT FROM pg_catalog.pg_index i
                    JOIN pg_catalog.pg_opclass o
                      ON o.oid OPERATOR(pg_catalog.=) ANY (i.indclass::pg_catalog.oid[])
                   WHERE i.indrelid OPERATOR(pg_catalog.=) parent
                     AND i.indisunique
                     AND i.indnkeyatts OPERATOR(pg_catalog.=) 2
                     AND ARRAY[parent_tenant_attnum, parent_key[1]]
                         OPERATOR(pg_catalog.<@) i.indkey::pg_catalog.int2[]
                     AND o.opcnamespace OPERATOR(pg_catalog.<>) 'pg_catalog'::pg_catalog.regnamespace) THEN
        RAISE EXCEPTION 'tenant reference from %.% to % must compare built-in types', child, child_column, parent
            USING ERRCODE = 'feature_not_supported',
                  DETAIL = 'Tenant references need built-in column types, and built-in operator classes on the unique indexes of the referenced columns.';
    END IF;
    -- The unique key the reference points to, made when the first reference
    -- needs it: (tenant column, primary key), or a unique index already on
    -- those two columns.
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_index i
                    WHERE i.indrelid OPERATOR(pg_catalog.=) parent
                      AND i.indisunique AND i.indpred IS NULL AND i.indexprs IS NULL
                      AND i.indnkeyatts OPERATOR(pg_catalog.=) 2
                      AND ARRAY[i.indkey[0], i.indkey[1]]
                          OPERATOR(pg_catalog.@>) ARRAY[parent_tenant_attnum, parent_key[1]]) THEN
        PERFORM payymo._as_table_owner(parent, pg_catalog.format(
            'ALTER TABLE %s ADD CONSTRAINT %I UNIQUE (%I, %I)', parent,
            pg_catalog.left((SELECT c.relname::text FROM pg_catalog.pg_class c
                              WHERE c.oid OPERATOR(pg_catalog.=) parent), 30)
                OPERATOR(pg_catalog.||) '_' OPERATOR(pg_catalog.||)
                pg_catalog.left(parent_tenant::text, 20) OPERATOR(pg_catalog.||) '_tenant_key',
            parent_tenant, parent_key_name));
    END IF;
    -- As the owner, exempt from FORCE (as PostgreSQL's own key checks are),
    -- so that validation sees every tenant's rows and runs the owner's code
    -- (index expressions, operators) with the owner's rights only.
    PERFORM payymo._as_table_owner(child, pg_catalog.format(
        'ALTER TABLE %s ADD CONSTRAINT %I FOREIGN KEY (%I, %I) REFERENCES %s (%I, %I)',
        child,
        pg_catalog.left(child_column::text, 40) OPERATOR(pg_catalog.||) '_tenant_fkey',
        child_tenant, child_column, parent, parent_tenant, parent_key_name), true);
END
$$;

COMMENT ON FUNCTION payymo._add_tenant_reference(regclass, name, regclass) IS
'Internal: the work of payymo.add_tenant_reference(), which must have issued a ticket';

CREATE FUNCTION payymo.add_tenant_reference(child regclass, child_column name, parent regclass)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM payymo._issue_ticket(child, parent);
    PERFORM payymo._add_tenant_reference(child, child_column, parent);
END
$$;

COMMENT ON FUNCTION payymo.add_tenant_reference(regclass, name, regclass) IS
'Adds the foreign key (tenant column, child_column) REFERENCES parent (tenant column, primary key), and the unique key it needs on parent, so a row cannot point at another tenant''s row; the caller must own both tables';

-- Registered tables (partitioned tables, not their partitions), children
-- before parents: the longest foreign-key path from a table up to a table
-- it references decides its place.
CREATE FUNCTION payymo.tenant_tables_in_delete_order()
RETURNS TABLE (relid regclass, tenant_column name)
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH RECURSIVE roots AS (
        SELECT t.relid, t.tenant_column FROM payymo.tenant_tables t WHERE t.root IS NULL
    ), edges AS (
        SELECT DISTINCT con.conrelid AS child, con.confrelid AS parent
          FROM pg_catalog.pg_constraint con
         WHERE con.contype OPERATOR(pg_catalog.=) 'f'
           AND con.conparentid OPERATOR(pg_catalog.=) 0
           AND con.conrelid OPERATOR(pg_catalog.<>) con.confrelid
           AND con.conrelid IN (SELECT r.relid FROM roots r)
           AND con.confrelid IN (SELECT r.relid FROM roots r)
    ), depth (rel, d, path) AS (
        SELECT r.relid::oid, 0, ARRAY[r.relid::oid] FROM roots r
        UNION ALL
        SELECT e.child, depth.d OPERATOR(pg_catalog.+) 1, depth.path OPERATOR(pg_catalog.||) e.child
          FROM depth JOIN edges e ON e.parent OPERATOR(pg_catalog.=) depth.rel
         WHERE NOT e.child OPERATOR(pg_catalog.=) ANY (depth.path)
    )
    SELECT r.relid, r.tenant_column
      FROM roots r
      JOIN (SELECT rel, pg_catalog.max(d) AS d FROM depth GROUP BY rel) x
        ON x.rel OPERATOR(pg_catalog.=) r.relid::oid
     ORDER BY x.d DESC, r.relid::text
$$;

COMMENT ON FUNCTION payymo.tenant_tables_in_delete_order() IS
'Registered tenancy tables, children before parents (the order drop_tenant deletes in)';
