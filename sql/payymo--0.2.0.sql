/* payymo--0.2.0.sql: the install script of 0.2.0 as released; never edited */
-- =========================================================================
-- Schema
-- =========================================================================
--
-- The install script is generated: the Makefile concatenates the parts in
-- sql/ (schema, context, keys, crypto, stats, tenancy, audit, ddl_guard,
-- provisioning) into payymo--<version>.sql.  Edit the parts, and put every
-- change to the SQL surface into the upgrade script as well.
--
-- Everything is schema-qualified (operators too), so that no search_path can
-- redirect a call made by this script or by the SECURITY DEFINER functions.

\echo Use "CREATE EXTENSION payymo" to load this file. \quit

GRANT USAGE ON SCHEMA payymo TO PUBLIC;

-- The schema must belong to the superuser installing payymo.  A role that
-- created a schema named payymo beforehand would own the extension's schema
-- and could drop every policy with DROP SCHEMA ... CASCADE.
DO $$
BEGIN
    IF (SELECT n.nspowner FROM pg_catalog.pg_namespace n
         WHERE n.nspname OPERATOR(pg_catalog.=) 'payymo')
       OPERATOR(pg_catalog.<>) (SELECT r.oid FROM pg_catalog.pg_roles r
                                 WHERE r.rolname OPERATOR(pg_catalog.=) current_user) THEN
        RAISE EXCEPTION 'schema payymo is not owned by the installing role %', current_user
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = 'Its owner could drop every object of the extension, the policies of tables under tenancy included.',
                  HINT = 'Drop the schema, or ALTER SCHEMA payymo OWNER TO the installing superuser, then install again.';
    END IF;
END
$$;

-- payymo_admin: a NOLOGIN role holding EXECUTE on the administrative
-- functions (tenants, keys, domains, defaults, statistics, key rotation),
-- so that a DBA grants one role.  Created if absent, like pg_monitor in
-- core; it is shared by all databases and stays when the extension is
-- dropped.  A pre-existing role of that name must not be able to log in.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles r
                    WHERE r.rolname OPERATOR(pg_catalog.=) 'payymo_admin') THEN
        CREATE ROLE payymo_admin NOLOGIN;
    ELSIF EXISTS (SELECT FROM pg_catalog.pg_roles r
                   WHERE r.rolname OPERATOR(pg_catalog.=) 'payymo_admin'
                     AND (r.rolcanlogin OR r.rolsuper OR r.rolbypassrls)) THEN
        RAISE EXCEPTION 'role payymo_admin can log in or bypasses row level security'
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'ALTER ROLE payymo_admin NOLOGIN NOSUPERUSER NOBYPASSRLS, or drop it, then install again.';
    END IF;
END
$$;
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
GRANT SELECT ON payymo.api_keys TO payymo_admin;

-- Backends cache the keys they verified (src/keycache.c); a committed change
-- to what verification reads invalidates every backend's cache.  Row
-- triggers, ALWAYS: a superuser's session_replication_role = replica and
-- logical replication's apply workers must not skip them.
CREATE FUNCTION payymo._key_registry_changed()
RETURNS trigger
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'payymo_key_registry_changed';

COMMENT ON FUNCTION payymo._key_registry_changed() IS
'Internal: trigger that invalidates the API keys cached by every backend when its transaction commits';

REVOKE EXECUTE ON FUNCTION payymo._key_registry_changed() FROM PUBLIC;

CREATE TRIGGER payymo_key_cache
    BEFORE UPDATE OF key_id, tenant_id, secret_hash, expires_at, revoked_at OR DELETE
    ON payymo.api_key_store
    FOR EACH ROW EXECUTE FUNCTION payymo._key_registry_changed();
CREATE TRIGGER payymo_key_cache_truncate BEFORE TRUNCATE ON payymo.api_key_store
    FOR EACH STATEMENT EXECUTE FUNCTION payymo._key_registry_changed();
CREATE TRIGGER payymo_key_cache
    BEFORE UPDATE OF id, status, rate_limit_per_second OR DELETE
    ON payymo.tenants
    FOR EACH ROW EXECUTE FUNCTION payymo._key_registry_changed();
CREATE TRIGGER payymo_key_cache_truncate BEFORE TRUNCATE ON payymo.tenants
    FOR EACH STATEMENT EXECUTE FUNCTION payymo._key_registry_changed();
ALTER TABLE payymo.api_key_store ENABLE ALWAYS TRIGGER payymo_key_cache;
ALTER TABLE payymo.api_key_store ENABLE ALWAYS TRIGGER payymo_key_cache_truncate;
ALTER TABLE payymo.tenants ENABLE ALWAYS TRIGGER payymo_key_cache;
ALTER TABLE payymo.tenants ENABLE ALWAYS TRIGGER payymo_key_cache_truncate;

-- Not SECURITY DEFINER: it reads the key and tenant rows through their
-- primary-key indexes in C (src/apikey.c), which checks no table privileges.
CREATE FUNCTION payymo.set_tenant(api_key text, is_local boolean DEFAULT true)
RETURNS bigint
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'payymo_set_tenant';

COMMENT ON FUNCTION payymo.set_tenant(text, boolean) IS
'Verifies an API key and sets its tenant as the context (for the transaction by default); any failure raises 28000 and clears the context';

-- Not SECURITY DEFINER either: it reads the tenant's row the same way.
CREATE FUNCTION payymo.assume_tenant(tenant_id bigint, is_local boolean DEFAULT true)
RETURNS void
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'payymo_assume_tenant';

COMMENT ON FUNCTION payymo.assume_tenant(bigint, boolean) IS
'Sets the context without a key, for jobs and support tools; not granted to PUBLIC; every use is logged';

REVOKE EXECUTE ON FUNCTION payymo.assume_tenant(bigint, boolean) FROM PUBLIC;

-- For payymo's own SECURITY DEFINER functions: assume_tenant for the
-- transaction, without the warning for a call outside a transaction block
-- (their SET clauses end the context with them anyway).
CREATE FUNCTION payymo._act_for_tenant(tenant_id bigint)
RETURNS void
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'payymo_act_for_tenant';

COMMENT ON FUNCTION payymo._act_for_tenant(bigint) IS
'Internal: assume_tenant for the transaction, for payymo''s own functions; not granted to PUBLIC';

REVOKE EXECUTE ON FUNCTION payymo._act_for_tenant(bigint) FROM PUBLIC;

CREATE FUNCTION payymo.issue_api_key(tenant_id bigint, label text DEFAULT NULL,
                                     expires_at timestamptz DEFAULT NULL)
RETURNS text
LANGUAGE C VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'payymo_issue_api_key';

COMMENT ON FUNCTION payymo.issue_api_key(bigint, text, timestamptz) IS
'Issues an API key for a tenant and returns it once; only its hash is stored';

REVOKE EXECUTE ON FUNCTION payymo.issue_api_key(bigint, text, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION payymo.issue_api_key(bigint, text, timestamptz) TO payymo_admin;

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
GRANT EXECUTE ON FUNCTION payymo.revoke_api_key(text) TO payymo_admin;
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
        PERFORM payymo._act_for_tenant(tenant);
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
GRANT EXECUTE ON FUNCTION payymo.reencrypt_token_batch(regclass, name, text, name, integer) TO payymo_admin;

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
GRANT EXECUTE ON PROCEDURE payymo.rotate_token_column(regclass, name, text, name, integer) TO payymo_admin;
-- =========================================================================
-- Observability and limits
-- =========================================================================

-- Need shared_preload_libraries = 'payymo'; otherwise they raise 55000.

CREATE FUNCTION payymo.tenant_stats(
    OUT datid oid,
    OUT tenant_id bigint,
    OUT statements bigint,
    OUT rows bigint,
    OUT total_exec_time double precision,
    OUT shared_blks_hit bigint,
    OUT shared_blks_read bigint,
    OUT shared_blks_dirtied bigint,
    OUT shared_blks_written bigint,
    OUT temp_blks_read bigint,
    OUT temp_blks_written bigint,
    OUT wal_records bigint,
    OUT wal_bytes numeric,
    OUT denied bigint,
    OUT rate_limited bigint,
    OUT last_activity timestamptz)
RETURNS SETOF record
LANGUAGE C VOLATILE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'payymo_tenant_stats';

COMMENT ON FUNCTION payymo.tenant_stats() IS
'Per-tenant counters from shared memory, of every database (datid); the view payymo.tenant_stats shows the current one; raises 55000 without shared_preload_libraries';

REVOKE EXECUTE ON FUNCTION payymo.tenant_stats() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION payymo.tenant_stats() TO pg_monitor, payymo_admin;

CREATE VIEW payymo.tenant_stats AS
SELECT s.tenant_id, t.slug, s.statements, s.rows, s.total_exec_time,
       s.shared_blks_hit, s.shared_blks_read, s.shared_blks_dirtied,
       s.shared_blks_written, s.temp_blks_read, s.temp_blks_written,
       s.wal_records, s.wal_bytes, s.denied, s.rate_limited, s.last_activity
  FROM payymo.tenant_stats() s
  LEFT JOIN payymo.tenants t ON t.id OPERATOR(pg_catalog.=) s.tenant_id
 WHERE s.datid OPERATOR(pg_catalog.=) (SELECT d.oid FROM pg_catalog.pg_database d
                                        WHERE d.datname OPERATOR(pg_catalog.=) pg_catalog.current_database());

COMMENT ON VIEW payymo.tenant_stats IS
'Per tenant of the current database: top-level statements, rows, total execution time (ms), shared and temporary blocks and WAL of those statements, denied and rate-limited attempts, last activity; pg_monitor, payymo_admin and superusers only';

REVOKE ALL ON payymo.tenant_stats FROM PUBLIC;
GRANT SELECT ON payymo.tenant_stats TO pg_monitor, payymo_admin;

CREATE FUNCTION payymo.tenant_stats_reset(tenant_id bigint DEFAULT NULL)
RETURNS void
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'payymo_tenant_stats_reset';

COMMENT ON FUNCTION payymo.tenant_stats_reset(bigint) IS
'Zeroes the counters in payymo.tenant_stats, of one tenant of the current database or (NULL) all of them; keeps rate-limit buckets; raises 55000 without shared_preload_libraries';

REVOKE EXECUTE ON FUNCTION payymo.tenant_stats_reset(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION payymo.tenant_stats_reset(bigint) TO payymo_admin;

-- Storage per tenant and table, for capacity planning and billing
-- (src/registry.c): rows and bytes, counted or from a sample of pages with
-- the standard error of each count.  It reads every tenant's rows, each
-- table as its owner (exempt from FORCE, in a security-restricted
-- operation), so it is for administrators.
CREATE FUNCTION payymo.tenant_storage(sample_percent double precision DEFAULT 100)
RETURNS TABLE (tenant_id bigint, tbl regclass, rows bigint, rows_stderr bigint, bytes bigint)
LANGUAGE C VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'payymo_tenant_storage';

COMMENT ON FUNCTION payymo.tenant_storage(double precision) IS
'Rows and bytes per tenant and table under tenancy (leaf tables), exact or from a sample of pages with the standard error of the row count; administrators only';

REVOKE EXECUTE ON FUNCTION payymo.tenant_storage(double precision) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION payymo.tenant_storage(double precision) TO payymo_admin;
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
GRANT SELECT, INSERT, UPDATE, DELETE ON payymo.default_settings, payymo.default_features
    TO payymo_admin;
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

-- Custom domains, stored normalised (see normalize_domain), unique.  Only
-- ASCII letters are folded, whatever the database's collation: lower()
-- under a Turkish locale maps I to a dotless i, and the name would never
-- match.  The regular expressions run under the C collation for the same
-- reason.
CREATE FUNCTION payymo.normalize_domain(host text)
RETURNS text
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    d text COLLATE "C" := pg_catalog.translate(pg_catalog.btrim(host),
                                   'ABCDEFGHIJKLMNOPQRSTUVWXYZ',
                                   'abcdefghijklmnopqrstuvwxyz');
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
'Folds the ASCII letters of a host name to lowercase (whatever the collation) and drops a trailing dot and a port; raises 22023 if it is not a domain name';

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

-- tenant_id: an explicit id, for applications that bring their own (the
-- identity sequence moves past it); NULL takes the next one.
CREATE FUNCTION payymo.create_tenant(slug text, name text,
                                     INOUT tenant_id bigint DEFAULT NULL,
                                     admin_email text DEFAULT NULL,
                                     admin_password text DEFAULT NULL,
                                     OUT api_key text)
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
    IF tenant_id OPERATOR(pg_catalog.<=) 0 THEN
        RAISE EXCEPTION 'invalid tenant id %', tenant_id
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'A tenant id is a positive bigint.';
    END IF;
    BEGIN
        INSERT INTO payymo.tenants (id, slug, name)
        OVERRIDING SYSTEM VALUE
        VALUES (COALESCE(create_tenant.tenant_id,
                         pg_catalog.nextval('payymo.tenants_id_seq'::pg_catalog.regclass)),
                create_tenant.slug, create_tenant.name)
        RETURNING payymo.tenants.id INTO tenant_id;
    EXCEPTION WHEN unique_violation THEN
        IF EXISTS (SELECT FROM payymo.tenants t WHERE t.id OPERATOR(pg_catalog.=) create_tenant.tenant_id) THEN
            RAISE EXCEPTION 'tenant % already exists', tenant_id
                USING ERRCODE = 'unique_violation';
        END IF;
        RAISE EXCEPTION 'tenant slug "%" is already taken', slug
            USING ERRCODE = 'unique_violation';
    END;
    PERFORM payymo._advance_tenant_ids();
    -- Rows carrying their tenant are accepted from this (superuser-owned)
    -- function without a context: see stamp_tenant.
    INSERT INTO payymo.tenant_settings (tenant_id, setting_key, setting_value)
    SELECT create_tenant.tenant_id, d.setting_key, d.setting_value FROM payymo.default_settings d;
    INSERT INTO payymo.tenant_features (tenant_id, feature_key, enabled)
    SELECT create_tenant.tenant_id, d.feature_key, d.enabled FROM payymo.default_features d;
    api_key := payymo.issue_api_key(tenant_id, 'initial key');
    IF admin_email IS NOT NULL THEN
        PERFORM payymo.create_user(tenant_id, admin_email, admin_password, 'admin');
    END IF;
END
$$;

COMMENT ON FUNCTION payymo.create_tenant(text, text, bigint, text, text) IS
'Creates a tenant (with the given id, or the next one) with the default settings and features, its first API key and optionally its first admin user, atomically';

REVOKE EXECUTE ON FUNCTION payymo.create_tenant(text, text, bigint, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION payymo.create_tenant(text, text, bigint, text, text) TO payymo_admin;

-- Tenants created or restored with explicit ids: the identity sequence must
-- not hand those ids out again.
CREATE FUNCTION payymo._advance_tenant_ids()
RETURNS void
LANGUAGE sql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pg_catalog.setval('payymo.tenants_id_seq'::pg_catalog.regclass, m)
      FROM (SELECT pg_catalog.max(id) AS m FROM payymo.tenants) x
     WHERE x.m OPERATOR(pg_catalog.>) COALESCE(pg_catalog.pg_sequence_last_value('payymo.tenants_id_seq'::pg_catalog.regclass), 0)
$$;

COMMENT ON FUNCTION payymo._advance_tenant_ids() IS
'Internal: moves the tenant id sequence past the highest tenant id';

REVOKE EXECUTE ON FUNCTION payymo._advance_tenant_ids() FROM PUBLIC;

-- Suspending and resuming differ only in the status they set.
CREATE FUNCTION payymo._set_tenant_status(tenant_id bigint, status text)
RETURNS void
LANGUAGE plpgsql VOLATILE STRICT PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    UPDATE payymo.tenants t SET status = _set_tenant_status.status, updated_at = pg_catalog.now()
     WHERE t.id OPERATOR(pg_catalog.=) _set_tenant_status.tenant_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'tenant % does not exist', _set_tenant_status.tenant_id
            USING ERRCODE = 'undefined_object';
    END IF;
END
$$;

COMMENT ON FUNCTION payymo._set_tenant_status(bigint, text) IS
'Internal: sets a tenant''s status (suspend_tenant, resume_tenant); 42704 for an unknown tenant';

REVOKE EXECUTE ON FUNCTION payymo._set_tenant_status(bigint, text) FROM PUBLIC;

CREATE FUNCTION payymo.suspend_tenant(tenant_id bigint)
RETURNS void
LANGUAGE sql VOLATILE STRICT PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT payymo._set_tenant_status(suspend_tenant.tenant_id, 'suspended') $$;

COMMENT ON FUNCTION payymo.suspend_tenant(bigint) IS
'Suspends a tenant: its API keys stop working';

REVOKE EXECUTE ON FUNCTION payymo.suspend_tenant(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION payymo.suspend_tenant(bigint) TO payymo_admin;

CREATE FUNCTION payymo.resume_tenant(tenant_id bigint)
RETURNS void
LANGUAGE sql VOLATILE STRICT PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT payymo._set_tenant_status(resume_tenant.tenant_id, 'active') $$;

COMMENT ON FUNCTION payymo.resume_tenant(bigint) IS
'Resumes a suspended tenant';

REVOKE EXECUTE ON FUNCTION payymo.resume_tenant(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION payymo.resume_tenant(bigint) TO payymo_admin;

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
GRANT EXECUTE ON FUNCTION payymo.add_tenant_domain(bigint, text) TO payymo_admin;

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
GRANT EXECUTE ON FUNCTION payymo.remove_tenant_domain(text) TO payymo_admin;

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

-- enable_tenancy's back-fill checks the tenant as the row trigger does.
CREATE FUNCTION payymo._check_tenant_for_write(tenant_id bigint, tbl regclass)
RETURNS void
LANGUAGE c VOLATILE STRICT PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'payymo_check_tenant_for_write';

COMMENT ON FUNCTION payymo._check_tenant_for_write(bigint, regclass) IS
'Internal: locks a tenant for writing and checks that it exists, as the row trigger does';

REVOKE EXECUTE ON FUNCTION payymo._check_tenant_for_write(bigint, regclass) FROM PUBLIC;

-- Before drop_tenant's second pass: lock the tenant against the
-- transactions writing for it (see src/registry.c).
CREATE FUNCTION payymo._lock_tenant_for_drop(tenant_id bigint)
RETURNS void
LANGUAGE c VOLATILE STRICT PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'payymo_lock_tenant_for_drop';

COMMENT ON FUNCTION payymo._lock_tenant_for_drop(bigint) IS
'Internal: locks a tenant''s lock bucket exclusively until the end of the transaction, waiting for the transactions writing rows for its tenants';

REVOKE EXECUTE ON FUNCTION payymo._lock_tenant_for_drop(bigint) FROM PUBLIC;

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
    pass integer;
BEGIN
    IF tenant_id IS NULL OR force IS NULL THEN
        RAISE EXCEPTION 'tenant_id and force must not be null'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    -- Under a transaction snapshot the second pass below would miss rows
    -- that writers it waited for committed, and they would outlive the tenant.
    IF pg_catalog.current_setting('transaction_isolation') OPERATOR(pg_catalog.<>) 'read committed' THEN
        RAISE EXCEPTION 'payymo.drop_tenant() must run at isolation level READ COMMITTED'
            USING ERRCODE = 'feature_not_supported',
                  DETAIL = 'Under a transaction snapshot it could miss rows that transactions writing for the tenant commit while it waits for them.',
                  HINT = 'Run it in its own transaction, or after SET TRANSACTION ISOLATION LEVEL READ COMMITTED.';
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
    -- Two passes: the rows, then -- with the tenant locked against the
    -- transactions writing for it, which it waits for (src/registry.c) --
    -- what they committed meanwhile.  The lock, which also holds up the
    -- writers of the tenants sharing its bucket, is taken late so that it
    -- is held briefly.
    PERFORM payymo._act_for_tenant(tenant_id);
    FOR pass IN 1..2 LOOP
        IF pass OPERATOR(pg_catalog.=) 2 THEN
            PERFORM payymo._lock_tenant_for_drop(tenant_id);
        END IF;
        FOR t IN SELECT * FROM payymo.tenant_tables_in_delete_order() LOOP
            total := total OPERATOR(pg_catalog.+) payymo._as_table_owner(t.relid,
                pg_catalog.format('DELETE FROM %s WHERE %I OPERATOR(pg_catalog.=) %s',
                                  t.relid, t.tenant_column, tenant_id));
        END LOOP;
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
GRANT EXECUTE ON FUNCTION payymo.drop_tenant(bigint, boolean) TO payymo_admin;
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
-- =========================================================================
-- Users, logins and sessions
-- =========================================================================
--
-- Users belong to one tenant (payymo.users is under tenancy).  Passwords
-- are Argon2id strings (src/users.c); a user without one signs in only
-- through an identity provider (set_tenant_jwt).  Sessions are stored as
-- hashes, like API keys, and set the context with set_session().

CREATE TABLE payymo.users (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id bigint NOT NULL,
    email text NOT NULL
        CONSTRAINT users_email_format
        CHECK (pg_catalog.length(email) OPERATOR(pg_catalog.<=) 254
               AND email COLLATE "C" OPERATOR(pg_catalog.~) '^[^@[:space:]]+@[^@[:space:]]+$'),
    role text NOT NULL DEFAULT 'member'
        CONSTRAINT users_role_valid
        CHECK (role OPERATOR(pg_catalog.=) ANY (ARRAY['admin', 'member'])),
    status text NOT NULL DEFAULT 'active'
        CONSTRAINT users_status_valid
        CHECK (status OPERATOR(pg_catalog.=) ANY (ARRAY['active', 'disabled'])),
    password_hash text
        CONSTRAINT users_password_hash_argon2id
        CHECK (password_hash OPERATOR(pg_catalog.~~) '$argon2id$%'),
    subject text
        CONSTRAINT users_subject_length
        CHECK (pg_catalog.length(subject) OPERATOR(pg_catalog.<=) 255),
    created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    -- what session_store's reference points to
    CONSTRAINT users_tenant_id_tenant_key UNIQUE (tenant_id, id)
);

-- Emails are unique per tenant, ASCII letters folded whatever the
-- collation (as domains are).
CREATE UNIQUE INDEX users_tenant_email_key
    ON payymo.users (tenant_id, pg_catalog.lower(email COLLATE "C"));
CREATE UNIQUE INDEX users_tenant_subject_key
    ON payymo.users (tenant_id, subject) WHERE subject IS NOT NULL;

COMMENT ON TABLE payymo.users IS
'Users of a tenant: email (unique per tenant, case-insensitive), role (admin or member), status, Argon2id password hash, identity provider subject; under tenancy';

SELECT payymo.enable_tenancy('payymo.users');
SELECT pg_catalog.pg_extension_config_dump('payymo.users', '');
SELECT pg_catalog.pg_extension_config_dump('payymo.users_id_seq', '');

-- A tenant reads its users, never their password hashes.
GRANT SELECT (id, tenant_id, email, role, status, subject, created_at, updated_at)
    ON payymo.users TO PUBLIC;

CREATE TABLE payymo.session_store (
    session_id text PRIMARY KEY
        CONSTRAINT session_store_session_id_format
        CHECK (session_id OPERATOR(pg_catalog.~) '^[a-z2-7]{16}$'),
    tenant_id bigint NOT NULL,
    user_id bigint NOT NULL,
    secret_hash bytea NOT NULL
        CONSTRAINT session_store_hash_length
        CHECK (pg_catalog.length(secret_hash) OPERATOR(pg_catalog.=) 32),
    created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    expires_at timestamptz NOT NULL,
    idle_timeout_secs integer NOT NULL
        CONSTRAINT session_store_idle_positive
        CHECK (idle_timeout_secs OPERATOR(pg_catalog.>) 0),
    last_seen_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    revoked_at timestamptz,
    FOREIGN KEY (tenant_id, user_id) REFERENCES payymo.users (tenant_id, id) ON DELETE CASCADE
);

CREATE INDEX session_store_user_id_idx ON payymo.session_store (tenant_id, user_id);

COMMENT ON TABLE payymo.session_store IS
'Login sessions: BLAKE2b-256 hashes of the tokens only; not archived (a restore signs users out)';

REVOKE ALL ON payymo.session_store FROM PUBLIC;

CREATE FUNCTION payymo._hash_password(password text)
RETURNS text
LANGUAGE C VOLATILE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'payymo_hash_password';

COMMENT ON FUNCTION payymo._hash_password(text) IS
'Internal: the Argon2id hash of a password of 8 to 1024 bytes, with the current payymo.password_* parameters';

REVOKE EXECUTE ON FUNCTION payymo._hash_password(text) FROM PUBLIC;

CREATE FUNCTION payymo.create_user(tenant_id bigint, email text, password text,
                                   role text DEFAULT 'member', subject text DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    id bigint;
BEGIN
    IF tenant_id IS NULL OR email IS NULL OR role IS NULL THEN
        RAISE EXCEPTION 'tenant_id, email and role must not be null'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF password IS NULL AND subject IS NULL THEN
        RAISE EXCEPTION 'a user needs a password or an identity provider subject'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF NOT EXISTS (SELECT FROM payymo.tenants t WHERE t.id OPERATOR(pg_catalog.=) create_user.tenant_id) THEN
        RAISE EXCEPTION 'tenant % does not exist', tenant_id
            USING ERRCODE = 'undefined_object';
    END IF;
    BEGIN
        -- Rows carrying their tenant are accepted from this (superuser-owned)
        -- function without a context: see stamp_tenant.
        INSERT INTO payymo.users (tenant_id, email, role, password_hash, subject)
        VALUES (create_user.tenant_id, create_user.email, create_user.role,
                CASE WHEN password IS NOT NULL THEN payymo._hash_password(password) END,
                create_user.subject)
        RETURNING payymo.users.id INTO id;
    EXCEPTION WHEN unique_violation THEN
        RAISE EXCEPTION 'tenant % already has a user with this email or subject', tenant_id
            USING ERRCODE = 'unique_violation';
    END;
    RETURN id;
END
$$;

COMMENT ON FUNCTION payymo.create_user(bigint, text, text, text, text) IS
'Creates a user of a tenant (role admin or member) with an Argon2id-hashed password and/or an identity provider subject; returns its id';

REVOKE EXECUTE ON FUNCTION payymo.create_user(bigint, text, text, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION payymo.create_user(bigint, text, text, text, text) TO payymo_admin;

CREATE FUNCTION payymo.set_user_password(user_id bigint, password text)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    UPDATE payymo.users u
       SET password_hash = CASE WHEN password IS NOT NULL THEN payymo._hash_password(password) END,
           updated_at = pg_catalog.now()
     WHERE u.id OPERATOR(pg_catalog.=) set_user_password.user_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'user % does not exist', user_id USING ERRCODE = 'undefined_object';
    END IF;
    PERFORM payymo.revoke_sessions(user_id);
END
$$;

COMMENT ON FUNCTION payymo.set_user_password(bigint, text) IS
'Sets (or with NULL removes) a user''s password and revokes the user''s sessions';

REVOKE EXECUTE ON FUNCTION payymo.set_user_password(bigint, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION payymo.set_user_password(bigint, text) TO payymo_admin;

CREATE FUNCTION payymo.revoke_sessions(user_id bigint)
RETURNS integer
LANGUAGE sql VOLATILE STRICT PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    WITH revoked AS (
        UPDATE payymo.session_store s
           SET revoked_at = pg_catalog.now()
         WHERE s.user_id OPERATOR(pg_catalog.=) revoke_sessions.user_id
           AND s.revoked_at IS NULL
        RETURNING 1)
    SELECT pg_catalog.count(*)::integer FROM revoked
$$;

COMMENT ON FUNCTION payymo.revoke_sessions(bigint) IS
'Revokes every session of a user; returns how many were in force';

REVOKE EXECUTE ON FUNCTION payymo.revoke_sessions(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION payymo.revoke_sessions(bigint) TO payymo_admin;

CREATE FUNCTION payymo.set_user_status(user_id bigint, status text)
RETURNS void
LANGUAGE plpgsql VOLATILE STRICT PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF status OPERATOR(pg_catalog.<>) ALL (ARRAY['active', 'disabled']) THEN
        RAISE EXCEPTION 'invalid user status "%"', pg_catalog.left(status, 20)
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'A user is active or disabled.';
    END IF;
    UPDATE payymo.users u
       SET status = set_user_status.status, updated_at = pg_catalog.now()
     WHERE u.id OPERATOR(pg_catalog.=) set_user_status.user_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'user % does not exist', user_id USING ERRCODE = 'undefined_object';
    END IF;
    IF status OPERATOR(pg_catalog.=) 'disabled' THEN
        PERFORM payymo.revoke_sessions(user_id);
    END IF;
END
$$;

COMMENT ON FUNCTION payymo.set_user_status(bigint, text) IS
'Disables a user (and revokes the user''s sessions) or enables it again';

REVOKE EXECUTE ON FUNCTION payymo.set_user_status(bigint, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION payymo.set_user_status(bigint, text) TO payymo_admin;

-- The user login() checks: the tenant by slug or custom domain, the email
-- case-insensitively.  Returns the password hash: only for login().
CREATE FUNCTION payymo._login_lookup(tenant text, email text)
RETURNS TABLE (user_id bigint, tenant_id bigint, password_hash text, usable boolean)
LANGUAGE sql STABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT u.id, u.tenant_id, u.password_hash,
           u.status OPERATOR(pg_catalog.=) 'active' AND t.status OPERATOR(pg_catalog.=) 'active'
      FROM payymo.tenants t
      JOIN payymo.users u ON u.tenant_id OPERATOR(pg_catalog.=) t.id
     WHERE t.id OPERATOR(pg_catalog.=) (
               SELECT x.id FROM payymo.tenants x
                WHERE x.slug OPERATOR(pg_catalog.=) _login_lookup.tenant
               UNION ALL
               SELECT d.tenant_id FROM payymo.tenant_domains d
                WHERE d.domain OPERATOR(pg_catalog.=) pg_catalog.rtrim(_login_lookup.tenant, '.')
               LIMIT 1)
       AND pg_catalog.lower(u.email COLLATE "C") OPERATOR(pg_catalog.=) _login_lookup.email COLLATE "C"
$$;

COMMENT ON FUNCTION payymo._login_lookup(text, text) IS
'Internal: the user of a tenant (slug or custom domain, lowercase) with this (lowercase) email, with its password hash; not granted to PUBLIC';

REVOKE EXECUTE ON FUNCTION payymo._login_lookup(text, text) FROM PUBLIC;

CREATE FUNCTION payymo.login(tenant text, email text, password text, client text DEFAULT NULL)
RETURNS text
LANGUAGE C VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'payymo_login';

COMMENT ON FUNCTION payymo.login(text, text, text, text) IS
'Checks a user''s password (tenant by slug or custom domain) and returns a new session token; every failure raises 28000; failures are throttled per account and client (client: the end user''s address, default the connection''s)';

CREATE FUNCTION payymo.logout(token text)
RETURNS boolean
LANGUAGE C VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'payymo_logout';

COMMENT ON FUNCTION payymo.logout(text) IS
'Revokes the session of a token; false when it is not a session token or was revoked already';

-- Not SECURITY DEFINER: it reads the session, user and tenant rows through
-- their primary-key indexes in C, as set_tenant does.
CREATE FUNCTION payymo.set_session(token text, is_local boolean DEFAULT true)
RETURNS bigint
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'payymo_set_session';

COMMENT ON FUNCTION payymo.set_session(text, boolean) IS
'Verifies a session token and sets its tenant and user as the context (for the transaction by default); any failure raises 28000 and clears the context';

CREATE FUNCTION payymo.current_user_id()
RETURNS bigint
LANGUAGE C STABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'payymo_current_user_id';

COMMENT ON FUNCTION payymo.current_user_id() IS
'The user of the context (set by set_session or set_tenant_jwt); raises 42501 without one';

CREATE FUNCTION payymo.current_user_role()
RETURNS text
LANGUAGE C STABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'payymo_current_user_role';

COMMENT ON FUNCTION payymo.current_user_role() IS
'The role (admin or member) of the context''s user; raises 42501 without one';

CREATE FUNCTION payymo.owner_visible(owner bigint)
RETURNS boolean
LANGUAGE C STABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'payymo_owner_visible';

COMMENT ON FUNCTION payymo.owner_visible(bigint) IS
'The per-user policy: true for a tenant-wide context (API key, assume_tenant) and for admins, for members only when owner is the user; raises 42501 without a context';

-- Per-user rows: a RESTRICTIVE policy beside payymo_tenant_isolation, so
-- that members see and write only the rows they own.  Like enable_tenancy,
-- the caller must own the table.
CREATE FUNCTION payymo.enable_owner_policy(tbl regclass, owner_column name DEFAULT 'user_id')
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    coltype regtype;
BEGIN
    IF NOT EXISTS (SELECT FROM payymo.tenant_tables t WHERE t.relid OPERATOR(pg_catalog.=) tbl) THEN
        RAISE EXCEPTION 'table % is not under tenancy', tbl
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Call payymo.enable_tenancy() first.';
    END IF;
    SELECT a.atttypid INTO coltype FROM pg_catalog.pg_attribute a
     WHERE a.attrelid OPERATOR(pg_catalog.=) tbl AND a.attname OPERATOR(pg_catalog.=) owner_column
       AND NOT a.attisdropped;
    IF coltype IS NULL OR coltype OPERATOR(pg_catalog.<>) ALL (ARRAY['bigint', 'integer']::regtype[]) THEN
        RAISE EXCEPTION 'table % has no bigint or integer column "%"', tbl, owner_column
            USING ERRCODE = 'undefined_column';
    END IF;
    EXECUTE pg_catalog.format('DROP POLICY IF EXISTS payymo_owner_isolation ON %s', tbl);
    EXECUTE pg_catalog.format(
        'CREATE POLICY payymo_owner_isolation ON %s AS RESTRICTIVE FOR ALL TO PUBLIC'
        ' USING (payymo.owner_visible(%I)) WITH CHECK (payymo.owner_visible(%I))',
        tbl, owner_column, owner_column);
END
$$;

COMMENT ON FUNCTION payymo.enable_owner_policy(regclass, name) IS
'Adds the restrictive policy payymo_owner_isolation to a table under tenancy: members see and write only rows whose owner column is their user id; admins and tenant-wide contexts see the tenant''s rows';
-- =========================================================================
-- JSON Web Tokens from identity providers
-- =========================================================================
--
-- An administrator registers each issuer (its "iss"), with one algorithm,
-- the audience its tokens must name, which claim names the tenant (a number:
-- the tenant id; a string: its slug) and which the user (matched with
-- payymo.users.subject; NULL for tenant-wide service tokens), and its keys
-- as JWKs by kid.  set_tenant_jwt() verifies a token against them (see
-- src/jwt.c).  The database never fetches keys: rotate by adding a kid.

CREATE TABLE payymo.jwt_issuers (
    issuer text PRIMARY KEY
        CONSTRAINT jwt_issuers_issuer_length
        CHECK (pg_catalog.length(issuer) OPERATOR(pg_catalog.<=) 1000),
    audience text NOT NULL,
    algorithm text NOT NULL
        CONSTRAINT jwt_issuers_algorithm_valid
        CHECK (algorithm OPERATOR(pg_catalog.=) ANY (ARRAY['EdDSA', 'HS256', 'RS256', 'ES256'])),
    tenant_claim text NOT NULL DEFAULT 'tenant_id',
    user_claim text DEFAULT 'sub',
    leeway_secs integer NOT NULL DEFAULT 60
        CONSTRAINT jwt_issuers_leeway_range
        CHECK (leeway_secs OPERATOR(pg_catalog.>=) 0 AND leeway_secs OPERATOR(pg_catalog.<=) 600),
    created_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);

COMMENT ON TABLE payymo.jwt_issuers IS
'Identity providers whose JWTs set_tenant_jwt() accepts: issuer, audience, algorithm, tenant and user claims, leeway';

CREATE TABLE payymo.jwt_keys (
    issuer text NOT NULL REFERENCES payymo.jwt_issuers ON DELETE CASCADE,
    kid text NOT NULL
        CONSTRAINT jwt_keys_kid_length
        CHECK (pg_catalog.length(kid) OPERATOR(pg_catalog.<=) 200),
    jwk jsonb NOT NULL,
    key bytea NOT NULL,
    added_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (issuer, kid)
);

COMMENT ON TABLE payymo.jwt_keys IS
'Keys of the registered issuers by kid: the JWK as registered and the key material payymo verifies with (an HS256 secret is a secret: not readable by clients)';

REVOKE ALL ON payymo.jwt_issuers, payymo.jwt_keys FROM PUBLIC;
GRANT SELECT ON payymo.jwt_issuers TO payymo_admin;
GRANT SELECT (issuer, kid, added_at) ON payymo.jwt_keys TO payymo_admin;

SELECT pg_catalog.pg_extension_config_dump('payymo.jwt_issuers', '');
SELECT pg_catalog.pg_extension_config_dump('payymo.jwt_keys', '');

CREATE FUNCTION payymo._jwk_key(algorithm text, a text, b text)
RETURNS bytea
LANGUAGE C IMMUTABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'payymo_jwk_key';

COMMENT ON FUNCTION payymo._jwk_key(text, text, text) IS
'Internal: key material from a JWK''s base64url members (EdDSA x, HS256 k, RS256 n and e, ES256 x and y); raises 22023 for a weak or invalid key';

REVOKE EXECUTE ON FUNCTION payymo._jwk_key(text, text, text) FROM PUBLIC;

CREATE FUNCTION payymo.add_jwt_key(issuer text, jwk jsonb)
RETURNS void
LANGUAGE plpgsql VOLATILE STRICT PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    alg text;
    keys jsonb := CASE WHEN jwk ? 'keys' THEN jwk->'keys' ELSE pg_catalog.jsonb_build_array(jwk) END;
    k jsonb;
    want_kty text;
BEGIN
    SELECT i.algorithm INTO alg FROM payymo.jwt_issuers i WHERE i.issuer OPERATOR(pg_catalog.=) add_jwt_key.issuer;
    IF alg IS NULL THEN
        RAISE EXCEPTION 'issuer "%" is not registered', pg_catalog.left(issuer, 200)
            USING ERRCODE = 'undefined_object', HINT = 'Call payymo.add_jwt_issuer() first.';
    END IF;
    IF pg_catalog.jsonb_typeof(keys) OPERATOR(pg_catalog.<>) 'array' OR pg_catalog.jsonb_array_length(keys) OPERATOR(pg_catalog.=) 0 THEN
        RAISE EXCEPTION 'invalid JWK' USING ERRCODE = 'invalid_parameter_value',
            DETAIL = 'Pass one JWK object or a JWK set {"keys": [...]}.';
    END IF;
    want_kty := CASE alg WHEN 'EdDSA' THEN 'OKP' WHEN 'HS256' THEN 'oct' WHEN 'RS256' THEN 'RSA' ELSE 'EC' END;
    FOR k IN SELECT pg_catalog.jsonb_array_elements(keys) LOOP
        IF k->>'kid' IS NULL OR k->>'kid' OPERATOR(pg_catalog.=) '' THEN
            RAISE EXCEPTION 'invalid JWK' USING ERRCODE = 'invalid_parameter_value',
                DETAIL = 'Every key needs a "kid".';
        END IF;
        IF k->>'kty' IS DISTINCT FROM want_kty
           OR (alg OPERATOR(pg_catalog.=) 'EdDSA' AND k->>'crv' IS DISTINCT FROM 'Ed25519')
           OR (alg OPERATOR(pg_catalog.=) 'ES256' AND k->>'crv' IS DISTINCT FROM 'P-256')
           OR (k ? 'alg' AND k->>'alg' IS DISTINCT FROM alg)
           OR (k ? 'use' AND k->>'use' IS DISTINCT FROM 'sig') THEN
            RAISE EXCEPTION 'invalid JWK' USING ERRCODE = 'invalid_parameter_value',
                DETAIL = pg_catalog.format('Key "%s" is not a %s signing key (kty %s%s).', k->>'kid', alg, want_kty,
                                           CASE alg WHEN 'EdDSA' THEN ', crv Ed25519' WHEN 'ES256' THEN ', crv P-256' ELSE '' END);
        END IF;
        INSERT INTO payymo.jwt_keys (issuer, kid, jwk, key)
        VALUES (add_jwt_key.issuer, k->>'kid', CASE alg WHEN 'HS256' THEN k OPERATOR(pg_catalog.-) 'k' ELSE k END,
                payymo._jwk_key(alg,
                                CASE alg WHEN 'RS256' THEN k->>'n' WHEN 'HS256' THEN k->>'k' ELSE k->>'x' END,
                                CASE alg WHEN 'RS256' THEN k->>'e' WHEN 'ES256' THEN k->>'y' END))
        ON CONFLICT ON CONSTRAINT jwt_keys_pkey DO NOTHING;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'issuer "%" already has a key "%"', pg_catalog.left(issuer, 200), k->>'kid'
                USING ERRCODE = 'unique_violation', HINT = 'Rotate by adding a key with a new kid.';
        END IF;
    END LOOP;
END
$$;

COMMENT ON FUNCTION payymo.add_jwt_key(text, jsonb) IS
'Adds a key (a JWK with a kid, or a JWK set) to a registered issuer, checked against its algorithm';

REVOKE EXECUTE ON FUNCTION payymo.add_jwt_key(text, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION payymo.add_jwt_key(text, jsonb) TO payymo_admin;

CREATE FUNCTION payymo.add_jwt_issuer(issuer text, audience text, algorithm text, jwk jsonb,
                                      tenant_claim text DEFAULT 'tenant_id',
                                      user_claim text DEFAULT 'sub',
                                      leeway_secs integer DEFAULT 60)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF issuer IS NULL OR audience IS NULL OR algorithm IS NULL OR jwk IS NULL
       OR tenant_claim IS NULL OR leeway_secs IS NULL THEN
        RAISE EXCEPTION 'only user_claim may be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF algorithm OPERATOR(pg_catalog.<>) ALL (ARRAY['EdDSA', 'HS256', 'RS256', 'ES256']) THEN
        RAISE EXCEPTION 'unsupported JWT algorithm "%"', pg_catalog.left(algorithm, 20)
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Use EdDSA, HS256, RS256 or ES256.';
    END IF;
    INSERT INTO payymo.jwt_issuers (issuer, audience, algorithm, tenant_claim, user_claim, leeway_secs)
    VALUES (add_jwt_issuer.issuer, add_jwt_issuer.audience, add_jwt_issuer.algorithm,
            add_jwt_issuer.tenant_claim, add_jwt_issuer.user_claim, add_jwt_issuer.leeway_secs);
    PERFORM payymo.add_jwt_key(issuer, jwk);
EXCEPTION WHEN unique_violation THEN
    IF EXISTS (SELECT FROM payymo.jwt_issuers i WHERE i.issuer OPERATOR(pg_catalog.=) add_jwt_issuer.issuer) THEN
        RAISE EXCEPTION 'issuer "%" is already registered', pg_catalog.left(issuer, 200)
            USING ERRCODE = 'unique_violation', HINT = 'Add keys with payymo.add_jwt_key().';
    END IF;
    RAISE;
END
$$;

COMMENT ON FUNCTION payymo.add_jwt_issuer(text, text, text, jsonb, text, text, integer) IS
'Registers an identity provider: issuer, audience, algorithm (EdDSA, HS256, RS256, ES256), its key(s) as JWK or JWK set, the claims naming the tenant and the user, and the clock leeway';

REVOKE EXECUTE ON FUNCTION payymo.add_jwt_issuer(text, text, text, jsonb, text, text, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION payymo.add_jwt_issuer(text, text, text, jsonb, text, text, integer) TO payymo_admin;

CREATE FUNCTION payymo.remove_jwt_key(issuer text, kid text)
RETURNS boolean
LANGUAGE sql VOLATILE STRICT PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    WITH gone AS (
        DELETE FROM payymo.jwt_keys k
         WHERE k.issuer OPERATOR(pg_catalog.=) remove_jwt_key.issuer
           AND k.kid OPERATOR(pg_catalog.=) remove_jwt_key.kid
        RETURNING 1)
    SELECT pg_catalog.count(*) OPERATOR(pg_catalog.>) 0 FROM gone
$$;

COMMENT ON FUNCTION payymo.remove_jwt_key(text, text) IS
'Removes a key of an issuer (tokens signed with it are refused from then on)';

REVOKE EXECUTE ON FUNCTION payymo.remove_jwt_key(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION payymo.remove_jwt_key(text, text) TO payymo_admin;

CREATE FUNCTION payymo.drop_jwt_issuer(issuer text)
RETURNS boolean
LANGUAGE sql VOLATILE STRICT PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    WITH gone AS (
        DELETE FROM payymo.jwt_issuers i
         WHERE i.issuer OPERATOR(pg_catalog.=) drop_jwt_issuer.issuer
        RETURNING 1)
    SELECT pg_catalog.count(*) OPERATOR(pg_catalog.>) 0 FROM gone
$$;

COMMENT ON FUNCTION payymo.drop_jwt_issuer(text) IS
'Unregisters an identity provider and its keys';

REVOKE EXECUTE ON FUNCTION payymo.drop_jwt_issuer(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION payymo.drop_jwt_issuer(text) TO payymo_admin;

-- Not SECURITY DEFINER (its context must outlive it): it reads the registry
-- as the registry's owner from C.
CREATE FUNCTION payymo.set_tenant_jwt(token text, is_local boolean DEFAULT true)
RETURNS bigint
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'payymo_set_tenant_jwt';

COMMENT ON FUNCTION payymo.set_tenant_jwt(text, boolean) IS
'Verifies a JWT of a registered issuer (signature, exp/nbf, aud, tenant and user claims) and sets its tenant and user as the context (for the transaction by default); any failure raises 28000 and clears the context';
