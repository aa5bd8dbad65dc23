-- =========================================================================
-- DDL guard
-- =========================================================================
--
-- ddl_command_end sees ALTER TABLE, CREATE/ALTER POLICY and
-- ALTER TRIGGER; sql_drop sees DROP POLICY, DROP TRIGGER and DROP COLUMN.
-- Both check every registered table the command touched, after the command,
-- so whatever the syntax, a table left with any problem that
-- payymo._tenancy_problems() knows (the definition audit() uses too) is
-- refused (42501).  Only tables the command touched are checked, so one
-- damaged table does not block unrelated DDL.

CREATE FUNCTION payymo._refuse_weakened(tables regclass[])
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    tbl regclass;
    p record;
BEGIN
    FOR tbl IN
        SELECT DISTINCT t.relid FROM payymo.tenant_tables t
         WHERE t.relid OPERATOR(pg_catalog.=) ANY (tables)
    LOOP
        SELECT * INTO p FROM payymo._tenancy_problems(tbl) LIMIT 1;
        IF FOUND THEN
            RAISE EXCEPTION 'table % is under tenancy: this statement would weaken it', tbl
                USING ERRCODE = 'insufficient_privilege',
                      DETAIL = pg_catalog.format('After the statement: %s%s.',
                          CASE WHEN p.object OPERATOR(pg_catalog.<>) tbl::text
                               THEN p.object OPERATOR(pg_catalog.||) ': ' ELSE '' END,
                          p.problem),
                      HINT = pg_catalog.format('An administrator (superuser or payymo_admin) can call payymo.disable_tenancy(%L) to take the table out of tenancy.',
                                               COALESCE((SELECT t.root FROM payymo.tenant_tables t
                                                          WHERE t.relid OPERATOR(pg_catalog.=) tbl), tbl)::text);
        END IF;
    END LOOP;
END
$$;

COMMENT ON FUNCTION payymo._refuse_weakened(regclass[]) IS
'Internal: raises 42501 if any of the registered tables given has a problem payymo._tenancy_problems() reports';

REVOKE EXECUTE ON FUNCTION payymo._refuse_weakened(regclass[]) FROM PUBLIC;

-- A restore in progress: pg_dump's scripts run as a superuser with
-- row_security = off, and rebuild a registered table step by step (table,
-- data, then indexes, triggers, RLS and policy), each step leaving it
-- incomplete.  The guard stands aside for them; the restored table ends
-- complete, and payymo.audit() reports it if it does not.
CREATE FUNCTION payymo._restoring()
RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pg_catalog.current_setting('row_security') OPERATOR(pg_catalog.=) 'off'
       AND (SELECT r.rolsuper FROM pg_catalog.pg_roles r
             WHERE r.rolname OPERATOR(pg_catalog.=) session_user)
$$;

COMMENT ON FUNCTION payymo._restoring() IS
'True while a superuser session runs with row_security = off, as pg_dump and pg_restore scripts do: the DDL guard stands aside';

CREATE FUNCTION payymo.ddl_guard()
RETURNS event_trigger
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    touched regclass[];
    root regclass;
BEGIN
    IF payymo._restoring() OR NOT EXISTS (SELECT FROM payymo.tenant_tables) THEN
        RETURN;
    END IF;
    SELECT pg_catalog.array_agg(DISTINCT rel) INTO touched FROM (
        SELECT c.objid::regclass AS rel FROM pg_catalog.pg_event_trigger_ddl_commands() c
         WHERE c.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::regclass
        UNION ALL
        SELECT p.polrelid::regclass FROM pg_catalog.pg_event_trigger_ddl_commands() c
          JOIN pg_catalog.pg_policy p ON p.oid OPERATOR(pg_catalog.=) c.objid
         WHERE c.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_policy'::regclass
        UNION ALL
        SELECT g.tgrelid::regclass FROM pg_catalog.pg_event_trigger_ddl_commands() c
          JOIN pg_catalog.pg_trigger g ON g.oid OPERATOR(pg_catalog.=) c.objid
         WHERE c.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_trigger'::regclass) s;
    IF touched IS NULL THEN
        RETURN;
    END IF;
    -- New partitions of a registered partitioned table are covered at once.
    FOR root IN
        SELECT DISTINCT pg_catalog.pg_partition_root(x) FROM pg_catalog.unnest(touched) x
         WHERE pg_catalog.pg_partition_root(x) IS NOT NULL
    LOOP
        PERFORM payymo._cover_partitions(root);
    END LOOP;
    PERFORM payymo._refuse_weakened(touched);
END
$$;

COMMENT ON FUNCTION payymo.ddl_guard() IS
'Event trigger (ddl_command_end): refuses DDL that weakens a table under tenancy and covers new partitions of registered tables';

REVOKE EXECUTE ON FUNCTION payymo.ddl_guard() FROM PUBLIC;

CREATE FUNCTION payymo.drop_guard()
RETURNS event_trigger
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    touched regclass[];
BEGIN
    IF NOT EXISTS (SELECT FROM payymo.tenant_tables) THEN
        RETURN;
    END IF;
    -- Dropped tables leave the registry.
    DELETE FROM payymo.tenant_tables t
     USING pg_catalog.pg_event_trigger_dropped_objects() d
     WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::regclass
       AND d.objsubid OPERATOR(pg_catalog.=) 0
       AND d.objid OPERATOR(pg_catalog.=) t.relid::oid;
    SELECT pg_catalog.array_agg(DISTINCT rel) INTO touched FROM (
        SELECT d.objid::regclass AS rel FROM pg_catalog.pg_event_trigger_dropped_objects() d
         WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::regclass
           AND d.objsubid OPERATOR(pg_catalog.>) 0
        UNION ALL
        SELECT pg_catalog.to_regclass(pg_catalog.format('%I.%I', d.address_names[1], d.address_names[2]))
          FROM pg_catalog.pg_event_trigger_dropped_objects() d
         WHERE d.object_type OPERATOR(pg_catalog.=) ANY ('{policy,trigger}'::text[])) s
     WHERE rel IS NOT NULL;
    IF touched IS NOT NULL AND NOT payymo._restoring() THEN
        PERFORM payymo._refuse_weakened(touched);
    END IF;
END
$$;

COMMENT ON FUNCTION payymo.drop_guard() IS
'Event trigger (sql_drop): refuses dropping the policy, triggers or tenant column of a table under tenancy and unregisters dropped tables';

REVOKE EXECUTE ON FUNCTION payymo.drop_guard() FROM PUBLIC;

CREATE EVENT TRIGGER payymo_ddl_guard ON ddl_command_end
    EXECUTE FUNCTION payymo.ddl_guard();

CREATE EVENT TRIGGER payymo_drop_guard ON sql_drop
    EXECUTE FUNCTION payymo.drop_guard();
