"""The Payymo request flow on payymo, as a Flask + SQLAlchemy application.

Every request:

1. takes the request id from ``X-Request-ID`` (or makes one) and the
   credential from ``Authorization: Bearer <credential>``: a tenant's API
   key (``pyk_...``), a user's session token from ``POST /login``
   (``pys_...``), or a JWT of an identity provider registered with
   ``payymo.add_jwt_issuer``; none: 401, and no database work;
2. checks out a pooled connection and opens a transaction in which it sets
   ``payymo.request_id`` and calls ``payymo.set_tenant(key)``,
   ``payymo.set_session(token)`` or ``payymo.set_tenant_jwt(jwt)`` -- a bind
   parameter -- so that the database, not the application, decides the
   tenant (and the user), for this transaction only (safe behind a
   transaction pooler); a refused credential: 401; a tenant over its rate
   limit: 429;
3. resolves the ``Host`` header with ``payymo.tenant_for_domain``: a request
   to another tenant's white-label domain is refused (403) -- the key, not
   the host or any header, decides whose rows a request reaches;
4. runs the view's queries, which carry no ``WHERE tenant_id = ...``: row
   level security filters them, and the trigger stamps inserts;
5. commits (rolls back on an error) and returns the connection.

``POST /login`` ({"email", "password"}, the tenant from the ``Host``:
its custom domain, or its slug as the first label) calls ``payymo.login``
with the client's address for the throttle, and returns the session token;
``POST /logout`` revokes it.  Passwords and tokens only ever travel as bind
parameters.

Log lines carry the tenant and the request id, in the application's log
(below) and in PostgreSQL's server log (payymo's log context).

    FLASK_DSN=postgresql+psycopg2://app@/db?host=/run/pgbouncer flask --app app run
"""
import logging
import os
import re
import uuid

from flask import Flask, abort, g, jsonify, request
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError

REQUEST_ID = re.compile(r"^[A-Za-z0-9._:/+=@-]{1,128}$")   # what payymo.request_id accepts
TOKEN_CONTEXT = "bank_connections.access_token"


def sqlstate(error):
    return getattr(error.orig, "pgcode", None)


def tenant_for_host(conn, host):
    """The tenant whose white-label domain host is, or None (also for a
    host that is no domain name, such as localhost, which payymo refuses
    with 22023: in a savepoint, so the transaction goes on)."""
    try:
        with conn.begin_nested():
            return conn.execute(text("SELECT tenant_id FROM payymo.tenant_for_domain(:host)"),
                                {"host": host}).scalar()
    except DBAPIError as error:
        if sqlstate(error) == "22023":
            return None
        raise


def set_context(conn, credential):
    """The database verifies the credential and sets the context: the
    function follows from its shape; the database decides if it is valid."""
    if credential.startswith("pys_"):
        function = "payymo.set_session"
    elif credential.count(".") == 2:
        function = "payymo.set_tenant_jwt"
    else:
        function = "payymo.set_tenant"
    return conn.execute(text(f"SELECT {function}(:credential)"), {"credential": credential}).scalar_one()


def create_app(dsn=None, pool_size=5):
    app = Flask(__name__)
    engine = create_engine(dsn or os.environ["FLASK_DSN"], future=True,
                           pool_size=pool_size, max_overflow=0)
    log = logging.getLogger("payymo.example")

    @app.before_request
    def open_tenant_transaction():
        rid = request.headers.get("X-Request-ID", "")
        g.request_id = rid if REQUEST_ID.match(rid) else str(uuid.uuid4())
        if request.endpoint == "login":
            return None
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bearer "):
            return jsonify(error="authentication required"), 401
        g.conn = engine.connect()
        g.conn.begin()
        try:
            g.conn.execute(text("SELECT pg_catalog.set_config('payymo.request_id', :rid, true)"),
                           {"rid": g.request_id})
            g.tenant_id = set_context(g.conn, auth[len("Bearer "):])
        except DBAPIError as error:
            if sqlstate(error) == "28000":
                return jsonify(error="invalid credential"), 401
            if sqlstate(error) == "53400":
                return jsonify(error="rate limit exceeded"), 429
            raise
        host_tenant = tenant_for_host(g.conn, request.host)
        if host_tenant is not None and host_tenant != g.tenant_id:
            return jsonify(error="this key does not belong to this domain"), 403
        g.log = logging.LoggerAdapter(log, {"tenant_id": g.tenant_id, "request_id": g.request_id})
        return None

    @app.teardown_request
    def close_tenant_transaction(error):
        conn = g.pop("conn", None)
        if conn is None:
            return
        if error is None and not g.get("failed"):
            conn.commit()
        else:
            conn.rollback()
        conn.close()

    @app.after_request
    def add_request_id(response):
        response.headers["X-Request-ID"] = g.get("request_id", "")
        if response.status_code >= 400:
            g.failed = True
        return response

    @app.errorhandler(DBAPIError)
    def database_error(error):
        g.failed = True
        log.warning("database refused the request: %s", sqlstate(error), exc_info=error)
        status = {"23503": 409, "23505": 409, "42501": 403, "22P02": 400}.get(sqlstate(error), 500)
        return jsonify(error="refused by the database", sqlstate=sqlstate(error)), status

    @app.post("/login")
    def login():
        body = request.get_json(force=True)
        host = request.host.split(":")[0]
        with engine.connect() as conn:
            tenant = tenant_for_host(conn, host)
            try:
                token = conn.execute(
                    text("SELECT payymo.login(:tenant, :email, :password, client => :client)"),
                    {"tenant": host if tenant is not None else host.split(".")[0],
                     "email": body.get("email"), "password": body.get("password"),
                     "client": request.remote_addr}).scalar_one()
                conn.commit()
            except DBAPIError as error:
                conn.rollback()
                if sqlstate(error) == "28000":
                    return jsonify(error="invalid email or password"), 401
                if sqlstate(error) == "53400":
                    return jsonify(error="too many failed logins"), 429
                raise
        return jsonify(session=token)

    @app.post("/logout")
    def logout():
        g.conn.execute(text("SELECT payymo.logout(:token)"),
                       {"token": request.headers["Authorization"][len("Bearer "):]})
        return jsonify(ok=True)

    @app.get("/me")
    def me():
        user = g.conn.execute(text(
            "SELECT id, email, role FROM payymo.users WHERE id = payymo.current_user_id()")).one()
        return jsonify(tenant_id=g.tenant_id, **dict(user._mapping))

    @app.get("/bank-connections")
    def list_connections():
        rows = g.conn.execute(text(
            "SELECT id, bank_id, account_id, account_name FROM bank.bank_connections ORDER BY id"))
        return jsonify([dict(r._mapping) for r in rows])

    @app.post("/bank-connections")
    def create_connection():
        body = request.get_json(force=True)
        new_id = g.conn.execute(text(
            "INSERT INTO bank.bank_connections (bank_id, account_id, account_name, access_token)"
            " VALUES (:bank_id, :account_id, :account_name, payymo.encrypt_token(:token, :ctx))"
            " RETURNING id"),
            {**{k: body.get(k) for k in ("bank_id", "account_id", "account_name")},
             "token": body["access_token"], "ctx": TOKEN_CONTEXT}).scalar_one()
        g.log.info("bank connection %s created", new_id)
        return jsonify(id=new_id), 201

    @app.get("/bank-connections/<int:conn_id>/token")
    def connection_token(conn_id):
        token = g.conn.execute(text(
            "SELECT payymo.decrypt_token(access_token, :ctx) FROM bank.bank_connections WHERE id = :id"),
            {"ctx": TOKEN_CONTEXT, "id": conn_id}).scalar()
        if token is None:
            abort(404)
        return jsonify(access_token=token)

    @app.get("/transactions")
    def list_transactions():
        rows = g.conn.execute(text(
            "SELECT t.id, t.bank_connection_id, t.amount::text AS amount, t.description"
            "  FROM bank.transactions t ORDER BY t.id"))
        return jsonify([dict(r._mapping) for r in rows])

    @app.post("/transactions")
    def create_transaction():
        body = request.get_json(force=True)
        new_id = g.conn.execute(text(
            "INSERT INTO bank.transactions (bank_connection_id, amount, description)"
            " VALUES (:bank_connection_id, :amount, :description) RETURNING id"),
            {k: body.get(k) for k in ("bank_connection_id", "amount", "description")}).scalar_one()
        return jsonify(id=new_id), 201

    return app
