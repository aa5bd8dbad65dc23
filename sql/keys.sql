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
