#!/usr/bin/python3
"""Tenant isolation as a Python application sees it (psycopg2, bind parameters).

The scenario shared with test/drivers/node/isolation.js (test/extended/drivers.t
runs both, directly and through PgBouncer): --clients connections run --txns
transactions each, alternating tenants alpha and bravo.  Each transaction:

    BEGIN
    SELECT payymo.set_tenant(%s)                       -> the tenant's id
    SELECT payymo.current_tenant()                     -> the same
    INSERT INTO items (..., token) VALUES (..., payymo.encrypt_token(%s, 'items.token'))
        RETURNING tenant_id, token                     -> stamped with the tenant
    SELECT tenant_id, marker FROM items                -> only the tenant's rows,
                                                          all of this client's there
    SELECT marker, payymo.decrypt_token(token, 'items.token') FROM items
        WHERE writer = %s                              -> every plaintext back
    COMMIT

and every 5th transaction adds three that must fail: one without set_tenant
(42501), one decrypting the other tenant's ciphertext (class 22), and one
set_tenant with a wrong key (28000).  Prints one line of counts; exits 1 on
any violation or unexpected error.
"""
import argparse
import os
import sys
import threading
import uuid

import psycopg2
import psycopg2.extras

psycopg2.extras.register_uuid()
CTX = "items.token"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--dbname", default="payymo_ext")
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--txns", type=int, default=60)
    args = ap.parse_args()

    tenants = [(os.environ["ALPHA_KEY"], int(os.environ["ALPHA_ID"])),
               (os.environ["BRAVO_KEY"], int(os.environ["BRAVO_ID"]))]
    run = uuid.uuid4().hex[:8]
    lock = threading.Lock()
    totals = dict(transactions=0, committed=0, rows_checked=0, tokens_checked=0,
                  refused=0, violations=0, errors=0)
    ciphertexts = {t: [] for _, t in tenants}   # tenant id -> its tokens

    def violation(msg):
        with lock:
            totals["violations"] += 1
        print(f"# VIOLATION: {msg}", flush=True)

    def expect_error(conn, prefix, what, sql, params, key=None):
        """Run sql in its own transaction (after set_tenant(key) if given);
        it must fail with a SQLSTATE starting with prefix."""
        try:
            with conn, conn.cursor() as cur:
                if key:
                    cur.execute("SELECT payymo.set_tenant(%s)", (key,))
                cur.execute(sql, params)
                cur.fetchall()
            violation(f"{what}: succeeded")
        except psycopg2.Error as e:
            if not (e.pgcode or "").startswith(prefix):
                violation(f"{what}: SQLSTATE {e.pgcode}, wanted {prefix}*")
        return 1

    def client(c):
        local = dict(transactions=0, committed=0, rows_checked=0, tokens_checked=0,
                     refused=0, errors=0)
        writer = f"{run}-py-{c}"
        plain = {}           # marker -> plaintext, this client's rows
        conn = psycopg2.connect(host=args.host, port=args.port, dbname=args.dbname,
                                user="payymo_client", connect_timeout=10)
        for i in range(args.txns):
            key, tid = tenants[(c + i) % 2]
            other_tid = tenants[(c + i + 1) % 2][1]
            try:
                with conn, conn.cursor() as cur:
                    cur.execute("SELECT payymo.set_tenant(%s)", (key,))
                    if cur.fetchone()[0] != tid:
                        violation(f"{writer} txn {i}: set_tenant returned another id")
                    cur.execute("SELECT payymo.current_tenant()")
                    if cur.fetchone()[0] != tid:
                        violation(f"{writer} txn {i}: current_tenant is not {tid}")
                    m, secret = uuid.uuid4(), f"tok-{uuid.uuid4()}"
                    cur.execute(
                        "INSERT INTO items (marker, writer, payload, token) "
                        "VALUES (%s, %s, %s, payymo.encrypt_token(%s, %s)) "
                        "RETURNING tenant_id, token",
                        (m, writer, str(tid), secret, CTX))
                    row_tid, token = cur.fetchone()
                    if row_tid != tid:
                        violation(f"{writer} txn {i}: insert stamped with {row_tid}")
                    plain[m] = (tid, secret)
                    with lock:
                        ciphertexts[tid].append(bytes(token))
                    cur.execute("SELECT tenant_id, marker FROM items")
                    rows = cur.fetchall()
                    local["rows_checked"] += len(rows)
                    seen = {mk for t, mk in rows}
                    for t, mk in rows:
                        if t != tid:
                            violation(f"{writer} txn {i}: tenant {tid} saw a row of {t}")
                    lost = [mk for mk, (t, _) in plain.items() if t == tid and mk not in seen]
                    if lost:
                        violation(f"{writer} txn {i}: {len(lost)} own rows not visible")
                    cur.execute("SELECT marker, payymo.decrypt_token(token, %s) "
                                "FROM items WHERE writer = %s", (CTX, writer))
                    for mk, text in cur.fetchall():
                        local["tokens_checked"] += 1
                        if plain.get(mk) != (tid, text):
                            violation(f"{writer} txn {i}: token of {mk} decrypted wrong")
                local["transactions"] += 1
                local["committed"] += 1
                if i % 5 == 0:
                    local["refused"] += expect_error(
                        conn, "42501", f"{writer} txn {i}: read without set_tenant",
                        "SELECT count(*) FROM items", ())
                    with lock:
                        foreign = ciphertexts[other_tid][-1] if ciphertexts[other_tid] else None
                    if foreign is not None:
                        local["refused"] += expect_error(
                            conn, "22", f"{writer} txn {i}: decrypt of a foreign token",
                            "SELECT payymo.decrypt_token(%s, %s)",
                            (psycopg2.Binary(foreign), CTX), key=key)
                    local["refused"] += expect_error(
                        conn, "28000", f"{writer} txn {i}: mistyped key",
                        "SELECT payymo.set_tenant(%s)", (key[:-1] + ("a" if key[-1] != "a" else "b"),))
                    local["transactions"] += 3 if foreign is not None else 2
            except psycopg2.Error as e:
                local["errors"] += 1
                print(f"# {writer} txn {i}: unexpected {e.pgcode}: {str(e).strip()}", flush=True)
                conn.rollback()
        conn.close()
        with lock:
            for k, v in local.items():
                totals[k] += v

    threads = [threading.Thread(target=client, args=(c,)) for c in range(args.clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(f"driver=psycopg2-{psycopg2.__version__.split()[0]} clients={args.clients} "
          + " ".join(f"{k}={v}" for k, v in totals.items()), flush=True)
    sys.exit(1 if totals["violations"] or totals["errors"] else 0)


if __name__ == "__main__":
    main()
