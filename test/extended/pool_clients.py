#!/usr/bin/python3
"""Many clients, two tenants, few server connections (test/extended/pooler.t).

Each of --clients threads opens its own connection to PgBouncer (transaction
pooling) and runs --txns transactions, alternating tenants alpha and bravo
(client c, transaction i: alpha when c + i is even).  Every transaction:

    BEGIN
    current_setting('payymo.tenant_id') must be ''     (nothing inherited)
    SELECT payymo.set_tenant(%s)                       must return the tenant
    SELECT payymo.current_tenant(), pg_backend_pid()   must be the tenant
    SELECT tenant_id, marker FROM items                every row the tenant's,
                                                       and every seeded row there
    every 4th: INSERT ... RETURNING tenant_id          stamped with the tenant
    COMMIT

and every 5th transaction also runs a transaction that does not call
set_tenant and must fail with 42501 (no context, fail closed) -- a context
left on the pooled server connection by another client would make it pass.

With --session-clients N, the first N clients use set_tenant(key, false)
instead: the hazard the README warns about, which the checks above must
then report (a positive control: "inherited" counts what the other clients
inherited).

With --credential session or jwt, the transactions set the context with
payymo.set_session() or payymo.set_tenant_jwt() instead, from a user's
session token or JWT (ALPHA_SESSION, ALPHA_JWT, ...); seeding and the final
reads still use the API keys.

Prints one line of counts; exits 1 on any violation or unexpected error.
Keys and tenant ids come from the environment (ALPHA_KEY, ALPHA_ID, ...).
"""
import argparse
import os
import random
import sys
import threading
import uuid

import psycopg2
import psycopg2.errors
import psycopg2.extras

psycopg2.extras.register_uuid()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--dbname", default="payymo_ext")
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--txns", type=int, default=150)
    ap.add_argument("--seed-rows", type=int, default=20)
    ap.add_argument("--session-clients", type=int, default=0,
                    help="the first N clients call set_tenant(key, false) "
                         "(session scope): the hazard, for a positive control")
    ap.add_argument("--credential", choices=["key", "session", "jwt"], default="key",
                    help="what the pooled transactions present")
    args = ap.parse_args()
    setter = {"key": "payymo.set_tenant", "session": "payymo.set_session",
              "jwt": "payymo.set_tenant_jwt"}[args.credential]
    credential = {name: os.environ[f"{name.upper()}_{args.credential.upper()}"]
                  for name in ("alpha", "bravo")}

    tenants = {
        "alpha": (os.environ["ALPHA_KEY"], int(os.environ["ALPHA_ID"])),
        "bravo": (os.environ["BRAVO_KEY"], int(os.environ["BRAVO_ID"])),
    }
    dsn = dict(host=args.host, port=args.port, dbname=args.dbname,
               user="payymo_client", connect_timeout=10)

    run = uuid.uuid4().hex[:8]          # tags this run's rows (writer column)

    # Seed rows per tenant through the pooler, as a client would.
    seeded = {}          # marker -> tenant id
    conn = psycopg2.connect(**dsn)
    for name, (key, tid) in tenants.items():
        with conn, conn.cursor() as cur:
            cur.execute("SELECT payymo.set_tenant(%s)", (key,))
            for _ in range(args.seed_rows):
                m = uuid.uuid4()
                cur.execute("INSERT INTO items (marker, writer, payload) "
                            "VALUES (%s, %s, 'seed') RETURNING tenant_id", (m, f"{run}-seed"))
                if cur.fetchone()[0] != tid:
                    print(f"# seed row stamped with the wrong tenant")
                    sys.exit(1)
                seeded[m] = tid
    conn.close()

    lock = threading.Lock()
    totals = dict(transactions=0, rows_checked=0, inserts=0, no_context_checks=0,
                  violations=0, errors=0, inherited=0)
    backends = set()
    written = {}         # marker -> tenant id, rows inserted by the clients

    def violation(msg):
        with lock:
            totals["violations"] += 1
            if totals["violations"] <= 20:
                print(f"# VIOLATION: {msg}", flush=True)

    def client(c):
        rng = random.Random(c)
        local = dict(transactions=0, rows_checked=0, inserts=0, no_context_checks=0,
                     errors=0, inherited=0)
        scope_local = c >= args.session_clients
        mine = {}
        pids = set()
        try:
            conn = psycopg2.connect(**dsn, application_name=f"pool-client-{c}")
        except psycopg2.Error as e:
            print(f"# client {c}: connect failed: {e}", flush=True)
            with lock:
                totals["errors"] += 1
            return
        for i in range(args.txns):
            name = "alpha" if (c + i) % 2 == 0 else "bravo"
            key, tid = tenants[name]
            try:
                with conn, conn.cursor() as cur:   # BEGIN ... COMMIT
                    cur.execute("SELECT current_setting('payymo.tenant_id')")
                    before = cur.fetchone()[0]
                    if before != "":
                        if scope_local:
                            local["inherited"] += 1
                        violation(f"client {c} txn {i}: inherited context {before!r}")
                    cur.execute(f"SELECT {setter}(%s, %s)", (credential[name], scope_local))
                    if cur.fetchone()[0] != tid:
                        violation(f"client {c} txn {i}: {setter} returned another id")
                    cur.execute("SELECT payymo.current_tenant(), pg_backend_pid()")
                    cur_tid, pid = cur.fetchone()
                    pids.add(pid)
                    if cur_tid != tid:
                        violation(f"client {c} txn {i}: current_tenant {cur_tid} != {tid}")
                    if rng.random() < 0.5:
                        cur.execute("SELECT pg_sleep(%s)", (rng.random() / 500,))
                    cur.execute("SELECT tenant_id, marker FROM items")
                    rows = cur.fetchall()
                    local["rows_checked"] += len(rows)
                    seen = set()
                    for row_tid, marker in rows:
                        seen.add(marker)
                        if row_tid != tid:
                            violation(f"client {c} txn {i}: tenant {tid} saw a row of {row_tid}")
                    missing = [m for m, t in seeded.items() if t == tid and m not in seen]
                    if missing:
                        violation(f"client {c} txn {i}: {len(missing)} of its seeded rows not visible")
                    if i % 4 == 0:
                        m = uuid.uuid4()
                        cur.execute("INSERT INTO items (marker, writer, payload) "
                                    "VALUES (%s, %s, 'pool') RETURNING tenant_id",
                                    (m, f"{run}-pool-{c}"))
                        if cur.fetchone()[0] != tid:
                            violation(f"client {c} txn {i}: insert stamped with another tenant")
                        mine[m] = tid
                        local["inserts"] += 1
                local["transactions"] += 1
                if i % 5 == 0:
                    try:
                        with conn, conn.cursor() as cur:
                            cur.execute("SELECT count(*) FROM items")
                            violation(f"client {c} txn {i}: a transaction without "
                                      f"set_tenant read items ({cur.fetchone()[0]} rows)")
                        if scope_local:
                            local["inherited"] += 1
                    except psycopg2.errors.InsufficientPrivilege:
                        pass            # 42501: no tenant context, as it must be
                    local["no_context_checks"] += 1
                    local["transactions"] += 1
            except psycopg2.Error as e:
                local["errors"] += 1
                print(f"# client {c} txn {i}: unexpected error "
                      f"{e.pgcode}: {str(e).strip()}", flush=True)
                try:
                    conn.rollback()
                except psycopg2.Error:
                    break
        conn.close()
        with lock:
            for k, v in local.items():
                totals[k] += v
            backends.update(pids)
            written.update(mine)

    threads = [threading.Thread(target=client, args=(c,)) for c in range(args.clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    # Afterwards, each tenant sees exactly its seeded and written rows.
    conn = psycopg2.connect(**dsn)
    expect = dict(seeded)
    expect.update(written)
    final_checked = 0
    for name, (key, tid) in tenants.items():
        with conn, conn.cursor() as cur:
            cur.execute("SELECT payymo.set_tenant(%s)", (key,))
            cur.execute("SELECT tenant_id, marker, writer FROM items")
            rows = cur.fetchall()
            final_checked += len(rows)
            got = {m for t, m, w in rows if w.startswith(run + "-")}
            want = {m for m, t in expect.items() if t == tid}
            if any(t != tid for t, m, w in rows):
                violation(f"final read of {name}: foreign rows")
            if got != want:
                violation(f"final read of {name}: {len(want - got)} rows missing, "
                          f"{len(got - want)} unexpected")
    conn.close()

    print(f"clients={args.clients} transactions={totals['transactions']} "
          f"rows_checked={totals['rows_checked'] + final_checked} "
          f"inserts={totals['inserts']} no_context_checks={totals['no_context_checks']} "
          f"server_backends={len(backends)} errors={totals['errors']} "
          f"session_clients={args.session_clients} inherited={totals['inherited']} "
          f"violations={totals['violations']}", flush=True)
    sys.exit(1 if totals["violations"] or totals["errors"] else 0)


if __name__ == "__main__":
    main()
