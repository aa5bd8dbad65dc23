-- Schema of the reliability suite (test/extended/*.t), run by the superuser
-- in a fresh database payymo_ext; see test/extended/common.sh.
\set ON_ERROR_STOP 1
SET client_min_messages = warning;

CREATE EXTENSION payymo;

CREATE ROLE payymo_client LOGIN NOSUPERUSER NOBYPASSRLS;
-- all tenants share it: no query text between its sessions (audit())
ALTER ROLE payymo_client SET track_activities = off;
CREATE ROLE payymo_owner NOLOGIN NOSUPERUSER NOBYPASSRLS;

CREATE TABLE public.items (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    marker uuid NOT NULL,          -- generated and logged by the client
    writer text NOT NULL,          -- which client wrote it
    payload text NOT NULL,
    version integer NOT NULL DEFAULT 0,
    token bytea                    -- payymo.encrypt_token(..., 'items.token')
);
ALTER TABLE public.items OWNER TO payymo_owner;
-- enable_tenancy works as the table's owner, which needs CREATE on the
-- schema for the index it adds (PostgreSQL's rule for any index).
GRANT CREATE ON SCHEMA public TO payymo_owner;
SELECT payymo.enable_tenancy('public.items');
CREATE INDEX items_marker_idx ON public.items (tenant_id, marker);
GRANT SELECT, INSERT, UPDATE, DELETE ON public.items TO payymo_client;
