-- =========================================================================
-- Audit
-- =========================================================================
--
-- payymo.audit() lints the database for everything that could let one
-- tenant see, change or detect another's rows.  Critical findings are holes;
-- warnings are configurations to review.  A reviewed warning can be accepted
-- with a reason in payymo.audit_accepted; critical findings cannot.

CREATE TABLE payymo.audit_accepted (
    object text NOT NULL,
    problem text NOT NULL,
    reason text NOT NULL
        CONSTRAINT audit_accepted_reason_given
        CHECK (pg_catalog.btrim(reason) OPERATOR(pg_catalog.<>) ''),
    accepted_by name NOT NULL DEFAULT current_user,
    accepted_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (object, problem)
);

COMMENT ON TABLE payymo.audit_accepted IS
'Warnings of payymo.audit() an administrator reviewed and accepted, with the reason; audit() leaves them out (critical findings cannot be accepted)';

-- Readable like audit() itself; written by administrators.
REVOKE ALL ON payymo.audit_accepted FROM PUBLIC;
GRANT SELECT ON payymo.audit_accepted TO PUBLIC;
GRANT SELECT, INSERT, UPDATE, DELETE ON payymo.audit_accepted TO payymo_admin;
SELECT pg_catalog.pg_extension_config_dump('payymo.audit_accepted', '');

-- The tenants of tbl's rows that payymo.tenants does not hold: one index
-- descent per tenant (see src/registry.c); empty for callers that are not
-- superusers or members of payymo_admin.
CREATE FUNCTION payymo._orphan_tenants(tbl regclass, tenant_column name)
RETURNS SETOF bigint
LANGUAGE c STABLE STRICT PARALLEL RESTRICTED
ROWS 1
AS 'MODULE_PATHNAME', 'payymo_orphan_tenants';

COMMENT ON FUNCTION payymo._orphan_tenants(regclass, name) IS
'Internal: tenant ids in a table under tenancy that payymo.tenants does not hold (for superusers and payymo_admin; empty for others)';

-- jit = off: the estimated cost of this one large catalog query crosses
-- jit_above_cost, and compiling it takes seconds for a query that runs in
-- milliseconds.
CREATE FUNCTION payymo.audit()
RETURNS TABLE (severity text, object text, problem text, fix text)
LANGUAGE sql STABLE PARALLEL RESTRICTED
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
WITH tt AS (
    -- every registered relation, partitions included
    SELECT t.relid, t.tenant_column, t.root, c.relname, c.relowner, c.relacl,
           a.attnum, t.relid::text AS tbl
      FROM payymo.tenant_tables t
      JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) t.relid
      LEFT JOIN pg_catalog.pg_attribute a
        ON a.attrelid OPERATOR(pg_catalog.=) c.oid
       AND a.attname OPERATOR(pg_catalog.=) t.tenant_column
       AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped
),
ext AS (
    SELECT d.classid, d.objid FROM pg_catalog.pg_depend d
      JOIN pg_catalog.pg_extension e ON e.oid OPERATOR(pg_catalog.=) d.refobjid
     WHERE d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_extension'::pg_catalog.regclass
       AND d.deptype OPERATOR(pg_catalog.=) 'e'
),
bypassers AS (
    SELECT r.oid, r.rolname FROM pg_catalog.pg_roles r WHERE r.rolsuper OR r.rolbypassrls
),
-- login roles that may read or write the users' tenancy tables and are
-- subject to row level security: the application's roles, which all
-- tenants share
clients AS (
    SELECT r.oid, r.rolname FROM pg_catalog.pg_roles r
     WHERE r.rolcanlogin AND NOT r.rolsuper AND NOT r.rolbypassrls
       AND EXISTS (SELECT FROM tt
                    WHERE tt.root IS NULL
                      AND NOT EXISTS (SELECT FROM ext
                                       WHERE ext.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
                                         AND ext.objid OPERATOR(pg_catalog.=) tt.relid)
                      AND pg_catalog.has_table_privilege(r.oid, tt.relid,
                                                         'SELECT, INSERT, UPDATE, DELETE'))
),
findings (severity, object, problem, fix) AS (
-- 1. tenancy tables that lost a piece (the DDL guard's definition)
SELECT 'critical', p.object, p.problem, p.fix
  FROM tt, LATERAL payymo._tenancy_problems(tt.relid) p
UNION ALL
SELECT 'warning', tt.tbl,
       pg_catalog.format('no index is led by tenant column %I: every query scans the whole table', tt.tenant_column),
       pg_catalog.format('CREATE INDEX ON %s (%I);', tt.tbl, tt.tenant_column)
  FROM tt
 WHERE tt.root IS NULL AND tt.attnum IS NOT NULL
   AND NOT EXISTS (SELECT FROM pg_catalog.pg_index i
                    WHERE i.indrelid OPERATOR(pg_catalog.=) tt.relid
                      AND i.indkey[0] OPERATOR(pg_catalog.=) tt.attnum
                      AND i.indpred IS NULL)
UNION ALL
-- 2. tables with a tenant column that are not under tenancy
SELECT 'critical', c.oid::pg_catalog.regclass::text,
       pg_catalog.format('has tenant column %I but is not under tenancy', a.attname),
       pg_catalog.format('SELECT payymo.enable_tenancy(%L, %L);', c.oid::pg_catalog.regclass::text, a.attname)
  FROM pg_catalog.pg_class c
  JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
  JOIN pg_catalog.pg_attribute a
    ON a.attrelid OPERATOR(pg_catalog.=) c.oid AND a.attnum OPERATOR(pg_catalog.>) 0
   AND NOT a.attisdropped
 WHERE c.relkind OPERATOR(pg_catalog.=) ANY ('{r,p}'::"char"[]) AND NOT c.relispartition
   AND a.attname OPERATOR(pg_catalog.=) ANY (
        SELECT 'tenant_id'::name UNION SELECT t.tenant_column FROM payymo.tenant_tables t)
   AND n.nspname OPERATOR(pg_catalog.!~) '^pg_'
   AND n.nspname OPERATOR(pg_catalog.<>) 'information_schema'
   AND NOT EXISTS (SELECT FROM payymo.tenant_tables t WHERE t.relid OPERATOR(pg_catalog.=) c.oid)
   AND NOT EXISTS (SELECT FROM ext WHERE ext.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
                                     AND ext.objid OPERATOR(pg_catalog.=) c.oid)
UNION ALL
-- 3. existence oracles: unique indexes whose key columns lack the tenant
-- column (an INCLUDE column does not count), on tables and on partitions
SELECT 'critical', pg_catalog.format('index %s on %s', i.indexrelid::pg_catalog.regclass, tt.tbl),
       'unique index without the tenant column among its keys: inserting a value reveals whether another tenant has it',
       pg_catalog.format('%s; CREATE UNIQUE INDEX ON %s (%I, %s);',
           CASE WHEN con.oid IS NULL THEN pg_catalog.format('DROP INDEX %s', i.indexrelid::pg_catalog.regclass)
                ELSE pg_catalog.format('ALTER TABLE %s DROP CONSTRAINT %I', tt.tbl, con.conname) END,
           tt.tbl, tt.tenant_column,
           (SELECT pg_catalog.string_agg(pg_catalog.pg_get_indexdef(i.indexrelid, k, true), ', ' ORDER BY k)
              FROM pg_catalog.generate_series(1, i.indnkeyatts) k))
  FROM tt
  JOIN pg_catalog.pg_index i ON i.indrelid OPERATOR(pg_catalog.=) tt.relid
  LEFT JOIN pg_catalog.pg_constraint con ON con.conindid OPERATOR(pg_catalog.=) i.indexrelid
   AND con.conrelid OPERATOR(pg_catalog.=) tt.relid
 WHERE i.indisunique AND NOT i.indisprimary
   AND NOT (tt.attnum OPERATOR(pg_catalog.=) ANY (
            (i.indkey::pg_catalog.int2[])[0:i.indnkeyatts OPERATOR(pg_catalog.-) 1]))
   AND NOT EXISTS (SELECT FROM pg_catalog.pg_inherits h
                    WHERE h.inhrelid OPERATOR(pg_catalog.=) i.indexrelid)
UNION ALL
-- ... exclusion constraints without "tenant column WITH ="
SELECT 'critical', pg_catalog.format('constraint %I on %s', con.conname, tt.tbl),
       'exclusion constraint without the tenant column compared with =: a conflicting value reveals another tenant''s rows',
       pg_catalog.format('ALTER TABLE %s DROP CONSTRAINT %I;  -- and add it again with %I WITH = (btree_gist)',
                         tt.tbl, con.conname, tt.tenant_column)
  FROM tt
  JOIN pg_catalog.pg_constraint con ON con.conrelid OPERATOR(pg_catalog.=) tt.relid
 WHERE con.contype OPERATOR(pg_catalog.=) 'x' AND con.conparentid OPERATOR(pg_catalog.=) 0
   AND NOT EXISTS (SELECT FROM ROWS FROM (pg_catalog.unnest(con.conkey), pg_catalog.unnest(con.conexclop)) AS e(attnum, op)
                     JOIN pg_catalog.pg_operator o ON o.oid OPERATOR(pg_catalog.=) e.op
                    WHERE e.attnum OPERATOR(pg_catalog.=) tt.attnum
                      AND o.oprname OPERATOR(pg_catalog.=) '=')
UNION ALL
-- ... foreign keys into tenancy tables that do not pair the two tenant
-- columns: without the tenant column, or with it compared to another column
-- (payymo's own stores, which clients cannot write, are left out)
SELECT 'critical', pg_catalog.format('constraint %I on %s', con.conname, con.conrelid::pg_catalog.regclass),
       CASE WHEN NOT (tt.attnum OPERATOR(pg_catalog.=) ANY (con.confkey))
            THEN pg_catalog.format('foreign key to tenancy table %s without the tenant column: a reference reveals whether another tenant''s row exists', tt.tbl)
            ELSE pg_catalog.format('foreign key pairs tenant column %I of %s with column %I, which is not the referencing table''s tenant column: a row can point at another tenant''s row',
                                   tt.tenant_column, tt.tbl,
                                   (SELECT a.attname FROM pg_catalog.pg_attribute a
                                     WHERE a.attrelid OPERATOR(pg_catalog.=) con.conrelid
                                       AND a.attnum OPERATOR(pg_catalog.=)
                                           con.conkey[pg_catalog.array_position(con.confkey, tt.attnum)])) END,
       CASE WHEN pg_catalog.cardinality(con.conkey) OPERATOR(pg_catalog.=) 1 AND child.relid IS NOT NULL
            THEN pg_catalog.format('ALTER TABLE %s DROP CONSTRAINT %I; SELECT payymo.add_tenant_reference(%L, %L, %L);',
                     con.conrelid::pg_catalog.regclass, con.conname, con.conrelid::pg_catalog.regclass::text,
                     (SELECT a.attname FROM pg_catalog.pg_attribute a
                       WHERE a.attrelid OPERATOR(pg_catalog.=) con.conrelid
                         AND a.attnum OPERATOR(pg_catalog.=) con.conkey[1]), tt.tbl)
            ELSE pg_catalog.format('ALTER TABLE %s DROP CONSTRAINT %I;  -- then reference %s from a table under tenancy with payymo.add_tenant_reference()',
                     con.conrelid::pg_catalog.regclass, con.conname, tt.tbl) END
  FROM tt
  JOIN pg_catalog.pg_constraint con ON con.confrelid OPERATOR(pg_catalog.=) tt.relid
  LEFT JOIN tt child ON child.relid OPERATOR(pg_catalog.=) con.conrelid
 WHERE con.contype OPERATOR(pg_catalog.=) 'f' AND con.conparentid OPERATOR(pg_catalog.=) 0
   AND (NOT (tt.attnum OPERATOR(pg_catalog.=) ANY (con.confkey))
        OR con.conkey[pg_catalog.array_position(con.confkey, tt.attnum)]
           IS DISTINCT FROM child.attnum)
   AND con.conrelid OPERATOR(pg_catalog.<>) 'payymo.session_store'::pg_catalog.regclass
UNION ALL
-- 4. views and materialized views over tenancy tables
SELECT 'critical', v.oid::pg_catalog.regclass::text,
       CASE WHEN v.relkind OPERATOR(pg_catalog.=) 'm'
            THEN pg_catalog.format('materialized view over tenancy table %s: it holds the rows of whichever context refreshed it, without row level security', tt.tbl)
            ELSE pg_catalog.format('view over tenancy table %s is owned by %I, which bypasses row level security', tt.tbl,
                                   pg_catalog.pg_get_userbyid(v.relowner)) END,
       CASE WHEN v.relkind OPERATOR(pg_catalog.=) 'v'
            THEN pg_catalog.format('ALTER VIEW %s SET (security_invoker = on);', v.oid::pg_catalog.regclass)
            ELSE pg_catalog.format('DROP MATERIALIZED VIEW %s;', v.oid::pg_catalog.regclass) END
  FROM tt
  JOIN pg_catalog.pg_depend d
    ON d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
   AND d.refobjid OPERATOR(pg_catalog.=) tt.relid
   AND d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_rewrite'::pg_catalog.regclass
  JOIN pg_catalog.pg_rewrite rw ON rw.oid OPERATOR(pg_catalog.=) d.objid
  JOIN pg_catalog.pg_class v ON v.oid OPERATOR(pg_catalog.=) rw.ev_class
 WHERE v.oid OPERATOR(pg_catalog.<>) tt.relid
   AND (v.relkind OPERATOR(pg_catalog.=) 'm'
        OR (v.relowner OPERATOR(pg_catalog.=) ANY (SELECT b.oid FROM bypassers b)
            AND NOT EXISTS (
                SELECT FROM pg_catalog.unnest(v.reloptions) opt
                 WHERE pg_catalog.lower(opt) OPERATOR(pg_catalog.=) ANY (
                       '{security_invoker=true,security_invoker=on,security_invoker=1,security_invoker=yes}'::text[]))))
   AND NOT EXISTS (SELECT FROM ext WHERE ext.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
                                     AND ext.objid OPERATOR(pg_catalog.=) v.oid)
 GROUP BY v.oid, v.relkind, v.relowner, tt.tbl
UNION ALL
-- 5. SECURITY DEFINER functions that run with rights that bypass row level
-- security: critical when they are known to read a tenancy table (SQL-standard
-- bodies record what they use), a warning when clients can call them and
-- what they read cannot be known; owners of tenancy tables stay under FORCE
-- but can do whatever the owner can
SELECT CASE WHEN o.rolsuper OR o.rolbypassrls THEN 'critical' ELSE 'warning' END,
       pg_catalog.format('function %s', f.oid::pg_catalog.regprocedure),
       pg_catalog.format('SECURITY DEFINER function owned by %I reads tenancy table %s%s', o.rolname, tt.tbl,
                         CASE WHEN o.rolsuper OR o.rolbypassrls THEN ' bypassing row level security'
                              ELSE ' with the rights of its owner' END),
       pg_catalog.format('ALTER FUNCTION %s SECURITY INVOKER;', f.oid::pg_catalog.regprocedure)
  FROM pg_catalog.pg_proc f
  JOIN pg_catalog.pg_roles o ON o.oid OPERATOR(pg_catalog.=) f.proowner
  JOIN pg_catalog.pg_depend d
    ON d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_proc'::pg_catalog.regclass
   AND d.objid OPERATOR(pg_catalog.=) f.oid
   AND d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
  JOIN tt ON tt.relid OPERATOR(pg_catalog.=) d.refobjid
 WHERE f.prosecdef
   AND (o.rolsuper OR o.rolbypassrls
        OR EXISTS (SELECT FROM tt x WHERE x.relowner OPERATOR(pg_catalog.=) f.proowner))
   AND NOT EXISTS (SELECT FROM ext WHERE ext.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_proc'::pg_catalog.regclass
                                     AND ext.objid OPERATOR(pg_catalog.=) f.oid)
 GROUP BY f.oid, o.rolname, o.rolsuper, o.rolbypassrls, tt.tbl
UNION ALL
SELECT 'warning', pg_catalog.format('function %s', f.oid::pg_catalog.regprocedure),
       pg_catalog.format('SECURITY DEFINER function owned by %I, which bypasses row level security, can be called by clients; what it reads is not known',
                         pg_catalog.pg_get_userbyid(f.proowner)),
       pg_catalog.format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC;  -- and from client roles, or ALTER FUNCTION ... SECURITY INVOKER',
                         f.oid::pg_catalog.regprocedure)
  FROM pg_catalog.pg_proc f
  JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) f.pronamespace
 WHERE f.prosecdef AND f.prosqlbody IS NULL
   AND f.proowner OPERATOR(pg_catalog.=) ANY (SELECT b.oid FROM bypassers b)
   AND n.nspname OPERATOR(pg_catalog.<>) ALL ('{pg_catalog,information_schema}'::name[])
   AND EXISTS (SELECT FROM clients cl
                WHERE pg_catalog.has_function_privilege(cl.oid, f.oid, 'EXECUTE'))
   AND NOT EXISTS (SELECT FROM ext WHERE ext.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_proc'::pg_catalog.regclass
                                     AND ext.objid OPERATOR(pg_catalog.=) f.oid)
UNION ALL
-- ... and SECURITY DEFINER functions whose search_path a caller can choose
SELECT 'critical', pg_catalog.format('function %s', f.oid::pg_catalog.regprocedure),
       'SECURITY DEFINER function without a pinned search_path',
       pg_catalog.format('ALTER FUNCTION %s SET search_path = pg_catalog, pg_temp;', f.oid::pg_catalog.regprocedure)
  FROM pg_catalog.pg_proc f
  JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) f.pronamespace
 WHERE f.prosecdef
   AND n.nspname OPERATOR(pg_catalog.<>) ALL ('{pg_catalog,information_schema}'::name[])
   AND NOT EXISTS (SELECT FROM pg_catalog.unnest(f.proconfig) cfg
                    WHERE cfg OPERATOR(pg_catalog.~~) 'search\_path=%')
   AND NOT EXISTS (SELECT FROM ext WHERE ext.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_proc'::pg_catalog.regclass
                                     AND ext.objid OPERATOR(pg_catalog.=) f.oid)
UNION ALL
-- 6. rules and triggers other than payymo's on tenancy tables: they run on
-- every write and can copy a tenant's rows where others can read them
SELECT 'warning', pg_catalog.format('rule %I on %s', rw.rulename, tt.tbl),
       'rule runs with the table owner''s rights on every write and can copy a tenant''s rows elsewhere',
       pg_catalog.format('DROP RULE %I ON %s;', rw.rulename, tt.tbl)
  FROM tt JOIN pg_catalog.pg_rewrite rw ON rw.ev_class OPERATOR(pg_catalog.=) tt.relid
 WHERE rw.rulename OPERATOR(pg_catalog.<>) '_RETURN'
UNION ALL
SELECT 'warning', pg_catalog.format('trigger %I on %s', g.tgname, tt.tbl),
       pg_catalog.format('trigger runs %s on every write: check that it cannot copy a tenant''s rows where other tenants can read them',
                         g.tgfoid::pg_catalog.regprocedure),
       pg_catalog.format('DROP TRIGGER %I ON %s;  -- or accept it in payymo.audit_accepted', g.tgname, tt.tbl)
  FROM tt JOIN pg_catalog.pg_trigger g ON g.tgrelid OPERATOR(pg_catalog.=) tt.relid
 WHERE NOT g.tgisinternal AND g.tgparentid OPERATOR(pg_catalog.=) 0
   AND g.tgname OPERATOR(pg_catalog.<>) ALL ('{payymo_stamp_tenant,payymo_refuse_truncate}'::name[])
UNION ALL
-- 7. roles
SELECT 'warning', pg_catalog.format('role %I', r.rolname),
       CASE WHEN r.rolsuper THEN 'superuser that can log in: bypasses row level security'
            WHEN r.rolbypassrls THEN 'role with BYPASSRLS that can log in: bypasses row level security'
            ELSE 'owner of tenancy tables that can log in: can alter or drop them' END,
       CASE WHEN r.rolsuper THEN pg_catalog.format('ALTER ROLE %I NOSUPERUSER;  -- or NOLOGIN', r.rolname)
            WHEN r.rolbypassrls THEN pg_catalog.format('ALTER ROLE %I NOBYPASSRLS;  -- or NOLOGIN', r.rolname)
            ELSE pg_catalog.format('ALTER ROLE %I NOLOGIN;  -- own the tables with a role nobody logs in as', r.rolname) END
  FROM pg_catalog.pg_roles r
 WHERE r.rolcanlogin
   AND r.oid OPERATOR(pg_catalog.<>) ALL (SELECT e.extowner FROM pg_catalog.pg_extension e
                                            WHERE e.extname OPERATOR(pg_catalog.=) 'payymo')
   AND (r.rolsuper OR r.rolbypassrls
        OR EXISTS (SELECT FROM tt WHERE tt.relowner OPERATOR(pg_catalog.=) r.oid))
UNION ALL
SELECT 'warning', pg_catalog.format('role %I', r.rolname),
       pg_catalog.format('can log in and act as %I, the owner of tenancy tables, through membership: can alter or drop them', o.rolname),
       pg_catalog.format('REVOKE %I FROM %I;  -- run schema changes as an administrator instead', o.rolname, r.rolname)
  FROM pg_catalog.pg_roles r
  JOIN pg_catalog.pg_roles o
    ON o.oid OPERATOR(pg_catalog.=) ANY (SELECT DISTINCT tt.relowner FROM tt)
 WHERE r.rolcanlogin AND NOT r.rolsuper AND r.oid OPERATOR(pg_catalog.<>) o.oid
   AND pg_catalog.pg_has_role(r.oid, o.oid, 'MEMBER')
UNION ALL
-- 8. grants: TRUNCATE ignores row level security; SET on payymo's settings
SELECT 'critical', tt.tbl,
       pg_catalog.format('TRUNCATE is granted to %s',
           CASE WHEN x.grantee OPERATOR(pg_catalog.=) 0 THEN 'PUBLIC'
                ELSE pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(x.grantee)) END),
       pg_catalog.format('REVOKE TRUNCATE ON %s FROM %s;', tt.tbl,
           CASE WHEN x.grantee OPERATOR(pg_catalog.=) 0 THEN 'PUBLIC'
                ELSE pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(x.grantee)) END)
  FROM tt, pg_catalog.aclexplode(tt.relacl) x
 WHERE x.privilege_type OPERATOR(pg_catalog.=) 'TRUNCATE'
   AND x.grantee OPERATOR(pg_catalog.<>) tt.relowner
UNION ALL
SELECT 'critical', pg_catalog.format('parameter %s', p.parname),
       pg_catalog.format('%s ON PARAMETER is granted to %s', x.privilege_type,
           CASE WHEN x.grantee OPERATOR(pg_catalog.=) 0 THEN 'PUBLIC'
                ELSE pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(x.grantee)) END),
       pg_catalog.format('REVOKE %s ON PARAMETER %s FROM %s;', x.privilege_type, p.parname,
           CASE WHEN x.grantee OPERATOR(pg_catalog.=) 0 THEN 'PUBLIC'
                ELSE pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(x.grantee)) END)
  FROM pg_catalog.pg_parameter_acl p, pg_catalog.aclexplode(p.paracl) x
 WHERE p.parname OPERATOR(pg_catalog.~~) 'payymo.%'
   AND NOT EXISTS (SELECT FROM pg_catalog.pg_roles r
                    WHERE r.oid OPERATOR(pg_catalog.=) x.grantee AND r.rolsuper)
UNION ALL
-- 9. the extension itself: its schema and objects belong to superusers, and
-- nobody else may create objects in its schema
SELECT 'critical', 'schema payymo',
       pg_catalog.format('owned by %I, which is not a superuser: it can drop every object of the extension', o.rolname),
       pg_catalog.format('ALTER SCHEMA payymo OWNER TO %I;', pg_catalog.pg_get_userbyid(e.extowner))
  FROM pg_catalog.pg_namespace n
  JOIN pg_catalog.pg_roles o ON o.oid OPERATOR(pg_catalog.=) n.nspowner
  JOIN pg_catalog.pg_extension e ON e.extname OPERATOR(pg_catalog.=) 'payymo'
 WHERE n.nspname OPERATOR(pg_catalog.=) 'payymo' AND NOT o.rolsuper
UNION ALL
SELECT 'critical', 'schema payymo',
       pg_catalog.format('CREATE is granted to %s', CASE WHEN x.grantee OPERATOR(pg_catalog.=) 0 THEN 'PUBLIC'
                                                        ELSE pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(x.grantee)) END),
       pg_catalog.format('REVOKE CREATE ON SCHEMA payymo FROM %s;', CASE WHEN x.grantee OPERATOR(pg_catalog.=) 0 THEN 'PUBLIC'
                                                        ELSE pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(x.grantee)) END)
  FROM pg_catalog.pg_namespace n, pg_catalog.aclexplode(n.nspacl) x
 WHERE n.nspname OPERATOR(pg_catalog.=) 'payymo'
   AND x.privilege_type OPERATOR(pg_catalog.=) 'CREATE'
   AND NOT EXISTS (SELECT FROM pg_catalog.pg_roles r
                    WHERE r.oid OPERATOR(pg_catalog.=) x.grantee AND r.rolsuper)
UNION ALL
SELECT 'critical', pg_catalog.pg_describe_object(d.classid, d.objid, 0),
       pg_catalog.format('object of the extension owned by %I, which is not a superuser', o.rolname),
       pg_catalog.format('ALTER %s %s OWNER TO %I;', x.kind, x.name, pg_catalog.pg_get_userbyid(e.extowner))
  FROM pg_catalog.pg_depend d
  JOIN pg_catalog.pg_extension e ON e.oid OPERATOR(pg_catalog.=) d.refobjid
                                AND e.extname OPERATOR(pg_catalog.=) 'payymo'
  JOIN LATERAL (
        SELECT c.relowner AS owner, 'TABLE' AS kind, c.oid::pg_catalog.regclass::text AS name
          FROM pg_catalog.pg_class c
         WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
           AND c.oid OPERATOR(pg_catalog.=) d.objid
        UNION ALL
        SELECT f.proowner, 'ROUTINE', f.oid::pg_catalog.regprocedure::text
          FROM pg_catalog.pg_proc f
         WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_proc'::pg_catalog.regclass
           AND f.oid OPERATOR(pg_catalog.=) d.objid) x ON true
  JOIN pg_catalog.pg_roles o ON o.oid OPERATOR(pg_catalog.=) x.owner
 WHERE d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_extension'::pg_catalog.regclass
   AND d.deptype OPERATOR(pg_catalog.=) 'e' AND NOT o.rolsuper
UNION ALL
SELECT 'critical', 'role payymo_admin', 'can log in: it administers every tenant',
       'ALTER ROLE payymo_admin NOLOGIN;  -- grant it to the administrators'' own roles instead'
  FROM pg_catalog.pg_roles r
 WHERE r.rolname OPERATOR(pg_catalog.=) 'payymo_admin' AND r.rolcanlogin
UNION ALL
-- 10. channels PostgreSQL opens between sessions of one role, which all
-- tenants share
SELECT 'warning', pg_catalog.format('role %I', cl.rolname),
       'sessions of this role see each other''s query text in pg_stat_activity, whichever tenant they act for',
       pg_catalog.format('ALTER ROLE %I SET track_activities = off;  -- or, if the application sends every value as a bind parameter, accept this warning in payymo.audit_accepted', cl.rolname)
  FROM clients cl
 WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_settings g
                    WHERE g.name OPERATOR(pg_catalog.=) 'track_activities'
                      AND g.setting OPERATOR(pg_catalog.=) 'off'
                      AND g.source OPERATOR(pg_catalog.=) ANY (
                          '{default,configuration file,command line,environment variable}'::text[]))
   AND NOT EXISTS (SELECT FROM pg_catalog.pg_db_role_setting s, pg_catalog.unnest(s.setconfig) cfg
                    WHERE s.setrole OPERATOR(pg_catalog.=) cl.oid
                      AND s.setdatabase OPERATOR(pg_catalog.=) ANY (
                          SELECT 0 UNION ALL
                          SELECT d.oid FROM pg_catalog.pg_database d
                           WHERE d.datname OPERATOR(pg_catalog.=) pg_catalog.current_database())
                      AND cfg OPERATOR(pg_catalog.=) ANY ('{track_activities=off,track_activities=false,track_activities=0}'::text[]))
UNION ALL
SELECT 'warning', 'parameter max_prepared_transactions',
       pg_catalog.format('is %s: a client can COMMIT or ROLLBACK PREPARED another tenant''s prepared transaction (same role)',
                         pg_catalog.current_setting('max_prepared_transactions')),
       'ALTER SYSTEM SET max_prepared_transactions = 0;  -- then restart'
 WHERE pg_catalog.current_setting('max_prepared_transactions')::integer OPERATOR(pg_catalog.>) 0
   AND EXISTS (SELECT FROM clients)
UNION ALL
-- 11. token columns that cannot hold encrypt_token()'s bytea
SELECT 'warning', pg_catalog.format('column %I of %s', a.attname, tt.tbl),
       'token column of type text: encrypt_token() returns bytea, stored here as its text form, which decrypt_token() cannot read',
       pg_catalog.format('ALTER TABLE %s ALTER COLUMN %I TYPE bytea USING pg_catalog.decode(pg_catalog.substr(%I, 3), ''hex'');',
                         tt.tbl, a.attname, a.attname)
  FROM tt
  JOIN pg_catalog.pg_attribute a
    ON a.attrelid OPERATOR(pg_catalog.=) tt.relid AND a.attnum OPERATOR(pg_catalog.>) 0
   AND NOT a.attisdropped
 WHERE tt.root IS NULL
   AND a.attname OPERATOR(pg_catalog.~~) '%token%'
   AND a.atttypid OPERATOR(pg_catalog.=) ANY ('{text,varchar,bpchar}'::pg_catalog.regtype[]::oid[])
UNION ALL
-- 12. rows of tenants that do not exist (written around the row trigger, by
-- a superuser or a restore): a tenant created later with that id would get
-- them.  Reported to superusers and payymo_admin only.
SELECT 'critical', tt.tbl,
       pg_catalog.format('rows of tenant %s, which does not exist', o.tenant_id),
       pg_catalog.format('DELETE FROM %s WHERE %I = %s;  -- as a superuser',
                         tt.tbl, tt.tenant_column, o.tenant_id)
  FROM tt, LATERAL payymo._orphan_tenants(tt.relid, tt.tenant_column) o(tenant_id)
)
SELECT f.severity, f.object, f.problem, f.fix
  FROM findings f
 WHERE NOT (f.severity OPERATOR(pg_catalog.=) 'warning' AND EXISTS (
            SELECT FROM payymo.audit_accepted x
             WHERE x.object OPERATOR(pg_catalog.=) f.object
               AND x.problem OPERATOR(pg_catalog.=) f.problem))
 ORDER BY 1, 2, 3
$$;

COMMENT ON FUNCTION payymo.audit() IS
'Lints tables under tenancy and what could bypass them; each finding comes with the SQL that fixes it; no rows means clean (accepted warnings are left out)';
