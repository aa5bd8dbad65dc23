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
