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
