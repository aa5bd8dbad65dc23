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
