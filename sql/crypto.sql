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
