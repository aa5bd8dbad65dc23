CREATE FUNCTION payymo.audit()
RETURNS TABLE (severity text, object text, problem text, fix text)
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
WITH tt AS (
    SELECT t.relid, t.tenant_column, t.root, t.policy_qual, c.relname, c.relowner,
           c.relacl, c.relrowsecurity, c.relforcerowsecurity, a.attnum,
           t.relid::text AS tbl
      FROM payymo.tenant_tables t
      JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) t.relid
      LEFT JOIN pg_catalog.pg_attribute a
        ON a.attrelid OPERATOR(pg_catalog.=) c.oid
       AND a.attname OPERATOR(pg_catalog.=) t.tenant_column
       AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped
),
ext AS (
    SELECT d.classid, d.objid FROM pg_catalog.pg_depend d
     WHERE d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_extension'::pg_catalog.regclass
       AND d.deptype OPERATOR(pg_catalog.=) 'e'
),
repair AS (
    SELECT tt.*, pg_catalog.format('SELECT payymo.enable_tenancy(%L, %L);',
                                   COALESCE(tt.root, tt.relid)::text, tt.tenant_column) AS fix
      FROM tt
)
-- 1. tenancy tables that lost a piece
SELECT 'critical', r.tbl, 'row level security is not enabled', r.fix
  FROM repair r WHERE NOT r.relrowsecurity
UNION ALL
SELECT 'critical', r.tbl, 'row level security is not forced: the owner bypasses it',
       pg_catalog.format('ALTER TABLE %s FORCE ROW LEVEL SECURITY;', r.tbl)
  FROM repair r WHERE NOT r.relforcerowsecurity
UNION ALL
SELECT 'critical', r.tbl, pg_catalog.format('tenant column %I is missing', r.tenant_column), r.fix
  FROM repair r WHERE r.attnum IS NULL
UNION ALL
SELECT 'critical', r.tbl, 'policy payymo_tenant_isolation is missing or was changed', r.fix
  FROM repair r
 WHERE r.attnum IS NOT NULL
   AND NOT EXISTS (
        SELECT FROM pg_catalog.pg_policy p
         WHERE p.polrelid OPERATOR(pg_catalog.=) r.relid
           AND p.polname OPERATOR(pg_catalog.=) 'payymo_tenant_isolation'
           AND p.polpermissive AND p.polcmd OPERATOR(pg_catalog.=) '*'
           AND p.polroles OPERATOR(pg_catalog.=) '{0}'::oid[]
           AND pg_catalog.pg_get_expr(p.polqual, p.polrelid) OPERATOR(pg_catalog.=) r.policy_qual
           AND pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid) OPERATOR(pg_catalog.=) r.policy_qual)
UNION ALL
SELECT 'warning', r.tbl,
       pg_catalog.format('no index is led by tenant column %I: every query scans the whole table', r.tenant_column),
       pg_catalog.format('CREATE INDEX ON %s (%I);', r.tbl, r.tenant_column)
  FROM repair r
 WHERE r.attnum IS NOT NULL
   AND NOT EXISTS (SELECT FROM pg_catalog.pg_index i
                    WHERE i.indrelid OPERATOR(pg_catalog.=) r.relid
                      AND i.indkey[0] OPERATOR(pg_catalog.=) r.attnum
                      AND i.indpred IS NULL)
UNION ALL
SELECT 'critical', r.tbl, pg_catalog.format('trigger %s is missing or disabled', g.name), r.fix
  FROM repair r
 CROSS JOIN (VALUES ('payymo_stamp_tenant', 'payymo.stamp_tenant()'),
                    ('payymo_refuse_truncate', 'payymo.refuse_truncate()')) AS g(name, func)
 WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_trigger x
                    WHERE x.tgrelid OPERATOR(pg_catalog.=) r.relid
                      AND x.tgname OPERATOR(pg_catalog.=) g.name
                      AND x.tgfoid OPERATOR(pg_catalog.=) g.func::pg_catalog.regprocedure
                      AND x.tgenabled OPERATOR(pg_catalog.=) ANY ('{O,A}'::"char"[]))
UNION ALL
-- 2. other policies that widen access: permissive policies are OR-ed
SELECT 'critical', pg_catalog.format('policy %I on %s', p.polname, tt.tbl),
       CASE WHEN p.polqual IS NULL OR pg_catalog.pg_get_expr(p.polqual, p.polrelid) OPERATOR(pg_catalog.=) 'true'
            THEN 'always-true permissive policy: every tenant''s rows are visible'
            ELSE 'permissive policy OR-ed with payymo_tenant_isolation widens access' END,
       pg_catalog.format('DROP POLICY %I ON %s;  -- or recreate it AS RESTRICTIVE', p.polname, tt.tbl)
  FROM tt JOIN pg_catalog.pg_policy p ON p.polrelid OPERATOR(pg_catalog.=) tt.relid
 WHERE p.polname OPERATOR(pg_catalog.<>) 'payymo_tenant_isolation' AND p.polpermissive
UNION ALL
-- 3. tables with a tenant column that are not under tenancy
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
-- 4. existence oracles: unique keys and foreign keys without the tenant column
SELECT 'critical', pg_catalog.format('index %s on %s', i.indexrelid::pg_catalog.regclass, tt.tbl),
       'unique index without the tenant column: inserting a value reveals whether another tenant has it',
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
 WHERE tt.root IS NULL AND i.indisunique AND NOT i.indisprimary
   AND NOT (tt.attnum OPERATOR(pg_catalog.=) ANY (i.indkey::int2[]))
UNION ALL
SELECT 'critical', pg_catalog.format('constraint %I on %s', con.conname, con.conrelid::pg_catalog.regclass),
       pg_catalog.format('foreign key to tenancy table %s without the tenant column: a reference reveals whether another tenant''s row exists', tt.tbl),
       CASE WHEN pg_catalog.cardinality(con.conkey) OPERATOR(pg_catalog.=) 1
             AND EXISTS (SELECT FROM payymo.tenant_tables t WHERE t.relid OPERATOR(pg_catalog.=) con.conrelid)
            THEN pg_catalog.format('ALTER TABLE %s DROP CONSTRAINT %I; SELECT payymo.add_tenant_reference(%L, %L, %L);',
                     con.conrelid::pg_catalog.regclass, con.conname, con.conrelid::pg_catalog.regclass::text,
                     (SELECT a.attname FROM pg_catalog.pg_attribute a
                       WHERE a.attrelid OPERATOR(pg_catalog.=) con.conrelid
                         AND a.attnum OPERATOR(pg_catalog.=) con.conkey[1]), tt.tbl)
            ELSE pg_catalog.format('ALTER TABLE %s DROP CONSTRAINT %I; then put %s under tenancy and reference (%I, ...) with payymo.add_tenant_reference()',
                     con.conrelid::pg_catalog.regclass, con.conname, con.conrelid::pg_catalog.regclass, tt.tenant_column) END
  FROM tt
  JOIN pg_catalog.pg_constraint con ON con.confrelid OPERATOR(pg_catalog.=) tt.relid
 WHERE tt.root IS NULL AND con.contype OPERATOR(pg_catalog.=) 'f' AND con.conparentid OPERATOR(pg_catalog.=) 0
   AND NOT (tt.attnum OPERATOR(pg_catalog.=) ANY (con.confkey))
UNION ALL
-- 5. views over tenancy tables that run with the rights of a role that bypasses RLS
SELECT 'critical', v.oid::pg_catalog.regclass::text,
       pg_catalog.format('view over tenancy table %s is owned by %I, which bypasses row level security', tt.tbl,
                         pg_catalog.pg_get_userbyid(v.relowner)),
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
  JOIN pg_catalog.pg_roles o ON o.oid OPERATOR(pg_catalog.=) v.relowner
 WHERE v.oid OPERATOR(pg_catalog.<>) tt.relid
   AND (o.rolsuper OR o.rolbypassrls)
   AND NOT (v.relkind OPERATOR(pg_catalog.=) 'v' AND EXISTS (
        SELECT FROM pg_catalog.unnest(v.reloptions) opt
         WHERE pg_catalog.lower(opt) OPERATOR(pg_catalog.=) ANY (
               '{security_invoker=true,security_invoker=on,security_invoker=1,security_invoker=yes}'::text[])))
   AND NOT EXISTS (SELECT FROM ext WHERE ext.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
                                     AND ext.objid OPERATOR(pg_catalog.=) v.oid)
 GROUP BY v.oid, v.relkind, v.relowner, tt.tbl
UNION ALL
-- 6. login roles that bypass row level security or own tenancy tables
SELECT 'warning', pg_catalog.format('role %I', r.rolname),
       CASE WHEN r.rolsuper THEN 'superuser that can log in: bypasses row level security'
            WHEN r.rolbypassrls THEN 'role with BYPASSRLS that can log in: bypasses row level security'
            ELSE 'owner of tenancy tables that can log in: can switch their row level security off' END,
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
-- 7. TRUNCATE ignores row level security
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
-- 8. grants on payymo's settings
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
-- 9. SECURITY DEFINER functions whose search_path a caller can choose
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
ORDER BY 1, 2, 3
$$;
