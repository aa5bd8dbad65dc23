/* payymo--0.1.0.sql */

\echo Use "CREATE EXTENSION payymo" to load this file. \quit

-- Everything is schema-qualified (operators too), so that no search_path can
-- redirect a call made by this script or by the SECURITY DEFINER functions.
-- Sections: context, tenants and API keys.  Later sections add tenancy,
-- crypto, configuration and observability.

GRANT USAGE ON SCHEMA payymo TO PUBLIC;

-- =========================================================================
-- Context
-- =========================================================================

CREATE FUNCTION payymo.current_tenant()
RETURNS bigint
LANGUAGE C STABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'payymo_current_tenant';

COMMENT ON FUNCTION payymo.current_tenant() IS
'The current tenant; raises 42501 when no tenant context is set';

CREATE FUNCTION payymo.clear_tenant()
RETURNS void
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'payymo_clear_tenant';

COMMENT ON FUNCTION payymo.clear_tenant() IS
'Drops the tenant context';

-- =========================================================================
-- Tenants and API keys
-- =========================================================================

CREATE TABLE payymo.tenants (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    slug text NOT NULL UNIQUE
        CONSTRAINT tenants_slug_format
        CHECK (slug OPERATOR(pg_catalog.~) '^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$'),
    name text NOT NULL
        CONSTRAINT tenants_name_length
        CHECK (pg_catalog.length(name) OPERATOR(pg_catalog.<=) 200
               AND pg_catalog.btrim(name) OPERATOR(pg_catalog.<>) ''),
    status text NOT NULL DEFAULT 'active'
        CONSTRAINT tenants_status_valid
        CHECK (status OPERATOR(pg_catalog.=) ANY (ARRAY['active', 'suspended'])),
    rate_limit_per_second integer
        CONSTRAINT tenants_rate_limit_positive
        CHECK (rate_limit_per_second OPERATOR(pg_catalog.>) 0),
    created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);

COMMENT ON TABLE payymo.tenants IS
'One row per tenant; under tenancy: a tenant context sees only its own row';

-- A tenant sees its own row; administration goes through the functions below.
ALTER TABLE payymo.tenants ENABLE ROW LEVEL SECURITY;
ALTER TABLE payymo.tenants FORCE ROW LEVEL SECURITY;
CREATE POLICY payymo_tenant_isolation ON payymo.tenants
    USING (id OPERATOR(pg_catalog.=) payymo.current_tenant());
GRANT SELECT ON payymo.tenants TO PUBLIC;

CREATE TABLE payymo.api_key_store (
    key_id text PRIMARY KEY
        CONSTRAINT api_key_store_key_id_format
        CHECK (key_id OPERATOR(pg_catalog.~) '^[a-z2-7]{16}$'),
    tenant_id bigint NOT NULL REFERENCES payymo.tenants (id) ON DELETE CASCADE,
    secret_hash bytea NOT NULL
        CONSTRAINT api_key_store_hash_length
        CHECK (pg_catalog.length(secret_hash) OPERATOR(pg_catalog.=) 32),
    hint text NOT NULL,
    label text
        CONSTRAINT api_key_store_label_length
        CHECK (pg_catalog.length(label) OPERATOR(pg_catalog.<=) 200),
    created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    expires_at timestamptz,
    revoked_at timestamptz,
    last_used_at timestamptz
);

CREATE INDEX api_key_store_tenant_id_idx ON payymo.api_key_store (tenant_id);

COMMENT ON TABLE payymo.api_key_store IS
'API keys: BLAKE2b-256 hashes only, never the key; read it through payymo.api_keys';

REVOKE ALL ON payymo.api_key_store FROM PUBLIC;

SELECT pg_catalog.pg_extension_config_dump('payymo.tenants', '');
SELECT pg_catalog.pg_extension_config_dump('payymo.tenants_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('payymo.api_key_store', '');

CREATE VIEW payymo.api_keys AS
SELECT key_id, tenant_id, label, hint, created_at, expires_at, revoked_at,
       last_used_at,
       CASE
           WHEN revoked_at IS NOT NULL THEN 'revoked'
           WHEN expires_at OPERATOR(pg_catalog.<=) pg_catalog.now() THEN 'expired'
           ELSE 'active'
       END AS status
  FROM payymo.api_key_store;

COMMENT ON VIEW payymo.api_keys IS
'API keys without their hashes: id, tenant, label, hint, lifetime and status';

REVOKE ALL ON payymo.api_keys FROM PUBLIC;

-- Not SECURITY DEFINER: it reads the key and tenant rows through their
-- primary-key indexes in C (src/apikey.c), which checks no table privileges.
CREATE FUNCTION payymo.set_tenant(api_key text, is_local boolean DEFAULT true)
RETURNS bigint
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'payymo_set_tenant';

COMMENT ON FUNCTION payymo.set_tenant(text, boolean) IS
'Verifies an API key and sets its tenant as the context (for the transaction by default); any failure raises 28000 and clears the context';

CREATE FUNCTION payymo.assume_tenant(tenant_id bigint, is_local boolean DEFAULT true)
RETURNS void
LANGUAGE C VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'payymo_assume_tenant';

COMMENT ON FUNCTION payymo.assume_tenant(bigint, boolean) IS
'Sets the context without a key, for jobs and support tools; not granted to PUBLIC; every use is logged';

REVOKE EXECUTE ON FUNCTION payymo.assume_tenant(bigint, boolean) FROM PUBLIC;

CREATE FUNCTION payymo.issue_api_key(tenant_id bigint, label text DEFAULT NULL,
                                     expires_at timestamptz DEFAULT NULL)
RETURNS text
LANGUAGE C VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'payymo_issue_api_key';

COMMENT ON FUNCTION payymo.issue_api_key(bigint, text, timestamptz) IS
'Issues an API key for a tenant and returns it once; only its hash is stored';

REVOKE EXECUTE ON FUNCTION payymo.issue_api_key(bigint, text, timestamptz) FROM PUBLIC;

CREATE FUNCTION payymo.revoke_api_key(key_id text)
RETURNS boolean
LANGUAGE sql VOLATILE STRICT PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    WITH revoked AS (
        UPDATE payymo.api_key_store k
           SET revoked_at = pg_catalog.now()
         WHERE k.key_id OPERATOR(pg_catalog.=) revoke_api_key.key_id
           AND k.revoked_at IS NULL
        RETURNING 1)
    SELECT pg_catalog.count(*) OPERATOR(pg_catalog.>) 0 FROM revoked
$$;

COMMENT ON FUNCTION payymo.revoke_api_key(text) IS
'Revokes an API key (by key id); returns false when it was unknown or already revoked';

REVOKE EXECUTE ON FUNCTION payymo.revoke_api_key(text) FROM PUBLIC;

CREATE FUNCTION payymo.create_tenant(slug text, name text,
                                     OUT tenant_id bigint, OUT api_key text)
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF slug IS NULL OR name IS NULL THEN
        RAISE EXCEPTION 'slug and name must not be null'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF slug OPERATOR(pg_catalog.!~) '^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$' THEN
        RAISE EXCEPTION 'invalid tenant slug "%"', pg_catalog.left(slug, 63)
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'A slug is 3 to 63 characters of a-z, 0-9 and "-", not starting or ending with "-".';
    END IF;
    IF pg_catalog.btrim(name) OPERATOR(pg_catalog.=) '' OR pg_catalog.length(name) OPERATOR(pg_catalog.>) 200 THEN
        RAISE EXCEPTION 'invalid tenant name'
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'A name is 1 to 200 characters and not blank.';
    END IF;
    BEGIN
        INSERT INTO payymo.tenants (slug, name)
        VALUES (create_tenant.slug, create_tenant.name)
        RETURNING payymo.tenants.id INTO tenant_id;
    EXCEPTION WHEN unique_violation THEN
        RAISE EXCEPTION 'tenant slug "%" is already taken', slug
            USING ERRCODE = 'unique_violation';
    END;
    -- Rows carrying their tenant are accepted from this (superuser-owned)
    -- function without a context: see stamp_tenant.
    INSERT INTO payymo.tenant_settings (tenant_id, setting_key, setting_value)
    SELECT create_tenant.tenant_id, d.setting_key, d.setting_value FROM payymo.default_settings d;
    INSERT INTO payymo.tenant_features (tenant_id, feature_key, enabled)
    SELECT create_tenant.tenant_id, d.feature_key, d.enabled FROM payymo.default_features d;
    api_key := payymo.issue_api_key(tenant_id, 'initial key');
END
$$;

COMMENT ON FUNCTION payymo.create_tenant(text, text) IS
'Creates a tenant with the default settings and features and its first API key, atomically';

REVOKE EXECUTE ON FUNCTION payymo.create_tenant(text, text) FROM PUBLIC;

CREATE FUNCTION payymo.suspend_tenant(tenant_id bigint)
RETURNS void
LANGUAGE plpgsql VOLATILE STRICT PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    UPDATE payymo.tenants t SET status = 'suspended', updated_at = pg_catalog.now()
     WHERE t.id OPERATOR(pg_catalog.=) suspend_tenant.tenant_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'tenant % does not exist', suspend_tenant.tenant_id
            USING ERRCODE = 'undefined_object';
    END IF;
END
$$;

COMMENT ON FUNCTION payymo.suspend_tenant(bigint) IS
'Suspends a tenant: its API keys stop working';

REVOKE EXECUTE ON FUNCTION payymo.suspend_tenant(bigint) FROM PUBLIC;

CREATE FUNCTION payymo.resume_tenant(tenant_id bigint)
RETURNS void
LANGUAGE plpgsql VOLATILE STRICT PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    UPDATE payymo.tenants t SET status = 'active', updated_at = pg_catalog.now()
     WHERE t.id OPERATOR(pg_catalog.=) resume_tenant.tenant_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'tenant % does not exist', resume_tenant.tenant_id
            USING ERRCODE = 'undefined_object';
    END IF;
END
$$;

COMMENT ON FUNCTION payymo.resume_tenant(bigint) IS
'Resumes a suspended tenant';

REVOKE EXECUTE ON FUNCTION payymo.resume_tenant(bigint) FROM PUBLIC;

-- =========================================================================
-- Token encryption
-- =========================================================================

CREATE FUNCTION payymo.encrypt_token(plaintext text, context text DEFAULT '')
RETURNS bytea
LANGUAGE C VOLATILE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'payymo_encrypt_token';

COMMENT ON FUNCTION payymo.encrypt_token(text, text) IS
'Encrypts a token for the current tenant and the context string (XChaCha20-Poly1305 under the newest key); NULL raises 22004';

CREATE FUNCTION payymo.decrypt_token(ciphertext bytea, context text DEFAULT '')
RETURNS text
LANGUAGE C STABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'payymo_decrypt_token';

COMMENT ON FUNCTION payymo.decrypt_token(bytea, text) IS
'Decrypts a token written for the current tenant and the context string; anything else raises 22P03 (22023 for a key version not loaded)';

CREATE FUNCTION payymo.reencrypt_token(ciphertext bytea, context text DEFAULT '')
RETURNS bytea
LANGUAGE C VOLATILE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'payymo_reencrypt_token';

COMMENT ON FUNCTION payymo.reencrypt_token(bytea, text) IS
'Decrypts a token of the current tenant and encrypts it again under the newest key version';

CREATE FUNCTION payymo.token_key_version(ciphertext bytea)
RETURNS integer
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'payymo_token_key_version';

COMMENT ON FUNCTION payymo.token_key_version(bytea) IS
'The root key version a token was encrypted with; 22P03 if the value is not a token';

CREATE FUNCTION payymo.is_token(ciphertext bytea)
RETURNS boolean
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF
AS 'MODULE_PATHNAME', 'payymo_is_token';

COMMENT ON FUNCTION payymo.is_token(bytea) IS
'True when the value has the shape of a payymo token (for CHECK constraints that keep plaintext out); does not decrypt';

CREATE FUNCTION payymo.key_status()
RETURNS TABLE (version integer, active boolean, fingerprint text)
LANGUAGE C STABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'payymo_key_status';

COMMENT ON FUNCTION payymo.key_status() IS
'The loaded root key versions, the one that encrypts, and a fingerprint of each (never key bytes); 55000 if the key file is unusable';

CREATE FUNCTION payymo.reencrypt_token_batch(tbl regclass, token_column name,
                                             context text DEFAULT '',
                                             tenant_column name DEFAULT 'tenant_id',
                                             batch_size integer DEFAULT 1000)
RETURNS bigint
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    newest integer;
    done bigint := 0;
    remaining bigint;
    tenant bigint;
BEGIN
    IF tbl IS NULL OR token_column IS NULL OR context IS NULL
       OR tenant_column IS NULL OR batch_size IS NULL THEN
        RAISE EXCEPTION 'arguments of payymo.reencrypt_token_batch must not be null'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF batch_size OPERATOR(pg_catalog.<) 1 THEN
        RAISE EXCEPTION 'batch_size must be positive'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT s.version INTO newest FROM payymo.key_status() s WHERE s.active;

    IF NOT EXISTS (SELECT FROM pg_catalog.pg_class c
                    WHERE c.oid OPERATOR(pg_catalog.=) tbl
                      AND c.relkind OPERATOR(pg_catalog.=) ANY ('{r,p}'::"char"[]))
       OR (SELECT a.atttypid FROM pg_catalog.pg_attribute a
            WHERE a.attrelid OPERATOR(pg_catalog.=) tbl AND a.attname OPERATOR(pg_catalog.=) token_column
              AND NOT a.attisdropped) IS DISTINCT FROM 'pg_catalog.bytea'::pg_catalog.regtype
       OR NOT COALESCE((SELECT a.atttypid FROM pg_catalog.pg_attribute a
            WHERE a.attrelid OPERATOR(pg_catalog.=) tbl AND a.attname OPERATOR(pg_catalog.=) tenant_column
              AND NOT a.attisdropped)
           OPERATOR(pg_catalog.=) ANY ('{int4,int8}'::pg_catalog.regtype[]::pg_catalog.oid[]), false) THEN
        RAISE EXCEPTION '% is not a table with a bytea column % and an integer or bigint column %',
                        tbl, token_column, tenant_column
            USING ERRCODE = 'wrong_object_type';
    END IF;

    -- Tenant by tenant, under its context and as the table's owner (so the
    -- table's own code -- triggers, index expressions -- never runs with this
    -- function's rights): lock rows still under an older key, skipping rows
    -- other sessions hold, and rewrite them.
    FOR tenant IN SELECT t.id FROM payymo.tenants t ORDER BY t.id LOOP
        EXIT WHEN done OPERATOR(pg_catalog.>=) batch_size;
        PERFORM payymo.assume_tenant(tenant, true);
        done := done OPERATOR(pg_catalog.+) payymo._as_table_owner(tbl, pg_catalog.format(
            'WITH batch AS ('
            '    SELECT ctid AS row_ctid FROM %2$s'
            '     WHERE %6$I OPERATOR(pg_catalog.=) %7$s'
            '       AND %1$I IS NOT NULL'
            '       AND payymo.token_key_version(%1$I) OPERATOR(pg_catalog.<>) %3$s'
            '     LIMIT %4$s'
            '       FOR UPDATE SKIP LOCKED)'
            ' UPDATE %2$s t'
            '    SET %1$I = payymo.reencrypt_token(t.%1$I, %5$L)'
            '   FROM batch'
            '  WHERE t.ctid OPERATOR(pg_catalog.=) batch.row_ctid',
            token_column, tbl, newest, batch_size OPERATOR(pg_catalog.-) done, context,
            tenant_column, tenant));
    END LOOP;
    PERFORM payymo.clear_tenant();

    -- Nothing left that we could lock: say so if rows remain locked by others.
    IF done OPERATOR(pg_catalog.=) 0 THEN
        remaining := payymo._as_table_owner(tbl, pg_catalog.format(
            'SELECT FROM %2$s WHERE %1$I IS NOT NULL'
            '   AND payymo.token_key_version(%1$I) OPERATOR(pg_catalog.<>) %3$s',
            token_column, tbl, newest), true);
        IF remaining OPERATOR(pg_catalog.>) 0 THEN
            RAISE WARNING 'payymo: % rows of %.% are locked by other transactions and still use an older key',
                remaining, tbl, token_column
                USING HINT = 'Run the rotation again when those transactions have finished.';
        END IF;
    END IF;
    RETURN done;
END
$$;

COMMENT ON FUNCTION payymo.reencrypt_token_batch(regclass, name, text, name, integer) IS
'Key rotation: re-encrypts up to batch_size rows of a token column that are not under the newest key (FOR UPDATE SKIP LOCKED), each under its row''s tenant; returns the rows done, 0 when finished';

REVOKE EXECUTE ON FUNCTION payymo.reencrypt_token_batch(regclass, name, text, name, integer) FROM PUBLIC;

CREATE PROCEDURE payymo.rotate_token_column(tbl regclass, token_column name,
                                            context text DEFAULT '',
                                            tenant_column name DEFAULT 'tenant_id',
                                            batch_size integer DEFAULT 1000)
LANGUAGE plpgsql
AS $$
DECLARE
    done bigint;
    total bigint := 0;
BEGIN
    LOOP
        done := payymo.reencrypt_token_batch(tbl, token_column, context,
                                             tenant_column, batch_size);
        COMMIT;
        total := total OPERATOR(pg_catalog.+) done;
        EXIT WHEN done OPERATOR(pg_catalog.=) 0;
    END LOOP;
    RAISE NOTICE 'payymo: re-encrypted % rows of %.%', total, tbl, token_column;
END
$$;

COMMENT ON PROCEDURE payymo.rotate_token_column(regclass, name, text, name, integer) IS
'Key rotation: calls reencrypt_token_batch and commits after each batch until no row is under an older key; resumable; CALL it outside a transaction block';

REVOKE EXECUTE ON PROCEDURE payymo.rotate_token_column(regclass, name, text, name, integer) FROM PUBLIC;

-- =========================================================================
-- Observability and limits
-- =========================================================================

-- Need shared_preload_libraries = 'payymo'; otherwise they raise 55000.

CREATE FUNCTION payymo.tenant_stats(
    OUT tenant_id bigint,
    OUT statements bigint,
    OUT rows bigint,
    OUT total_exec_time double precision,
    OUT denied bigint,
    OUT rate_limited bigint,
    OUT last_activity timestamptz)
RETURNS SETOF record
LANGUAGE C VOLATILE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'payymo_tenant_stats';

COMMENT ON FUNCTION payymo.tenant_stats() IS
'Per-tenant counters from shared memory (use the view payymo.tenant_stats); raises 55000 without shared_preload_libraries';

REVOKE EXECUTE ON FUNCTION payymo.tenant_stats() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION payymo.tenant_stats() TO pg_monitor;

CREATE VIEW payymo.tenant_stats AS
SELECT s.tenant_id, t.slug, s.statements, s.rows, s.total_exec_time,
       s.denied, s.rate_limited, s.last_activity
  FROM payymo.tenant_stats() s
  LEFT JOIN payymo.tenants t ON t.id OPERATOR(pg_catalog.=) s.tenant_id;

COMMENT ON VIEW payymo.tenant_stats IS
'Per tenant: top-level statements, rows, total execution time (ms), denied and rate-limited attempts, last activity; pg_monitor and superusers only';

REVOKE ALL ON payymo.tenant_stats FROM PUBLIC;
GRANT SELECT ON payymo.tenant_stats TO pg_monitor;

CREATE FUNCTION payymo.tenant_stats_reset(tenant_id bigint DEFAULT NULL)
RETURNS void
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'payymo_tenant_stats_reset';

COMMENT ON FUNCTION payymo.tenant_stats_reset(bigint) IS
'Zeroes the counters in payymo.tenant_stats, of one tenant or (NULL) all; keeps rate-limit buckets; raises 55000 without shared_preload_libraries';

REVOKE EXECUTE ON FUNCTION payymo.tenant_stats_reset(bigint) FROM PUBLIC;

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

-- Ownership tickets (src/tenancy.c): the public functions are SECURITY
-- INVOKER wrappers that check, as the real caller, that it owns the tables,
-- then call a SECURITY DEFINER worker that consumes the ticket.
CREATE FUNCTION payymo._issue_ticket(tbl regclass, tbl2 regclass)
RETURNS void
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'payymo_issue_ticket';

COMMENT ON FUNCTION payymo._issue_ticket(regclass, regclass) IS
'Internal: raises 42501 unless current_user owns the tables and their partitions, then records a one-call ticket for them';

CREATE FUNCTION payymo._take_ticket(tbl regclass, tbl2 regclass)
RETURNS void
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'payymo_take_ticket';

COMMENT ON FUNCTION payymo._take_ticket(regclass, regclass) IS
'Internal: consumes the ticket for the tables, raising 42501 when there is none';

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

-- What is wrong with a registered table, or NULL when it is intact.
CREATE FUNCTION payymo._tenancy_problem(tbl regclass)
RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE
        WHEN NOT c.relrowsecurity THEN 'row level security is disabled'
        WHEN NOT c.relforcerowsecurity THEN 'row level security is not forced'
        WHEN a.attnum IS NULL THEN pg_catalog.format('tenant column %I is missing', t.tenant_column)
        WHEN NOT a.attnotnull THEN pg_catalog.format('tenant column %I allows NULL', t.tenant_column)
        WHEN p.oid IS NULL THEN 'policy payymo_tenant_isolation is missing'
        WHEN NOT p.polpermissive
          OR p.polcmd OPERATOR(pg_catalog.<>) '*'
          OR p.polroles OPERATOR(pg_catalog.<>) '{0}'::oid[]
          OR pg_catalog.pg_get_expr(p.polqual, p.polrelid) IS DISTINCT FROM t.policy_qual
          OR pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid) IS DISTINCT FROM t.policy_qual
            THEN 'policy payymo_tenant_isolation was changed'
        WHEN NOT EXISTS (
            SELECT FROM pg_catalog.pg_trigger g
             WHERE g.tgrelid OPERATOR(pg_catalog.=) c.oid
               AND g.tgname OPERATOR(pg_catalog.=) 'payymo_stamp_tenant'
               AND g.tgfoid OPERATOR(pg_catalog.=) 'payymo.stamp_tenant()'::pg_catalog.regprocedure
               AND g.tgenabled OPERATOR(pg_catalog.=) ANY ('{O,A}'::"char"[])
               AND pg_catalog.encode(g.tgargs, 'escape')
                   OPERATOR(pg_catalog.=) (t.tenant_column::text OPERATOR(pg_catalog.||) '\000'))
            THEN 'trigger payymo_stamp_tenant is missing or disabled'
        WHEN NOT EXISTS (
            SELECT FROM pg_catalog.pg_trigger g
             WHERE g.tgrelid OPERATOR(pg_catalog.=) c.oid
               AND g.tgname OPERATOR(pg_catalog.=) 'payymo_refuse_truncate'
               AND g.tgfoid OPERATOR(pg_catalog.=) 'payymo.refuse_truncate()'::pg_catalog.regprocedure
               AND g.tgenabled OPERATOR(pg_catalog.=) ANY ('{O,A}'::"char"[]))
            THEN 'trigger payymo_refuse_truncate is missing or disabled'
        END
      FROM payymo.tenant_tables t
      JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) t.relid
      LEFT JOIN pg_catalog.pg_attribute a
        ON a.attrelid OPERATOR(pg_catalog.=) c.oid
       AND a.attname OPERATOR(pg_catalog.=) t.tenant_column
       AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped
      LEFT JOIN pg_catalog.pg_policy p
        ON p.polrelid OPERATOR(pg_catalog.=) c.oid
       AND p.polname OPERATOR(pg_catalog.=) 'payymo_tenant_isolation'
     WHERE t.relid OPERATOR(pg_catalog.=) tbl
$$;

COMMENT ON FUNCTION payymo._tenancy_problem(regclass) IS
'Internal: what weakens a registered table under tenancy, or NULL when it is intact';

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
    key_cols int2[];
    key_list text;
    part regclass;
    prefix text;
    owner regrole;
    granted boolean;
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
                  DETAIL = 'A temporary table cannot reference payymo.tenants.';
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
                  DETAIL = 'A table under tenancy gets a unique key (tenant column, primary key) that references within the tenant point to.',
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

    -- Unregister while working, so that the DDL guard lets the repairs through.
    DELETE FROM payymo.tenant_tables t
     WHERE t.relid OPERATOR(pg_catalog.=) tbl OR t.root OPERATOR(pg_catalog.=) tbl;

    IF att.attnum IS NULL THEN
        -- Existing rows get the current tenant (no context: 42501 unless empty).
        PERFORM payymo._as_table_owner(tbl, pg_catalog.format(
            'ALTER TABLE %s ADD COLUMN %I bigint', tbl, tenant_column));
        PERFORM payymo._as_table_owner(tbl, pg_catalog.format(
            'ALTER TABLE %s ALTER COLUMN %I SET DEFAULT payymo.current_tenant()',
            tbl, tenant_column));
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

    prefix := pg_catalog.left(rel.relname::text, 30) OPERATOR(pg_catalog.||) '_'
              OPERATOR(pg_catalog.||) pg_catalog.left(tenant_column::text, 20);

    IF NOT EXISTS (SELECT FROM pg_catalog.pg_constraint con
                    WHERE con.conrelid OPERATOR(pg_catalog.=) tbl
                      AND con.contype OPERATOR(pg_catalog.=) 'f'
                      AND con.confrelid OPERATOR(pg_catalog.=) 'payymo.tenants'::pg_catalog.regclass
                      AND con.conkey OPERATOR(pg_catalog.=) ARRAY[att.attnum]) THEN
        -- Like every statement on the table, the key is added (and the
        -- existing rows validated, which plans queries on the table: its
        -- index expressions may call the owner's functions) as the owner.
        -- The owner may not reference payymo.tenants, so it gets REFERENCES
        -- for this statement only; the grant never commits.
        owner := (SELECT c.relowner::pg_catalog.regrole FROM pg_catalog.pg_class c
                   WHERE c.oid OPERATOR(pg_catalog.=) tbl);
        granted := NOT pg_catalog.has_column_privilege(owner, 'payymo.tenants', 'id', 'REFERENCES');
        IF granted THEN
            EXECUTE pg_catalog.format('GRANT REFERENCES (id) ON payymo.tenants TO %s', owner);
        END IF;
        PERFORM payymo._as_table_owner(tbl, pg_catalog.format(
            'ALTER TABLE %s ADD CONSTRAINT %I FOREIGN KEY (%I) REFERENCES payymo.tenants (id)',
            tbl, prefix OPERATOR(pg_catalog.||) '_tenant_fkey', tenant_column), true);
        IF granted THEN
            EXECUTE pg_catalog.format('REVOKE REFERENCES (id) ON payymo.tenants FROM %s', owner);
        END IF;
    END IF;

    -- The unique key (tenant column, primary key), which also serves as the
    -- index led by the tenant column.
    IF att.attnum OPERATOR(pg_catalog.=) ANY (pk_cols) THEN
        key_cols := pk_cols;
    ELSE
        key_cols := ARRAY[att.attnum] OPERATOR(pg_catalog.||) pk_cols;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_constraint con
                    WHERE con.conrelid OPERATOR(pg_catalog.=) tbl
                      AND con.contype OPERATOR(pg_catalog.=) ANY ('{p,u}'::"char"[])
                      AND con.conkey OPERATOR(pg_catalog.@>) key_cols
                      AND con.conkey OPERATOR(pg_catalog.<@) key_cols) THEN
        SELECT pg_catalog.string_agg(pg_catalog.quote_ident(a.attname), ', ' ORDER BY k.ord)
          INTO key_list
          FROM pg_catalog.unnest(key_cols) WITH ORDINALITY AS k(attnum, ord)
          JOIN pg_catalog.pg_attribute a
            ON a.attrelid OPERATOR(pg_catalog.=) tbl
           AND a.attnum OPERATOR(pg_catalog.=) k.attnum;
        PERFORM payymo._as_table_owner(tbl, pg_catalog.format(
            'ALTER TABLE %s ADD CONSTRAINT %I UNIQUE (%s)',
            tbl, prefix OPERATOR(pg_catalog.||) '_tenant_key', key_list));
    END IF;
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_index i
                    WHERE i.indrelid OPERATOR(pg_catalog.=) tbl
                      AND i.indkey[0] OPERATOR(pg_catalog.=) att.attnum
                      AND i.indpred IS NULL) THEN
        PERFORM payymo._as_table_owner(tbl, pg_catalog.format(
            'CREATE INDEX ON %s (%I)', tbl, tenant_column));
    END IF;

    PERFORM payymo._protect_relation(tbl, tenant_column, NULL);
    PERFORM payymo._cover_partitions(tbl);
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
'Puts a table under tenancy (tenant column, FORCEd row level security, policy, unique key, index, triggers, registration); idempotent; the caller must own the table';

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
    PERFORM payymo._take_ticket(tbl, NULL);
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
    PERFORM payymo._issue_ticket(tbl, NULL);
    PERFORM payymo._disable_tenancy(tbl);
END
$$;

COMMENT ON FUNCTION payymo.disable_tenancy(regclass) IS
'Takes a table out of tenancy: drops the policy, triggers and default and disables row level security; the column, its keys and the data stay; the caller must own the table';

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
'Adds the foreign key (tenant column, child_column) REFERENCES parent (tenant column, primary key), so a row cannot point at another tenant''s row; the caller must own both tables';

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

COMMENT ON FUNCTION payymo.audit() IS
'Lints tables under tenancy and what could bypass them; each finding comes with the SQL that fixes it; no rows means clean';

-- DDL guard.  ddl_command_end sees ALTER TABLE, CREATE/ALTER POLICY and
-- ALTER TRIGGER; sql_drop sees DROP POLICY, DROP TRIGGER and DROP COLUMN.
-- Both check every registered table the command touched, after the command,
-- so whatever the syntax, a table left weaker than enable_tenancy made it is
-- refused (42501).  Only tables the command touched are checked, so one
-- damaged table does not block unrelated DDL.

CREATE FUNCTION payymo._refuse_weakened(tables regclass[])
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    tbl regclass;
    problem text;
BEGIN
    FOR tbl IN
        SELECT DISTINCT t.relid FROM payymo.tenant_tables t
         WHERE t.relid OPERATOR(pg_catalog.=) ANY (tables)
           AND t.policy_qual IS NOT NULL
    LOOP
        problem := payymo._tenancy_problem(tbl);
        IF problem IS NOT NULL THEN
            RAISE EXCEPTION 'table % is under tenancy: % by this statement', tbl,
                            pg_catalog.replace(problem, ' is ', ' would be ')
                USING ERRCODE = 'insufficient_privilege',
                      DETAIL = pg_catalog.format('After the statement, %s.', problem),
                      HINT = pg_catalog.format('Call payymo.disable_tenancy(%L) to take the table out of tenancy.',
                                               COALESCE((SELECT t.root FROM payymo.tenant_tables t
                                                          WHERE t.relid OPERATOR(pg_catalog.=) tbl), tbl)::text);
        END IF;
    END LOOP;
END
$$;

COMMENT ON FUNCTION payymo._refuse_weakened(regclass[]) IS
'Internal: raises 42501 if any of the registered tables given lost a piece of its tenancy';

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

-- =========================================================================
-- Provisioning, settings, feature flags, white-label domains
-- =========================================================================

-- Defaults copied into every new tenant by create_tenant().
CREATE TABLE payymo.default_settings (
    setting_key varchar(100) PRIMARY KEY
        CONSTRAINT default_settings_key_format
        CHECK (setting_key OPERATOR(pg_catalog.~) '^[a-z0-9][a-z0-9_.-]*$'),
    setting_value text NOT NULL
        CONSTRAINT default_settings_value_length
        CHECK (pg_catalog.length(setting_value) OPERATOR(pg_catalog.<=) 10000)
);

CREATE TABLE payymo.default_features (
    feature_key varchar(100) PRIMARY KEY
        CONSTRAINT default_features_key_format
        CHECK (feature_key OPERATOR(pg_catalog.~) '^[a-z0-9][a-z0-9_.-]*$'),
    enabled boolean NOT NULL DEFAULT false
);

COMMENT ON TABLE payymo.default_settings IS
'Settings copied into every tenant that create_tenant() creates';
COMMENT ON TABLE payymo.default_features IS
'Feature flags copied into every tenant that create_tenant() creates';

REVOKE ALL ON payymo.default_settings, payymo.default_features FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('payymo.default_settings', '');
SELECT pg_catalog.pg_extension_config_dump('payymo.default_features', '');

-- Per-tenant settings and flags, as in the Payymo design (bigint tenant ids
-- and timestamptz instead of integer and timestamp).
CREATE TABLE payymo.tenant_settings (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id bigint NOT NULL,
    setting_key varchar(100) NOT NULL
        CONSTRAINT tenant_settings_key_format
        CHECK (setting_key OPERATOR(pg_catalog.~) '^[a-z0-9][a-z0-9_.-]*$'),
    setting_value text NOT NULL
        CONSTRAINT tenant_settings_value_length
        CHECK (pg_catalog.length(setting_value) OPERATOR(pg_catalog.<=) 10000),
    created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    CONSTRAINT tenant_settings_tenant_key UNIQUE (tenant_id, setting_key)
);

CREATE TABLE payymo.tenant_features (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id bigint NOT NULL,
    feature_key varchar(100) NOT NULL
        CONSTRAINT tenant_features_key_format
        CHECK (feature_key OPERATOR(pg_catalog.~) '^[a-z0-9][a-z0-9_.-]*$'),
    enabled boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    CONSTRAINT tenant_features_tenant_key UNIQUE (tenant_id, feature_key)
);

-- Custom domains, stored normalised (see normalize_domain), unique.
CREATE FUNCTION payymo.normalize_domain(host text)
RETURNS text
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    d text := pg_catalog.lower(pg_catalog.btrim(host));
BEGIN
    -- Drop a port and a trailing dot: "App.Acme.Example.:443" -> "app.acme.example"
    d := pg_catalog.regexp_replace(d, ':[0-9]{1,5}$', '');
    d := pg_catalog.regexp_replace(d, '\.$', '');
    IF pg_catalog.length(d) OPERATOR(pg_catalog.>) 253
       OR d OPERATOR(pg_catalog.!~)
          '^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]([a-z0-9-]{0,61}[a-z0-9])?$'
    THEN
        RAISE EXCEPTION 'invalid domain name'
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'A domain is two or more dot-separated labels of a-z, 0-9 and "-", at most 253 characters.',
                  HINT = 'Write internationalised names in punycode (xn--...).';
    END IF;
    RETURN d;
END
$$;

COMMENT ON FUNCTION payymo.normalize_domain(text) IS
'Lowercases a host name and drops a trailing dot and a port; raises 22023 if it is not a domain name';

CREATE TABLE payymo.tenant_domains (
    domain text PRIMARY KEY
        CONSTRAINT tenant_domains_normalized
        CHECK (domain OPERATOR(pg_catalog.=) payymo.normalize_domain(domain)),
    tenant_id bigint NOT NULL,
    created_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);

COMMENT ON TABLE payymo.tenant_settings IS
'Per-tenant settings (text values); under tenancy';
COMMENT ON TABLE payymo.tenant_features IS
'Per-tenant feature flags; under tenancy';
COMMENT ON TABLE payymo.tenant_domains IS
'Custom (white-label) domains, normalised; under tenancy; looked up with tenant_for_domain()';

SELECT payymo.enable_tenancy('payymo.tenant_settings');
SELECT payymo.enable_tenancy('payymo.tenant_features');
SELECT payymo.enable_tenancy('payymo.tenant_domains');

SELECT pg_catalog.pg_extension_config_dump('payymo.tenant_settings', '');
SELECT pg_catalog.pg_extension_config_dump('payymo.tenant_settings_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('payymo.tenant_features', '');
SELECT pg_catalog.pg_extension_config_dump('payymo.tenant_features_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('payymo.tenant_domains', '');

-- Tenants read their own settings, flags and domains.  Writing settings and
-- flags is the DBA's decision: GRANT INSERT, UPDATE, DELETE ON
-- payymo.tenant_settings / payymo.tenant_features TO the application role.
GRANT SELECT ON payymo.tenant_settings, payymo.tenant_features,
                payymo.tenant_domains TO PUBLIC;

-- Validation shared by the setting and feature functions.
CREATE FUNCTION payymo.check_key(key text)
RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF key IS NULL THEN
        RAISE EXCEPTION 'key must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF pg_catalog.length(key) OPERATOR(pg_catalog.>) 100
       OR key OPERATOR(pg_catalog.!~) '^[a-z0-9][a-z0-9_.-]*$' THEN
        RAISE EXCEPTION 'invalid key "%"', pg_catalog.left(key, 100)
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'Keys are 1 to 100 characters of a-z, 0-9, "_", "." and "-", starting with a letter or digit.';
    END IF;
    RETURN key;
END
$$;

COMMENT ON FUNCTION payymo.check_key(text) IS
'Returns a setting or feature key if it is valid; raises 22004 / 22023 otherwise';

CREATE FUNCTION payymo.setting(key text, default_value text DEFAULT NULL)
RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT COALESCE(
        (SELECT s.setting_value FROM payymo.tenant_settings s
          WHERE s.tenant_id OPERATOR(pg_catalog.=) payymo.current_tenant()
            AND s.setting_key OPERATOR(pg_catalog.=) payymo.check_key(setting.key)),
        default_value)
$$;

COMMENT ON FUNCTION payymo.setting(text, text) IS
'The current tenant''s value of a setting, or default_value when it has none';

CREATE FUNCTION payymo.set_setting(key text, value text)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM payymo.check_key(key);
    IF value IS NULL THEN
        DELETE FROM payymo.tenant_settings s
         WHERE s.tenant_id OPERATOR(pg_catalog.=) payymo.current_tenant()
           AND s.setting_key OPERATOR(pg_catalog.=) key;
        RETURN;
    END IF;
    IF pg_catalog.length(value) OPERATOR(pg_catalog.>) 10000 THEN
        RAISE EXCEPTION 'setting value is too long'
            USING ERRCODE = 'string_data_right_truncation',
                  DETAIL = 'Setting values are at most 10000 characters.';
    END IF;
    INSERT INTO payymo.tenant_settings AS s (tenant_id, setting_key, setting_value)
    VALUES (payymo.current_tenant(), key, value)
    ON CONFLICT (tenant_id, setting_key) DO UPDATE
       SET setting_value = EXCLUDED.setting_value, updated_at = pg_catalog.now();
END
$$;

COMMENT ON FUNCTION payymo.set_setting(text, text) IS
'Sets (or with NULL removes) a setting of the current tenant; needs write grants on payymo.tenant_settings';

CREATE FUNCTION payymo.feature_enabled(key text)
RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT COALESCE(
        (SELECT f.enabled FROM payymo.tenant_features f
          WHERE f.tenant_id OPERATOR(pg_catalog.=) payymo.current_tenant()
            AND f.feature_key OPERATOR(pg_catalog.=) payymo.check_key(feature_enabled.key)),
        false)
$$;

COMMENT ON FUNCTION payymo.feature_enabled(text) IS
'Whether a feature flag is on for the current tenant (false when absent)';

CREATE FUNCTION payymo.set_feature(key text, enabled boolean)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM payymo.check_key(key);
    IF enabled IS NULL THEN
        RAISE EXCEPTION 'enabled must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    INSERT INTO payymo.tenant_features AS f (tenant_id, feature_key, enabled)
    VALUES (payymo.current_tenant(), key, set_feature.enabled)
    ON CONFLICT (tenant_id, feature_key) DO UPDATE
       SET enabled = EXCLUDED.enabled, updated_at = pg_catalog.now();
END
$$;

COMMENT ON FUNCTION payymo.set_feature(text, boolean) IS
'Turns a feature flag of the current tenant on or off; needs write grants on payymo.tenant_features';

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

CREATE FUNCTION payymo.add_tenant_domain(tenant_id bigint, domain text)
RETURNS text
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    d text := payymo.normalize_domain(domain);
BEGIN
    IF tenant_id IS NULL OR d IS NULL THEN
        RAISE EXCEPTION 'tenant_id and domain must not be null'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF NOT EXISTS (SELECT FROM payymo.tenants t
                    WHERE t.id OPERATOR(pg_catalog.=) add_tenant_domain.tenant_id) THEN
        RAISE EXCEPTION 'tenant % does not exist', tenant_id
            USING ERRCODE = 'undefined_object';
    END IF;
    INSERT INTO payymo.tenant_domains (domain, tenant_id)
    VALUES (d, add_tenant_domain.tenant_id);
    RETURN d;
EXCEPTION WHEN unique_violation THEN
    RAISE EXCEPTION 'domain "%" is already assigned', d
        USING ERRCODE = 'unique_violation';
END
$$;

COMMENT ON FUNCTION payymo.add_tenant_domain(bigint, text) IS
'Assigns a custom domain to a tenant; returns it normalised';

REVOKE EXECUTE ON FUNCTION payymo.add_tenant_domain(bigint, text) FROM PUBLIC;

CREATE FUNCTION payymo.remove_tenant_domain(domain text)
RETURNS boolean
LANGUAGE sql VOLATILE STRICT PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    WITH gone AS (
        DELETE FROM payymo.tenant_domains d
         WHERE d.domain OPERATOR(pg_catalog.=) payymo.normalize_domain(remove_tenant_domain.domain)
        RETURNING 1)
    SELECT pg_catalog.count(*) OPERATOR(pg_catalog.>) 0 FROM gone
$$;

COMMENT ON FUNCTION payymo.remove_tenant_domain(text) IS
'Removes a custom domain; false when it was not assigned';

REVOKE EXECUTE ON FUNCTION payymo.remove_tenant_domain(text) FROM PUBLIC;

-- Public: a router resolves Host headers before any tenant is known.  It
-- returns routing and branding only, and never sets a context.
CREATE FUNCTION payymo.tenant_for_domain(host text)
RETURNS TABLE (tenant_id bigint, slug text, branding jsonb)
LANGUAGE sql STABLE STRICT PARALLEL SAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT t.id, t.slug,
           COALESCE(
               (SELECT pg_catalog.jsonb_object_agg(
                           pg_catalog.substr(s.setting_key, 7), s.setting_value
                           ORDER BY s.setting_key)
                  FROM payymo.tenant_settings s
                 WHERE s.tenant_id OPERATOR(pg_catalog.=) t.id
                   AND s.setting_key OPERATOR(pg_catalog.~~) 'brand.%'),
               '{}'::jsonb)
      FROM payymo.tenant_domains d
      JOIN payymo.tenants t ON t.id OPERATOR(pg_catalog.=) d.tenant_id
     WHERE d.domain OPERATOR(pg_catalog.=) payymo.normalize_domain(host)
$$;

COMMENT ON FUNCTION payymo.tenant_for_domain(text) IS
'The tenant and its brand.* settings (as jsonb) for a custom domain; public, sets no context';

CREATE FUNCTION payymo.drop_tenant(tenant_id bigint, force boolean DEFAULT false)
RETURNS bigint
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t record;
    n bigint;
    total bigint := 0;
    st text;
BEGIN
    IF tenant_id IS NULL OR force IS NULL THEN
        RAISE EXCEPTION 'tenant_id and force must not be null'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT status INTO st FROM payymo.tenants
     WHERE id OPERATOR(pg_catalog.=) drop_tenant.tenant_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'tenant % does not exist', tenant_id
            USING ERRCODE = 'undefined_object';
    END IF;
    IF st OPERATOR(pg_catalog.=) 'active' AND NOT force THEN
        RAISE EXCEPTION 'tenant % is active', tenant_id
            USING ERRCODE = 'object_in_use',
                  HINT = 'Suspend it first with payymo.suspend_tenant(), or pass force => true.';
    END IF;
    -- Children before parents: deepest tables in the foreign-key graph first.
    -- Each DELETE runs as the table's owner, under the tenant's context, so
    -- that the table's own triggers never run with this function's rights.
    PERFORM payymo.assume_tenant(tenant_id, true);
    FOR t IN SELECT * FROM payymo.tenant_tables_in_delete_order() LOOP
        total := total OPERATOR(pg_catalog.+) payymo._as_table_owner(t.relid,
            pg_catalog.format('DELETE FROM %s WHERE %I OPERATOR(pg_catalog.=) %s',
                              t.relid, t.tenant_column, tenant_id));
    END LOOP;
    PERFORM payymo.clear_tenant();
    DELETE FROM payymo.api_key_store k WHERE k.tenant_id OPERATOR(pg_catalog.=) drop_tenant.tenant_id;
    GET DIAGNOSTICS n = ROW_COUNT;
    DELETE FROM payymo.tenants WHERE id OPERATOR(pg_catalog.=) drop_tenant.tenant_id;
    RAISE LOG 'payymo: tenant % dropped by role %, % rows deleted', tenant_id, session_user, total;
    RETURN total OPERATOR(pg_catalog.+) n OPERATOR(pg_catalog.+) 1;
END
$$;

COMMENT ON FUNCTION payymo.drop_tenant(bigint, boolean) IS
'Deletes a tenant and all its rows in every tenancy table (children first); refuses an active tenant unless force; returns rows deleted';

REVOKE EXECUTE ON FUNCTION payymo.drop_tenant(bigint, boolean) FROM PUBLIC;
