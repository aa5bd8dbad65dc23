-- =========================================================================
-- Tenant data lifecycle: one tenant's archive (export_tenant), its restore
-- (restore_tenant), and a tenant's export of its own data (export_my_data)
-- =========================================================================
--
-- An archive is text, one line per item, each line "<tag> <body>" (the tag
-- is computed and checked in archive.c, keyed from payymo.key_file):
--
--   H {"payymo_archive": 1, "archive_id": ..., "tenant_id": ..., "slug": ...,
--      "key_version": ..., "key_fingerprint": ..., "payymo_version": ...,
--      "database": ..., "created_at": ...}
--   T {"table": k, "name": "public.bank_connections",
--      "tenant_column": "tenant_id", "columns": [["id", "bigint"], ...]}
--   R k (the row's columns as a record literal: "(1,abc,...)")
--   ...
--   E {"lines": N, "rows": {"public.bank_connections": 3, ...}}
--
-- Tables come in the order a restore inserts them: payymo.tenants (the
-- tenant's row), payymo.api_key_store (its keys' hashes), then the tables
-- under tenancy, parents before children.  Rows are written in the
-- database's text formats under fixed settings (DateStyle ISO, ...), so
-- they read back exactly; encrypted tokens stay ciphertext.

-- The tables an archive holds, in that order, with the columns it carries
-- (not generated ones) as [name, type] pairs and as a list for SQL.
CREATE FUNCTION payymo._archive_tables()
RETURNS TABLE (relid regclass, name text, tenant_column name, registry boolean,
               columns jsonb, column_list text)
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH tables AS (
        SELECT 'payymo.tenants'::pg_catalog.regclass AS relid, 'id'::name AS tenant_column,
               true AS registry, 0::bigint AS ord
        UNION ALL
        SELECT 'payymo.api_key_store'::pg_catalog.regclass, 'tenant_id', true, 1
        UNION ALL
        -- tenant_tables_in_delete_order() lists children first: reverse it.
        SELECT d.relid, d.tenant_column, false,
               2 OPERATOR(pg_catalog.+) pg_catalog.count(*) OVER ()
                 OPERATOR(pg_catalog.-) d.pos
          FROM payymo.tenant_tables_in_delete_order() WITH ORDINALITY AS d(relid, tenant_column, pos)
    )
    SELECT t.relid,
           pg_catalog.format('%I.%I', n.nspname, c.relname),
           t.tenant_column,
           t.registry,
           pg_catalog.jsonb_agg(pg_catalog.jsonb_build_array(a.attname,
                                pg_catalog.format_type(a.atttypid, a.atttypmod)) ORDER BY a.attnum),
           pg_catalog.string_agg(pg_catalog.quote_ident(a.attname), ', ' ORDER BY a.attnum)
      FROM tables t
      JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) t.relid
      JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
      JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) t.relid
     WHERE a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped
       AND a.attgenerated OPERATOR(pg_catalog.=) ''
     GROUP BY t.relid, t.tenant_column, t.registry, t.ord, n.nspname, c.relname
     ORDER BY t.ord
$$;

COMMENT ON FUNCTION payymo._archive_tables() IS
'Internal: the tables of a tenant archive in restore order (the registry, then tables under tenancy, parents first), with their columns';

CREATE FUNCTION payymo._archive_line(key_version integer, tenant_id bigint,
                                     archive_id text, line_no bigint, body text)
RETURNS text
LANGUAGE C STABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'payymo_archive_line';

COMMENT ON FUNCTION payymo._archive_line(integer, bigint, text, bigint, text) IS
'Internal: an archive line, the body behind its integrity tag; not granted to PUBLIC (it would forge archives)';

REVOKE EXECUTE ON FUNCTION payymo._archive_line(integer, bigint, text, bigint, text) FROM PUBLIC;

CREATE FUNCTION payymo._archive_first_bad(key_version integer, tenant_id bigint,
                                          archive_id text)
RETURNS bigint
LANGUAGE C STABLE STRICT PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'payymo_archive_first_bad';

COMMENT ON FUNCTION payymo._archive_first_bad(integer, bigint, text) IS
'Internal: the first line of the staged archive whose integrity tag is wrong for its place, or NULL';

REVOKE EXECUTE ON FUNCTION payymo._archive_first_bad(integer, bigint, text) FROM PUBLIC;

-- In C (archive.c), so that the archive streams into one tuplestore: rows
-- are read as each table's owner, under the tenant's context.  The text
-- formats are pinned so that the rows read back the same anywhere.
CREATE FUNCTION payymo.export_tenant(tenant_id bigint)
RETURNS SETOF text
LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET datestyle = 'ISO, YMD'
SET intervalstyle = 'postgres'
SET extra_float_digits = 3
SET bytea_output = 'hex'
AS 'MODULE_PATHNAME', 'payymo_export_tenant';

COMMENT ON FUNCTION payymo.export_tenant(bigint) IS
'One tenant''s archive, one line per item: its registry rows (tenant, API key hashes) and its rows in every table under tenancy, with a manifest and integrity tags keyed from payymo.key_file';

REVOKE EXECUTE ON FUNCTION payymo.export_tenant(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION payymo.export_tenant(bigint) TO payymo_admin;

-- restore_tenant reads the caller's archive table as the caller, into a
-- staging table that belongs to the extension's owner (so that no code of
-- the caller's runs in the SECURITY DEFINER part), then _restore_tenant
-- checks and applies it.
CREATE FUNCTION payymo._restore_stage()
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF pg_catalog.to_regclass('pg_temp.payymo_restore_lines') IS NOT NULL THEN
        DROP TABLE pg_temp.payymo_restore_lines;
    END IF;
    CREATE TEMPORARY TABLE payymo_restore_lines (n bigint PRIMARY KEY, line text NOT NULL)
        ON COMMIT DROP;
    GRANT INSERT ON pg_temp.payymo_restore_lines TO payymo_admin;
END
$$;

COMMENT ON FUNCTION payymo._restore_stage() IS
'Internal: creates the staging table restore_tenant reads an archive into';

REVOKE EXECUTE ON FUNCTION payymo._restore_stage() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION payymo._restore_stage() TO payymo_admin;

-- The table a manifest line names, checked against the archive: under
-- tenancy here with the same tenant column (or payymo's registry), every
-- archived column present with the same type, every other column able to
-- take its default.
CREATE FUNCTION payymo._restore_check_table(manifest jsonb, registry boolean)
RETURNS regclass
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    name text := manifest OPERATOR(pg_catalog.->>) 'name';
    tbl regclass := pg_catalog.to_regclass(name);
    col record;
BEGIN
    IF tbl IS NULL THEN
        RAISE EXCEPTION 'table % of the archive does not exist', name
            USING ERRCODE = 'undefined_table';
    END IF;
    IF NOT registry AND NOT EXISTS (
        SELECT FROM payymo.tenant_tables t
         WHERE t.relid OPERATOR(pg_catalog.=) tbl AND t.root IS NULL
           AND t.tenant_column OPERATOR(pg_catalog.=) (manifest OPERATOR(pg_catalog.->>) 'tenant_column'))
    THEN
        RAISE EXCEPTION 'table % of the archive is not under tenancy with tenant column "%"',
                        name, manifest OPERATOR(pg_catalog.->>) 'tenant_column'
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Put it under tenancy with payymo.enable_tenancy() first.';
    END IF;
    FOR col IN
        SELECT m.c OPERATOR(pg_catalog.->>) 0 AS attname, m.c OPERATOR(pg_catalog.->>) 1 AS archived,
               pg_catalog.format_type(a.atttypid, a.atttypmod) AS here, a.attgenerated
          FROM pg_catalog.jsonb_array_elements(manifest OPERATOR(pg_catalog.->) 'columns') AS m(c)
          LEFT JOIN pg_catalog.pg_attribute a
            ON a.attrelid OPERATOR(pg_catalog.=) tbl AND NOT a.attisdropped AND a.attnum OPERATOR(pg_catalog.>) 0
           AND a.attname OPERATOR(pg_catalog.=) (m.c OPERATOR(pg_catalog.->>) 0)
    LOOP
        IF col.here IS NULL THEN
            RAISE EXCEPTION 'column "%" of table % in the archive does not exist here', col.attname, name
                USING ERRCODE = 'undefined_column';
        ELSIF col.here OPERATOR(pg_catalog.<>) col.archived OR col.attgenerated OPERATOR(pg_catalog.<>) '' THEN
            RAISE EXCEPTION 'column "%" of table % has type % here and % in the archive',
                            col.attname, name,
                            col.here OPERATOR(pg_catalog.||) CASE WHEN col.attgenerated OPERATOR(pg_catalog.<>) '' THEN ' (generated)' ELSE '' END,
                            col.archived
                USING ERRCODE = 'datatype_mismatch';
        END IF;
    END LOOP;
    SELECT a.attname INTO col
      FROM pg_catalog.pg_attribute a
     WHERE a.attrelid OPERATOR(pg_catalog.=) tbl AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped
       AND a.attnotnull AND NOT a.atthasdef AND a.attidentity OPERATOR(pg_catalog.=) ''
       AND NOT (manifest OPERATOR(pg_catalog.->) 'columns') OPERATOR(pg_catalog.@>)
               pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_array(a.attname,
                   pg_catalog.format_type(a.atttypid, a.atttypmod)))
     ORDER BY a.attnum LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'column "%" of table % is not in the archive and has no default', col.attname, name
            USING ERRCODE = 'not_null_violation';
    END IF;
    RETURN tbl;
END
$$;

COMMENT ON FUNCTION payymo._restore_check_table(jsonb, boolean) IS
'Internal: the table an archive''s manifest line names, after checking that the archived rows fit it';

REVOKE EXECUTE ON FUNCTION payymo._restore_check_table(jsonb, boolean) FROM PUBLIC;

-- Inserts one table's archived rows (lines first_n < n < next_n), as the
-- table's owner: the record literals are read through a temporary table
-- with the archived columns, so that a column added since takes its
-- default (OFFSET 0 keeps the planner from parsing each literal once per
-- column); a row of another tenant is refused; sequences (serial and
-- identity) move past the restored ids.  Returns the rows inserted.
CREATE FUNCTION payymo._restore_rows(tbl regclass, manifest jsonb, tenant_id bigint)
RETURNS bigint
LANGUAGE plpgsql VOLATILE STRICT PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    k text := manifest OPERATOR(pg_catalog.->>) 'table';
    row_type name := 'payymo_restore_row_' OPERATOR(pg_catalog.||) k;
    tcol text := manifest OPERATOR(pg_catalog.->>) 'tenant_column';
    defs text;
    cols text;
    vals text;
    owner_role name;
    inserted bigint;
    detail text;
    seq record;
BEGIN
    SELECT pg_catalog.string_agg(pg_catalog.format('%I %s', a.attname,
               pg_catalog.format_type(a.atttypid, a.atttypmod)), ', ' ORDER BY c.ord),
           pg_catalog.string_agg(pg_catalog.quote_ident(a.attname), ', ' ORDER BY c.ord),
           pg_catalog.string_agg('(s.r).' OPERATOR(pg_catalog.||) pg_catalog.quote_ident(a.attname), ', ' ORDER BY c.ord)
      INTO defs, cols, vals
      FROM pg_catalog.jsonb_array_elements(manifest OPERATOR(pg_catalog.->) 'columns') WITH ORDINALITY AS c(c, ord)
      JOIN pg_catalog.pg_attribute a
        ON a.attrelid OPERATOR(pg_catalog.=) tbl AND NOT a.attisdropped
       AND a.attname OPERATOR(pg_catalog.=) (c.c OPERATOR(pg_catalog.->>) 0);
    IF pg_catalog.to_regclass('pg_temp.' OPERATOR(pg_catalog.||) row_type) IS NOT NULL THEN
        EXECUTE pg_catalog.format('DROP TABLE pg_temp.%I', row_type);
    END IF;
    EXECUTE pg_catalog.format('CREATE TEMPORARY TABLE %I (%s) ON COMMIT DROP', row_type, defs);
    SELECT r.rolname INTO owner_role FROM pg_catalog.pg_class c
      JOIN pg_catalog.pg_roles r ON r.oid OPERATOR(pg_catalog.=) c.relowner
     WHERE c.oid OPERATOR(pg_catalog.=) tbl;
    EXECUTE pg_catalog.format('GRANT SELECT ON pg_temp.payymo_restore_lines TO %I', owner_role);
    BEGIN
    inserted := payymo._as_table_owner(tbl, pg_catalog.format(
        'INSERT INTO %s (%s) OVERRIDING SYSTEM VALUE SELECT %s FROM ('
        '  SELECT l.n, pg_catalog.substr(l.line, %s)::pg_temp.%I AS r FROM pg_temp.payymo_restore_lines l'
        '   WHERE l.n OPERATOR(pg_catalog.>) %s AND l.n OPERATOR(pg_catalog.<) %s OFFSET 0) s'
        ' WHERE CASE WHEN (s.r).%I OPERATOR(pg_catalog.=) %s THEN true ELSE payymo._restore_refuse_row(s.n) END %s',
        tbl, cols, vals,
        37 OPERATOR(pg_catalog.+) pg_catalog.length(k), row_type,
        manifest OPERATOR(pg_catalog.->>) 'first_n', manifest OPERATOR(pg_catalog.->>) 'next_n',
        tcol, tenant_id,
        CASE manifest OPERATOR(pg_catalog.->>) 'name'
            WHEN 'payymo.tenants' THEN 'ON CONFLICT (id) DO NOTHING'
            WHEN 'payymo.api_key_store' THEN 'ON CONFLICT (key_id) DO NOTHING'
            ELSE '' END));
    EXCEPTION WHEN unique_violation THEN
        GET STACKED DIAGNOSTICS detail = PG_EXCEPTION_DETAIL;
        RAISE EXCEPTION 'a row of the archive has the same key as a row of another tenant in table %', tbl
            USING ERRCODE = 'unique_violation', DETAIL = detail,
                  HINT = 'A restore keeps ids.  Restore into a copy of the source database, or give the tables keys that cannot collide across databases (uuid, or disjoint sequence ranges).';
    END;
    EXECUTE pg_catalog.format('REVOKE SELECT ON pg_temp.payymo_restore_lines FROM %I', owner_role);
    FOR seq IN
        SELECT a.attname, pg_catalog.pg_get_serial_sequence(tbl::text, a.attname) AS name
          FROM pg_catalog.pg_attribute a
         WHERE a.attrelid OPERATOR(pg_catalog.=) tbl AND a.attnum OPERATOR(pg_catalog.>) 0
           AND NOT a.attisdropped
           AND pg_catalog.pg_get_serial_sequence(tbl::text, a.attname) IS NOT NULL
    LOOP
        PERFORM payymo._as_table_owner(tbl, pg_catalog.format(
            'SELECT pg_catalog.setval(%L, x.m) FROM (SELECT pg_catalog.max(%I) AS m FROM %s'
            ' WHERE %I OPERATOR(pg_catalog.=) %s) x'
            ' WHERE x.m OPERATOR(pg_catalog.>) COALESCE(pg_catalog.pg_sequence_last_value(%L), 0)',
            seq.name, seq.attname, tbl, tcol, tenant_id, seq.name));
    END LOOP;
    RETURN inserted;
END
$$;

COMMENT ON FUNCTION payymo._restore_rows(regclass, jsonb, bigint) IS
'Internal: inserts one table''s rows of the staged archive as the table''s owner';

REVOKE EXECUTE ON FUNCTION payymo._restore_rows(regclass, jsonb, bigint) FROM PUBLIC;

-- Table owners run this (inside _restore_rows' INSERT): it only raises.
CREATE FUNCTION payymo._restore_refuse_row(line_no bigint)
RETURNS boolean
LANGUAGE plpgsql VOLATILE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RAISE EXCEPTION 'archive line % holds a row of another tenant', line_no
        USING ERRCODE = 'insufficient_privilege';
END
$$;

COMMENT ON FUNCTION payymo._restore_refuse_row(bigint) IS
'Internal: raises the error for an archived row whose tenant is not the archive''s';

-- Checks the whole archive before writing anything: the header, the key,
-- every line's tag, the end line, and every table against its manifest.
-- Then: the tenant's row if it is missing, and under its context its keys
-- that are missing (a key revoked since stays revoked), and for each table
-- under tenancy, as its owner, the old rows out (children first, with
-- replace) and the archived rows in (parents first), ids kept.  One
-- transaction: all or nothing.
CREATE FUNCTION payymo._restore_tenant(replace boolean)
RETURNS TABLE (table_name text, rows bigint)
LANGUAGE plpgsql VOLATILE STRICT PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET datestyle = 'ISO, YMD'
SET intervalstyle = 'postgres'
AS $$
DECLARE
    total bigint;
    lo bigint;
    hi bigint;
    first_line text;
    last_line text;
    hdr jsonb;
    tid bigint;
    kv integer;
    aid text;
    bad bigint;
    t record;
    manifests jsonb := '[]';
BEGIN
    IF (SELECT c.relowner FROM pg_catalog.pg_class c
         WHERE c.oid OPERATOR(pg_catalog.=) 'pg_temp.payymo_restore_lines'::pg_catalog.regclass)
       OPERATOR(pg_catalog.<>) (SELECT r.oid FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) current_user)
    THEN
        RAISE EXCEPTION 'the staging table is not payymo''s'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    SELECT pg_catalog.count(*), pg_catalog.min(l.n), pg_catalog.max(l.n) INTO total, lo, hi
      FROM pg_temp.payymo_restore_lines l;
    IF total OPERATOR(pg_catalog.<) 2 OR lo OPERATOR(pg_catalog.<>) 1 OR hi OPERATOR(pg_catalog.<>) total THEN
        RAISE EXCEPTION 'archive is empty or incomplete'
            USING ERRCODE = 'invalid_binary_representation';
    END IF;

    -- The header names the tenant, the archive and the key of the tags.
    SELECT l.line INTO first_line FROM pg_temp.payymo_restore_lines l WHERE l.n OPERATOR(pg_catalog.=) 1;
    IF first_line OPERATOR(pg_catalog.!~) '^[0-9a-f]{32} H [{].*[}]$' THEN
        RAISE EXCEPTION 'not a payymo tenant archive'
            USING ERRCODE = 'invalid_binary_representation',
                  DETAIL = 'Its first line is not an archive header.';
    END IF;
    hdr := pg_catalog.substr(first_line, 36)::jsonb;
    IF (hdr OPERATOR(pg_catalog.->>) 'payymo_archive') IS DISTINCT FROM '1' THEN
        RAISE EXCEPTION 'unsupported payymo archive format %', hdr OPERATOR(pg_catalog.->>) 'payymo_archive'
            USING ERRCODE = 'feature_not_supported';
    END IF;
    tid := (hdr OPERATOR(pg_catalog.->>) 'tenant_id')::bigint;
    kv := (hdr OPERATOR(pg_catalog.->>) 'key_version')::integer;
    aid := hdr OPERATOR(pg_catalog.->>) 'archive_id';
    IF NOT EXISTS (SELECT FROM payymo.key_status() s
                    WHERE s.version OPERATOR(pg_catalog.=) kv
                      AND s.fingerprint OPERATOR(pg_catalog.=) (hdr OPERATOR(pg_catalog.->>) 'key_fingerprint')) THEN
        RAISE EXCEPTION 'archive was written with a key this server does not have'
            USING ERRCODE = 'invalid_binary_representation',
                  DETAIL = pg_catalog.format('It names root key version %s with fingerprint %s.',
                                             kv, hdr OPERATOR(pg_catalog.->>) 'key_fingerprint'),
                  HINT = 'Add that key to payymo.key_file and reload the server; payymo.key_status() shows the keys loaded.';
    END IF;

    bad := payymo._archive_first_bad(kv, tid, aid);
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'archive line % fails its integrity check', bad
            USING ERRCODE = 'invalid_binary_representation',
                  DETAIL = 'The line was changed, added, removed or moved since the archive was written.';
    END IF;
    SELECT l.line INTO last_line FROM pg_temp.payymo_restore_lines l WHERE l.n OPERATOR(pg_catalog.=) total;
    IF pg_catalog.substr(last_line, 34, 2) OPERATOR(pg_catalog.<>) 'E '
       OR (pg_catalog.substr(last_line, 36)::jsonb OPERATOR(pg_catalog.->>) 'lines')::bigint
          OPERATOR(pg_catalog.<>) total THEN
        RAISE EXCEPTION 'archive is incomplete'
            USING ERRCODE = 'invalid_binary_representation',
                  DETAIL = 'It does not end with the end line it was written with.';
    END IF;

    -- The manifest: table k's rows are the lines between its T line and the next.
    FOR t IN
        SELECT l.n AS first_n,
               COALESCE(pg_catalog.lead(l.n) OVER (ORDER BY l.n), total) AS next_n,
               pg_catalog.substr(l.line, 36)::jsonb AS manifest
          FROM pg_temp.payymo_restore_lines l
         WHERE pg_catalog.substr(l.line, 34, 2) OPERATOR(pg_catalog.=) 'T '
         ORDER BY l.n
    LOOP
        manifests := manifests OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_array(
            t.manifest OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object(
                'relid', payymo._restore_check_table(t.manifest,
                             t.manifest OPERATOR(pg_catalog.->>) 'name' OPERATOR(pg_catalog.=) ANY
                             (ARRAY['payymo.tenants', 'payymo.api_key_store']))::oid,
                'first_n', t.first_n, 'next_n', t.next_n));
    END LOOP;
    IF (manifests OPERATOR(pg_catalog.->) 0 OPERATOR(pg_catalog.->>) 'name') IS DISTINCT FROM 'payymo.tenants'
       OR (manifests OPERATOR(pg_catalog.->) 0 OPERATOR(pg_catalog.->>) 'first_n') IS DISTINCT FROM '2'
       OR (manifests OPERATOR(pg_catalog.->) 1 OPERATOR(pg_catalog.->>) 'name') IS DISTINCT FROM 'payymo.api_key_store' THEN
        RAISE EXCEPTION 'archive does not start with its tenant''s registry rows'
            USING ERRCODE = 'invalid_binary_representation';
    END IF;

    -- The tenant's row, unless it exists; then act for the tenant.
    SELECT x.slug INTO first_line FROM payymo.tenants x WHERE x.id OPERATOR(pg_catalog.=) tid;
    IF FOUND AND first_line OPERATOR(pg_catalog.<>) (hdr OPERATOR(pg_catalog.->>) 'slug') THEN
        RAISE EXCEPTION 'tenant % is "%" here, not "%"', tid, first_line, hdr OPERATOR(pg_catalog.->>) 'slug'
            USING ERRCODE = 'unique_violation',
                  HINT = 'Restore into a database where the tenant id is free or belongs to the same tenant.';
    END IF;
    IF NOT EXISTS (SELECT FROM payymo.tenants x WHERE x.id OPERATOR(pg_catalog.=) tid)
       AND EXISTS (SELECT FROM payymo.tenants x WHERE x.slug OPERATOR(pg_catalog.=) (hdr OPERATOR(pg_catalog.->>) 'slug')) THEN
        RAISE EXCEPTION 'tenant slug "%" is taken by another tenant', hdr OPERATOR(pg_catalog.->>) 'slug'
            USING ERRCODE = 'unique_violation',
                  HINT = 'Rename that tenant, or restore into another database.';
    END IF;
    table_name := 'payymo.tenants';
    rows := payymo._restore_rows('payymo.tenants', manifests OPERATOR(pg_catalog.->) 0, tid);
    RETURN NEXT;
    PERFORM payymo._act_for_tenant(tid);

    -- Old rows: refused, or (replace) deleted children first.
    FOR t IN
        SELECT d.relid, d.tenant_column FROM payymo.tenant_tables_in_delete_order() d
         WHERE d.relid::oid IN (SELECT (e OPERATOR(pg_catalog.->>) 'relid')::oid
                                  FROM pg_catalog.jsonb_array_elements(manifests) e)
    LOOP
        IF replace THEN
            PERFORM payymo._as_table_owner(t.relid, pg_catalog.format(
                'DELETE FROM %s WHERE %I OPERATOR(pg_catalog.=) %s', t.relid, t.tenant_column, tid));
        ELSIF payymo._as_table_owner(t.relid, pg_catalog.format(
                  'SELECT FROM %s WHERE %I OPERATOR(pg_catalog.=) %s LIMIT 1',
                  t.relid, t.tenant_column, tid)) OPERATOR(pg_catalog.>) 0 THEN
            RAISE EXCEPTION 'tenant % already has rows in table %', tid, t.relid
                USING ERRCODE = 'object_not_in_prerequisite_state',
                      HINT = 'Pass replace => true to replace the tenant''s rows with the archive''s.';
        END IF;
    END LOOP;

    -- New rows, parents first.
    FOR t IN SELECT e.value AS manifest
               FROM pg_catalog.jsonb_array_elements(manifests) WITH ORDINALITY e
              WHERE e.ordinality OPERATOR(pg_catalog.>) 1
              ORDER BY e.ordinality
    LOOP
        table_name := t.manifest OPERATOR(pg_catalog.->>) 'name';
        rows := payymo._restore_rows((t.manifest OPERATOR(pg_catalog.->>) 'relid')::oid::pg_catalog.regclass,
                                     t.manifest, tid);
        RETURN NEXT;
    END LOOP;
    RAISE LOG 'payymo: tenant % restored by role % from archive % (replace %)', tid, session_user, aid, replace;
END
$$;

COMMENT ON FUNCTION payymo._restore_tenant(boolean) IS
'Internal: checks and applies the archive staged by restore_tenant';

REVOKE EXECUTE ON FUNCTION payymo._restore_tenant(boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION payymo._restore_tenant(boolean) TO payymo_admin;

CREATE FUNCTION payymo.restore_tenant(archive regclass, replace boolean DEFAULT false)
RETURNS TABLE (table_name text, rows bigint)
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    cols name[];
    types oid[];
BEGIN
    IF archive IS NULL OR replace IS NULL THEN
        RAISE EXCEPTION 'archive and replace must not be null'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT pg_catalog.array_agg(a.attname ORDER BY a.attnum),
           pg_catalog.array_agg(a.atttypid ORDER BY a.attnum)
      INTO cols, types
      FROM (SELECT a.attname, a.attnum, a.atttypid FROM pg_catalog.pg_attribute a
             WHERE a.attrelid OPERATOR(pg_catalog.=) archive AND a.attnum OPERATOR(pg_catalog.>) 0
               AND NOT a.attisdropped
             ORDER BY a.attnum LIMIT 2) a;
    IF pg_catalog.cardinality(cols) IS DISTINCT FROM 2
       OR NOT types[1] OPERATOR(pg_catalog.=) ANY (ARRAY['int2'::regtype, 'int4'::regtype, 'int8'::regtype]::oid[])
       OR NOT types[2] OPERATOR(pg_catalog.=) ANY (ARRAY['text'::regtype, 'varchar'::regtype]::oid[]) THEN
        RAISE EXCEPTION 'archive table % must have an integer column and a text column first', archive
            USING ERRCODE = 'wrong_object_type',
                  HINT = 'CREATE TABLE stage (n bigserial, line text); \copy stage (line) FROM ''file''';
    END IF;
    PERFORM payymo._restore_stage();
    EXECUTE pg_catalog.format(
        'INSERT INTO pg_temp.payymo_restore_lines (n, line)'
        ' SELECT pg_catalog.row_number() OVER (ORDER BY %I), %I FROM %s',
        cols[1], cols[2], archive);
    RETURN QUERY SELECT * FROM payymo._restore_tenant(replace);
END
$$;

COMMENT ON FUNCTION payymo.restore_tenant(regclass, boolean) IS
'Restores one tenant from an archive of export_tenant, loaded into a table (ordering integer, line text): checks every line''s tag and the manifest first, refuses rows the tenant already has unless replace; all or nothing';

REVOKE EXECUTE ON FUNCTION payymo.restore_tenant(regclass, boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION payymo.restore_tenant(regclass, boolean) TO payymo_admin;

-- A tenant's own export: its rows (every table under tenancy the caller
-- may read, and its payymo.tenants row) as JSON lines, read as the caller
-- under its context.  Token ciphertexts are left out unless asked for.
CREATE FUNCTION payymo.export_my_data(with_secrets boolean DEFAULT false)
RETURNS SETOF text
LANGUAGE plpgsql VOLATILE STRICT PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    tid bigint := payymo._note_export();
    t record;
    cols text;
    omit text;
BEGIN
    -- Every column the caller may read (so payymo.users without its
    -- password hashes), of every table whose tenant column it may read.
    FOR t IN SELECT a.relid, a.name, a.tenant_column FROM payymo._archive_tables() a
              WHERE a.relid OPERATOR(pg_catalog.<>) 'payymo.api_key_store'::pg_catalog.regclass
                AND pg_catalog.has_column_privilege(a.relid, a.tenant_column, 'SELECT')
    LOOP
        SELECT pg_catalog.string_agg(pg_catalog.format('x.%I', a.attname), ', ' ORDER BY a.attnum),
               COALESCE(' OPERATOR(pg_catalog.-) ARRAY[' OPERATOR(pg_catalog.||)
                   pg_catalog.string_agg(pg_catalog.format('CASE WHEN payymo.is_token(y.%I) THEN %L END',
                                                           a.attname, a.attname), ', ')
                       FILTER (WHERE NOT with_secrets
                               AND pg_catalog.format_type(a.atttypid, NULL) OPERATOR(pg_catalog.=) 'bytea')
                   OPERATOR(pg_catalog.||) ']::text[]', '')
          INTO cols, omit
          FROM pg_catalog.pg_attribute a
         WHERE a.attrelid OPERATOR(pg_catalog.=) t.relid AND a.attnum OPERATOR(pg_catalog.>) 0
           AND NOT a.attisdropped
           AND pg_catalog.has_column_privilege(t.relid, a.attnum, 'SELECT');
        RETURN QUERY EXECUTE pg_catalog.format(
            'SELECT pg_catalog.jsonb_build_object(''table'', %L, ''row'', pg_catalog.to_jsonb(y)%s)::text'
            '  FROM (SELECT %s FROM %s x WHERE x.%I OPERATOR(pg_catalog.=) $1) y',
            t.name, omit, cols, t.relid, t.tenant_column) USING tid;
    END LOOP;
END
$$;

COMMENT ON FUNCTION payymo.export_my_data(boolean) IS
'The current tenant''s own rows as JSON lines ({"table": ..., "row": ...}), read under its context; leaves token ciphertexts out unless with_secrets; logged as a data_export event and charged to the tenant''s rate limit';

CREATE FUNCTION payymo._note_export()
RETURNS bigint
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'payymo_note_export';

COMMENT ON FUNCTION payymo._note_export() IS
'Internal: for export_my_data, the current tenant, after charging its rate limit and logging a data_export event; refuses without a context';
