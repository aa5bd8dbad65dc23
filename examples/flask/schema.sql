-- The Payymo schema of the Flask example: the seed's bank connections and
-- transactions (token columns bytea), owned by a NOLOGIN role and put under
-- tenancy; the application's role gets DML only.  Run by a superuser in a
-- database with payymo installed; the application's role must exist.
\set ON_ERROR_STOP 1
SET client_min_messages = warning;

DO $$ BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'flask_owner') THEN
        CREATE ROLE flask_owner NOLOGIN;
    END IF;
END $$;
CREATE SCHEMA bank AUTHORIZATION flask_owner;
GRANT USAGE ON SCHEMA bank TO :app_role;

SET ROLE flask_owner;
CREATE TABLE bank.bank_connections (
    id serial PRIMARY KEY,
    tenant_id integer NOT NULL,
    bank_id varchar(100) NOT NULL,
    bank_name varchar(100),
    account_id varchar(100) NOT NULL,
    account_name varchar(255),
    access_token bytea CHECK (payymo.is_token(access_token)),
    refresh_token bytea CHECK (payymo.is_token(refresh_token)),
    token_expires_at timestamptz,
    status varchar(20) DEFAULT 'active',
    created_at timestamptz DEFAULT now(),
    UNIQUE (tenant_id, bank_id, account_id)
);
CREATE TABLE bank.transactions (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    bank_connection_id integer NOT NULL,
    amount numeric(12, 2) NOT NULL,
    description text,
    booked_at timestamptz NOT NULL DEFAULT now()
);
SELECT payymo.enable_tenancy('bank.bank_connections');
SELECT payymo.enable_tenancy('bank.transactions');
SELECT payymo.add_tenant_reference('bank.transactions', 'bank_connection_id', 'bank.bank_connections');
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA bank TO :app_role;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA bank TO :app_role;
RESET ROLE;
