-- A deterministic description of everything the payymo extension owns, for
-- comparing an upgraded installation with a fresh one (test/shell/upgrade.t):
-- functions with their attributes, bodies, grants and comments; relations
-- with columns, constraints, indexes, policies, triggers, grants, options and
-- comments; event triggers; dumped configuration tables; the admin role.
-- No OIDs are printed, only names.
\pset footer off
\pset pager off
\pset format unaligned
\pset tuples_only on

WITH members AS (
    SELECT d.classid, d.objid
      FROM pg_depend d
      JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'payymo'
     WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
)
SELECT 'function ' || p.oid::regprocedure
       || ' returns=' || pg_get_function_result(p.oid)
       || ' args=' || pg_get_function_arguments(p.oid)
       || ' kind=' || p.prokind::text || ' lang=' || l.lanname
       || ' vol=' || p.provolatile::text || ' strict=' || p.proisstrict
       || ' par=' || p.proparallel::text || ' leak=' || p.proleakproof
       || ' secdef=' || p.prosecdef || ' cost=' || p.procost || ' rows=' || p.prorows
       || ' config=' || coalesce(p.proconfig::text, '-')
       || ' owner_super=' || (SELECT rolsuper FROM pg_roles WHERE oid = p.proowner)
       || ' acl=' || coalesce((SELECT string_agg(CASE WHEN a.grantee = 0 THEN 'PUBLIC'
                                                     ELSE pg_get_userbyid(a.grantee)::text END
                                                || ':' || a.privilege_type, ',' ORDER BY 1)
                                 FROM aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
                                WHERE a.grantee <> p.proowner), '-')
       || ' body=' || md5(coalesce(p.prosrc, '') || coalesce(p.probin, ''))
       || ' comment=' || coalesce(obj_description(p.oid, 'pg_proc'), '-')
  FROM pg_proc p
  JOIN pg_language l ON l.oid = p.prolang
 WHERE (p.oid) IN (SELECT objid FROM members WHERE classid = 'pg_proc'::regclass)
UNION ALL
SELECT 'relation ' || c.oid::regclass || ' kind=' || c.relkind::text
       || ' rls=' || c.relrowsecurity || ' force=' || c.relforcerowsecurity
       || ' options=' || coalesce(c.reloptions::text, '-')
       || ' owner_super=' || (SELECT rolsuper FROM pg_roles WHERE oid = c.relowner)
       || ' acl=' || coalesce((SELECT string_agg(CASE WHEN a.grantee = 0 THEN 'PUBLIC'
                                                     ELSE pg_get_userbyid(a.grantee)::text END
                                                || ':' || a.privilege_type, ',' ORDER BY 1)
                                 FROM aclexplode(coalesce(c.relacl, acldefault(
                                          CASE WHEN c.relkind = 'S' THEN 's' ELSE 'r' END::"char", c.relowner))) a
                                WHERE a.grantee <> c.relowner), '-')
       || ' view=' || coalesce(md5(pg_get_viewdef(c.oid)), '-')
       || ' comment=' || coalesce(obj_description(c.oid, 'pg_class'), '-')
  FROM pg_class c
 WHERE c.oid IN (SELECT objid FROM members WHERE classid = 'pg_class'::regclass)
UNION ALL
SELECT 'column ' || a.attrelid::regclass || '.' || a.attname || ' #' || a.attnum
       || ' ' || format_type(a.atttypid, a.atttypmod)
       || ' notnull=' || a.attnotnull || ' identity=' || a.attidentity::text
       || ' default=' || coalesce(pg_get_expr(d.adbin, d.adrelid), '-')
       || ' acl=' || coalesce(a.attacl::text, '-')
  FROM pg_attribute a
  LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
 WHERE a.attrelid IN (SELECT objid FROM members WHERE classid = 'pg_class'::regclass)
   AND a.attnum > 0 AND NOT a.attisdropped
UNION ALL
SELECT 'constraint ' || con.conrelid::regclass || ' ' || con.conname || ' '
       || pg_get_constraintdef(con.oid)
  FROM pg_constraint con
 WHERE con.conrelid IN (SELECT objid FROM members WHERE classid = 'pg_class'::regclass)
UNION ALL
SELECT 'index ' || i.indrelid::regclass || ' ' || pg_get_indexdef(i.indexrelid)
  FROM pg_index i
 WHERE i.indrelid IN (SELECT objid FROM members WHERE classid = 'pg_class'::regclass)
UNION ALL
SELECT 'policy ' || pol.polrelid::regclass || ' ' || pol.polname
       || ' permissive=' || pol.polpermissive || ' cmd=' || pol.polcmd::text
       || ' roles=' || pol.polroles::text
       || ' using=' || coalesce(pg_get_expr(pol.polqual, pol.polrelid), '-')
       || ' check=' || coalesce(pg_get_expr(pol.polwithcheck, pol.polrelid), '-')
  FROM pg_policy pol
 WHERE pol.polrelid IN (SELECT objid FROM members WHERE classid = 'pg_class'::regclass)
UNION ALL
SELECT 'trigger ' || g.tgrelid::regclass || ' ' || pg_get_triggerdef(g.oid)
       || ' enabled=' || g.tgenabled::text
  FROM pg_trigger g
 WHERE g.tgrelid IN (SELECT objid FROM members WHERE classid = 'pg_class'::regclass)
   AND NOT g.tgisinternal
UNION ALL
SELECT 'event trigger ' || evtname || ' on ' || evtevent || ' runs ' || evtfoid::regproc
       || ' enabled=' || evtenabled::text || ' tags=' || coalesce(evttags::text, '-')
  FROM pg_event_trigger
 WHERE oid IN (SELECT objid FROM members WHERE classid = 'pg_event_trigger'::regclass)
UNION ALL
SELECT 'type ' || t.oid::regtype
  FROM pg_type t
 WHERE t.oid IN (SELECT objid FROM members WHERE classid = 'pg_type'::regclass)
UNION ALL
SELECT 'dumped ' || cfg::regclass || ' where=' || coalesce(cond, '-')
  FROM pg_extension e,
       unnest(e.extconfig, e.extcondition) AS x(cfg, cond)
 WHERE e.extname = 'payymo'
UNION ALL
SELECT 'extension payymo version=' || extversion || ' schema=' || extnamespace::regnamespace
       || ' relocatable=' || extrelocatable
  FROM pg_extension WHERE extname = 'payymo'
UNION ALL
SELECT 'schema payymo owner_super=' || (SELECT rolsuper FROM pg_roles WHERE oid = n.nspowner)
       || ' acl=' || coalesce(n.nspacl::text, '-')
       || ' comment=' || coalesce(obj_description(n.oid, 'pg_namespace'), '-')
  FROM pg_namespace n WHERE n.nspname = 'payymo'
ORDER BY 1;
