#!/usr/bin/python3
"""Concurrency soak (test/extended/soak.t).

--clients threads (each with its own client-role connection and an admin
connection) run random transactions for --seconds against --tenants tenants
with --keys keys each, as payymo_client, straight to PostgreSQL:

  read      every visible row must carry the transaction's tenant, and be a
            row some client logged (before inserting it) for that tenant;
            every row this client committed for that tenant must be visible
  insert    1-3 rows, client-generated marker, token = encrypt_token(secret)
  update    one of this client's rows: version + 1, exactly one row
  delete    one of this client's rows, exactly one row
  decrypt   up to 5 of this client's tokens must decrypt to their secrets;
            another tenant's token must not (SQLSTATE class 22)
  attack    with another tenant's marker: SELECT/UPDATE/DELETE touch 0 rows;
            INSERT with the other tenant's id fails with 42501
  revoke    the admin connection revokes a random active key and issues a
            replacement; right after the revoke commits, set_tenant with the
            revoked key must fail with 28000
  replay    set_tenant with a key revoked earlier must fail with 28000

The client-side log (marker -> tenant, writer, version, secret, state) is
written before each statement and confirmed after each commit.  Afterwards
the superuser compares every row with it (tenant, version, present or
deleted, nothing unknown) and each tenant decrypts all its tokens.

Prints one line of counts; exits 1 on any violation or unexpected error.
"""
import argparse
import random
import sys
import threading
import time
import uuid

import psycopg2
import psycopg2.errors
import psycopg2.extras

psycopg2.extras.register_uuid()
CTX = "items.token"
OPS = [("read", 30), ("insert", 25), ("update", 14), ("delete", 8), ("decrypt", 10),
       ("attack", 6), ("revoke", 3), ("replay", 4)]


class Soak:
    def __init__(self, args):
        self.args = args
        self.lock = threading.RLock()   # violation() is called with it held
        self.dsn = dict(host=args.host, port=args.port, dbname=args.dbname,
                        connect_timeout=10)
        self.rows = {}          # marker -> dict(tenant, writer, version, secret, state, token)
        self.active = {}        # tenant id -> [active keys]
        self.revoked = {}       # key -> tenant id (revoke committed)
        self.revoking = set()   # keys whose revocation is under way
        self.committed = []     # markers in commit order (to pick foreign rows)
        self.counts = dict(transactions=0, rows_checked=0, inserts=0, updates=0,
                           deletes=0, tokens_checked=0, attacks_refused=0,
                           revocations=0, replays=0, revoked_refused=0, raced_revocations=0,
                           violations=0, errors=0)
        self.ops = {name: 0 for name, _ in OPS}

    def violation(self, msg):
        with self.lock:
            self.counts["violations"] += 1
            n = self.counts["violations"]
        if n <= 30:
            print(f"# VIOLATION: {msg}", flush=True)

    def count(self, **kw):
        with self.lock:
            for k, v in kw.items():
                self.counts[k] += v

    def setup(self):
        admin = psycopg2.connect(**self.dsn, user="postgres")
        admin.autocommit = True
        with admin.cursor() as cur:
            for t in range(self.args.tenants):
                cur.execute("SELECT tenant_id, api_key FROM payymo.create_tenant(%s, %s)",
                            (f"soak-{t}", f"Soak {t}"))
                tid, key = cur.fetchone()
                self.active[tid] = [key]
                for _ in range(self.args.keys - 1):
                    cur.execute("SELECT payymo.issue_api_key(%s, 'soak')", (tid,))
                    self.active[tid].append(cur.fetchone()[0])
        admin.close()

    # --- one client
    def client(self, c, deadline):
        rng = random.Random()
        writer = f"soak-{c}"
        conn = psycopg2.connect(**self.dsn, user="payymo_client", application_name=writer)
        admin = psycopg2.connect(**self.dsn, user="postgres", application_name=writer + "-admin")
        admin.autocommit = True
        mine = {}                                  # tenant id -> [markers], live rows
        names = [n for n, _ in OPS]
        weights = [w for _, w in OPS]
        while time.monotonic() < deadline:
            op = rng.choices(names, weights)[0]
            with self.lock:
                self.ops[op] += 1
                # (a tenant's list is empty while op_revoke replaces its only key)
                tid = rng.choice([t for t, keys in self.active.items() if keys])
                key = rng.choice(self.active[tid])
            try:
                getattr(self, "op_" + op)(conn, admin, rng, writer, mine, tid, key)
            except psycopg2.errors.InvalidAuthorizationSpecification:
                # 28000 on a key picked as active: only allowed if a revocation
                # of that very key committed meanwhile.
                conn.rollback()
                with self.lock:
                    raced = key in self.revoked or key in self.revoking
                if raced:
                    self.count(raced_revocations=1)
                else:
                    self.violation(f"{writer} {op}: active key of {tid} refused")
            except psycopg2.Error as e:
                self.count(errors=1)
                print(f"# {writer} {op}: unexpected {e.pgcode}: {str(e).strip()}", flush=True)
                conn.rollback()
            self.count(transactions=1)
        conn.close()
        admin.close()

    def begin(self, cur, key, tid, what):
        cur.execute("SELECT payymo.set_tenant(%s), payymo.current_tenant()", (key,))
        got = cur.fetchone()
        if got != (tid, tid):
            self.violation(f"{what}: set_tenant/current_tenant gave {got}, wanted {tid}")

    def op_read(self, conn, admin, rng, writer, mine, tid, key):
        with conn, conn.cursor() as cur:
            self.begin(cur, key, tid, writer + " read")
            cur.execute("SELECT marker, tenant_id FROM items")
            rows = cur.fetchall()
        self.count(rows_checked=len(rows))
        seen = set()
        with self.lock:
            for marker, row_tid in rows:
                seen.add(marker)
                logged = self.rows.get(marker)
                if row_tid != tid or logged is None or logged["tenant"] != tid:
                    self.violation(f"{writer} read as {tid}: foreign or unknown row "
                                   f"{marker} (tenant_id {row_tid}, logged "
                                   f"{logged and logged['tenant']})")
        lost = [m for m in mine.get(tid, []) if m not in seen]
        if lost:
            self.violation(f"{writer} read as {tid}: {len(lost)} own committed rows missing")

    def op_insert(self, conn, admin, rng, writer, mine, tid, key):
        new, tried = [], []
        try:
            with conn, conn.cursor() as cur:
                self.begin(cur, key, tid, writer + " insert")
                for _ in range(rng.randint(1, 3)):
                    m, secret = uuid.uuid4(), f"secret-{uuid.uuid4().hex}"
                    with self.lock:
                        self.rows[m] = dict(tenant=tid, writer=writer, version=0,
                                            secret=secret, state="pending", token=None)
                    tried.append(m)
                    cur.execute("INSERT INTO items (marker, writer, payload, token) "
                                "VALUES (%s, %s, 'soak', payymo.encrypt_token(%s, %s)) "
                                "RETURNING tenant_id, token", (m, writer, secret, CTX))
                    row_tid, token = cur.fetchone()
                    if row_tid != tid:
                        self.violation(f"{writer} insert as {tid}: stamped {row_tid}")
                    new.append((m, bytes(token)))
        except psycopg2.Error:
            with self.lock:                 # rolled back: must never appear
                for m in tried:
                    self.rows[m]["state"] = "rolled back"
            raise
        with self.lock:
            for m, token in new:
                self.rows[m].update(state="committed", token=token)
                self.committed.append(m)
        mine.setdefault(tid, []).extend(m for m, _ in new)
        self.count(inserts=len(new))

    def op_update(self, conn, admin, rng, writer, mine, tid, key):
        if not mine.get(tid):
            return self.op_insert(conn, admin, rng, writer, mine, tid, key)
        m = rng.choice(mine[tid])
        with conn, conn.cursor() as cur:
            self.begin(cur, key, tid, writer + " update")
            cur.execute("UPDATE items SET version = version + 1, payload = 'updated' "
                        "WHERE marker = %s RETURNING tenant_id, version", (m,))
            got = cur.fetchall()
        with self.lock:
            want = self.rows[m]["version"] + 1
            if got != [(tid, want)]:
                self.violation(f"{writer} update of {m} as {tid}: {got}, wanted [({tid}, {want})]")
            else:
                self.rows[m]["version"] = want
        self.count(updates=1)

    def op_delete(self, conn, admin, rng, writer, mine, tid, key):
        if not mine.get(tid):
            return self.op_insert(conn, admin, rng, writer, mine, tid, key)
        m = mine[tid].pop(rng.randrange(len(mine[tid])))
        with conn, conn.cursor() as cur:
            self.begin(cur, key, tid, writer + " delete")
            cur.execute("DELETE FROM items WHERE marker = %s RETURNING tenant_id", (m,))
            got = cur.fetchall()
        if got != [(tid,)]:
            self.violation(f"{writer} delete of {m} as {tid}: {got}")
        with self.lock:
            self.rows[m]["state"] = "deleted"
        self.count(deletes=1)

    def foreign_row(self, rng, tid):
        """A committed row of another tenant (marker, its log entry), or None."""
        with self.lock:
            for _ in range(20):
                if not self.committed:
                    return None
                m = self.committed[rng.randrange(len(self.committed))]
                r = self.rows[m]
                if r["tenant"] != tid and r["state"] == "committed":
                    return m, dict(r)
        return None

    def op_decrypt(self, conn, admin, rng, writer, mine, tid, key):
        sample = rng.sample(mine.get(tid, []), min(5, len(mine.get(tid, []))))
        if sample:
            with conn, conn.cursor() as cur:
                self.begin(cur, key, tid, writer + " decrypt")
                cur.execute("SELECT marker, payymo.decrypt_token(token, %s) FROM items "
                            "WHERE marker = ANY(%s)", (CTX, sample))
                got = dict(cur.fetchall())
            with self.lock:
                for m in sample:
                    if got.get(m) != self.rows[m]["secret"]:
                        self.violation(f"{writer} decrypt of {m} as {tid}: wrong or missing")
            self.count(tokens_checked=len(sample))
        foreign = self.foreign_row(rng, tid)
        if foreign:
            try:
                with conn, conn.cursor() as cur:
                    self.begin(cur, key, tid, writer + " foreign decrypt")
                    cur.execute("SELECT payymo.decrypt_token(%s, %s)",
                                (psycopg2.Binary(foreign[1]["token"]), CTX))
                    cur.fetchall()
                self.violation(f"{writer}: tenant {tid} decrypted a token of {foreign[1]['tenant']}")
            except psycopg2.Error as e:
                if not (e.pgcode or "").startswith("22"):
                    raise
                self.count(attacks_refused=1)

    def op_attack(self, conn, admin, rng, writer, mine, tid, key):
        foreign = self.foreign_row(rng, tid)
        if not foreign:
            return
        m, r = foreign
        with conn, conn.cursor() as cur:
            self.begin(cur, key, tid, writer + " attack")
            for sql in ("SELECT tenant_id FROM items WHERE marker = %s",
                        "UPDATE items SET payload = 'pwned' WHERE marker = %s RETURNING tenant_id",
                        "DELETE FROM items WHERE marker = %s RETURNING tenant_id"):
                cur.execute(sql, (m,))
                if cur.fetchall():
                    self.violation(f"{writer} as {tid} reached row {m} of {r['tenant']}: {sql}")
                self.count(attacks_refused=1)
        try:
            with conn, conn.cursor() as cur:
                self.begin(cur, key, tid, writer + " attack insert")
                cur.execute("INSERT INTO items (marker, writer, payload, tenant_id) "
                            "VALUES (%s, %s, 'forged', %s)", (uuid.uuid4(), writer, r["tenant"]))
            self.violation(f"{writer} as {tid} inserted a row for tenant {r['tenant']}")
        except psycopg2.errors.InsufficientPrivilege:
            self.count(attacks_refused=1)

    def op_revoke(self, conn, admin, rng, writer, mine, tid, key):
        with self.lock:                 # claim the key: no one else revokes it
            if key not in self.active[tid]:
                return
            self.active[tid].remove(key)
            self.revoking.add(key)
        with admin.cursor() as cur:                 # autocommit: commits here
            cur.execute("SELECT payymo.issue_api_key(%s, 'soak replacement')", (tid,))
            fresh = cur.fetchone()[0]
            with self.lock:
                self.active[tid].append(fresh)
            cur.execute("SELECT payymo.revoke_api_key(%s)", (key.split("_")[1],))
            if cur.fetchone()[0] is not True:
                self.violation(f"{writer}: revoke_api_key of an active key returned false")
        with self.lock:
            self.revoking.discard(key)
            self.revoked[key] = tid
        self.count(revocations=1)
        self.expect_revoked(conn, writer, key, "right after revoke")

    def op_replay(self, conn, admin, rng, writer, mine, tid, key):
        with self.lock:
            old = rng.choice(list(self.revoked)) if self.revoked else None
        if old:
            self.count(replays=1)
            self.expect_revoked(conn, writer, old, "replayed")

    def expect_revoked(self, conn, writer, key, what):
        try:
            with conn, conn.cursor() as cur:
                cur.execute("SELECT payymo.set_tenant(%s)", (key,))
            self.violation(f"{writer}: revoked key accepted ({what})")
        except psycopg2.errors.InvalidAuthorizationSpecification:
            self.count(revoked_refused=1)

    # --- afterwards
    def verify(self):
        admin = psycopg2.connect(**self.dsn, user="postgres")
        with admin, admin.cursor() as cur:
            cur.execute("SELECT marker, tenant_id, version FROM items WHERE writer LIKE 'soak-%'")
            db = {m: (t, v) for m, t, v in cur.fetchall()}
        admin.close()
        checked = 0
        for m, r in self.rows.items():
            got = db.pop(m, None)
            if r["state"] == "committed":
                checked += 1
                if got != (r["tenant"], r["version"]):
                    self.violation(f"final: row {m} is {got}, wanted ({r['tenant']}, {r['version']})")
            elif got is not None:
                self.violation(f"final: {r['state']} row {m} is there")
        for m, got in db.items():
            self.violation(f"final: row {m} {got} was never logged as committed")
        # Every tenant decrypts all its tokens, through the client role.
        conn = psycopg2.connect(**self.dsn, user="payymo_client")
        tokens = 0
        for tid, keys in self.active.items():
            with conn, conn.cursor() as cur:
                self.begin(cur, keys[0], tid, "final decrypt")
                # A foreign row (a violation, reported below) is not decrypted.
                cur.execute("SELECT marker, tenant_id, CASE WHEN tenant_id = %s "
                            "THEN payymo.decrypt_token(token, %s) END "
                            "FROM items WHERE writer LIKE 'soak-%%'", (tid, CTX))
                for m, t, text in cur.fetchall():
                    tokens += 1
                    r = self.rows.get(m)
                    if t != tid or r is None or r["tenant"] != tid or r["secret"] != text:
                        self.violation(f"final decrypt as {tid}: row {m} wrong")
        conn.close()
        return checked, tokens


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--dbname", default="payymo_ext")
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--tenants", type=int, default=4)
    ap.add_argument("--keys", type=int, default=3)
    args = ap.parse_args()

    soak = Soak(args)
    soak.setup()
    deadline = time.monotonic() + args.seconds
    threads = [threading.Thread(target=soak.client, args=(c, deadline), daemon=True)
               for c in range(args.clients)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(args.seconds + 120)
        if t.is_alive():
            soak.violation("a client did not finish in time")
    elapsed = time.monotonic() - started
    final_rows, final_tokens = soak.verify()
    c = soak.counts
    print("# ops: " + " ".join(f"{k}={v}" for k, v in soak.ops.items()), flush=True)
    print(f"clients={args.clients} seconds={elapsed:.0f} tenants={args.tenants} "
          + " ".join(f"{k}={v}" for k, v in c.items() if k not in ("violations", "errors"))
          + f" final_rows_checked={final_rows} final_tokens_checked={final_tokens}"
          + f" errors={c['errors']} violations={c['violations']}", flush=True)
    sys.exit(1 if c["violations"] or c["errors"] else 0)


if __name__ == "__main__":
    main()
