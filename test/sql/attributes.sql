-- Freezes the attributes of every function in the extension, so that a
-- careless change to volatility, strictness, parallel safety, leakproofness,
-- SECURITY DEFINER, the pinned search_path or EXECUTE for PUBLIC or for
-- payymo_admin shows here.
SELECT p.oid::regprocedure AS function,
       p.provolatile AS vol,
       p.proisstrict AS strict,
       p.proparallel AS par,
       p.proleakproof AS leak,
       p.prosecdef AS secdef,
       p.proconfig AS config,
       EXISTS (SELECT FROM aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
                WHERE a.grantee = 0 AND a.privilege_type = 'EXECUTE') AS public_exec,
       has_function_privilege('payymo_admin', p.oid, 'EXECUTE') AS admin_exec
  FROM pg_proc p
  JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid
                  AND d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
  JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'payymo'
 ORDER BY p.oid::regprocedure::text;

-- Every SECURITY DEFINER function pins search_path (expect no rows).
SELECT p.oid::regprocedure AS unpinned
  FROM pg_proc p
  JOIN pg_namespace n ON n.oid = p.pronamespace AND n.nspname = 'payymo'
 WHERE p.prosecdef
   AND NOT coalesce('search_path=pg_catalog, pg_temp' = ANY (p.proconfig), false);

-- Tables and views: who may read them, and RLS flags.
SELECT c.oid::regclass AS relation, c.relkind, c.relrowsecurity AS rls,
       c.relforcerowsecurity AS force_rls,
       has_table_privilege('public', c.oid, 'SELECT') AS public_select,
       has_table_privilege('payymo_admin', c.oid, 'SELECT') AS admin_select
  FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'payymo'
 WHERE c.relkind IN ('r', 'v', 'p')
 ORDER BY c.oid::regclass::text;
