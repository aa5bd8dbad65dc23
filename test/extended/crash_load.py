#!/usr/bin/python3
"""Write load and check for the crash-restart test (test/extended/crash.t).

  crash_load.py load   --host H --port P --log FILE [--writers 4] [--seconds 60]
      Writers (client role, tenants alpha and bravo alternating) insert rows
      with an encrypted token and update their earlier rows, until the server
      goes away (or --seconds pass).  Before each COMMIT a line "try ..." and
      after the COMMIT returned a line "ok ..." goes to FILE (flushed), so the
      file says what each client saw committed.  Exits 0 when the connections
      were lost, as expected when the server is killed.

  crash_load.py verify --host H --port P --log FILE
      After restart: every row a client saw committed is there, with its
      tenant and at least its acknowledged version; every row there was
      attempted by a client for that tenant (in-doubt commits may go either
      way); each tenant sees only its own rows and decrypts every token.
      Prints one line of counts; exits 1 on any violation.
"""
import argparse
import os
import random
import sys
import threading
import time
import uuid

import psycopg2
import psycopg2.extras

psycopg2.extras.register_uuid()
CTX = "items.token"


def tenants():
    return {int(os.environ["ALPHA_ID"]): os.environ["ALPHA_KEY"],
            int(os.environ["BRAVO_ID"]): os.environ["BRAVO_KEY"]}


def load(args):
    ten = tenants()
    ids = sorted(ten)
    log = open(args.log, "a", buffering=1)
    lock = threading.Lock()
    lost = []

    def write(line):
        with lock:
            log.write(line + "\n")
            log.flush()

    def writer(w):
        rng = random.Random(w)
        conn = psycopg2.connect(host=args.host, port=args.port, dbname=args.dbname,
                                user="payymo_client", connect_timeout=10)
        acked = []                               # (marker, tenant, version)
        deadline = time.monotonic() + args.seconds
        i = 0
        try:
            while time.monotonic() < deadline:
                tid = ids[(w + i) % 2]
                i += 1
                with conn.cursor() as cur:
                    if acked and rng.random() < 0.4:
                        idx = rng.randrange(len(acked))
                        m, t, v = acked[idx]
                        cur.execute("SELECT payymo.set_tenant(%s)", (ten[t],))
                        cur.execute("UPDATE items SET version = %s WHERE marker = %s",
                                    (v + 1, m))
                        write(f"try update {m} {t} {v + 1}")
                        conn.commit()
                        write(f"ok update {m} {t} {v + 1}")
                        acked[idx] = (m, t, v + 1)
                    else:
                        m, secret = uuid.uuid4(), f"crash-{uuid.uuid4().hex}"
                        cur.execute("SELECT payymo.set_tenant(%s)", (ten[tid],))
                        write(f"try insert {m} {tid} 0 {secret}")
                        cur.execute("INSERT INTO items (marker, writer, payload, token) "
                                    "VALUES (%s, %s, 'crash', payymo.encrypt_token(%s, %s))",
                                    (m, f"crash-{w}", secret, CTX))
                        conn.commit()
                        write(f"ok insert {m} {tid} 0 {secret}")
                        acked.append((m, tid, 0))
        except (psycopg2.OperationalError, psycopg2.InterfaceError) as e:
            with lock:
                lost.append(w)
            print(f"# writer {w}: connection lost ({str(e).strip().splitlines()[0]})", flush=True)
        except psycopg2.Error as e:
            print(f"# writer {w}: unexpected {e.pgcode}: {str(e).strip()}", flush=True)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(args.writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(f"writers={args.writers} lost_connections={len(lost)}", flush=True)
    sys.exit(0 if len(lost) == args.writers else 1)


def verify(args):
    violations = []

    def violation(msg):
        violations.append(msg)
        if len(violations) <= 30:
            print(f"# VIOLATION: {msg}", flush=True)

    tried, acked = {}, {}              # marker -> [tenant, version, secret]
    for line in open(args.log):
        state, kind, m, t, v, *rest = line.split()
        m, t, v = uuid.UUID(m), int(t), int(v)
        target = tried if state == "try" else acked
        if kind == "insert":
            target[m] = [t, v, rest[0]]
        elif m in target:
            target[m][1] = v
        else:
            violation(f"log: update of {m} before its insert")
    dsn = dict(host=args.host, port=args.port, dbname=args.dbname, connect_timeout=10)
    admin = psycopg2.connect(**dsn, user="postgres")
    with admin, admin.cursor() as cur:
        cur.execute("SELECT marker, tenant_id, version FROM items WHERE writer LIKE 'crash-%'")
        db = {m: (t, v) for m, t, v in cur.fetchall()}
    admin.close()

    for m, (t, v, _) in acked.items():
        got = db.get(m)
        if got is None:
            violation(f"acknowledged row {m} of tenant {t} is lost")
        elif got[0] != t or got[1] < v:
            violation(f"row {m}: {got}, acknowledged ({t}, version {v})")
    in_doubt = 0
    for m, (t, v) in db.items():
        want = tried.get(m)
        if want is None or want[0] != t:
            violation(f"row {m} ({t}) was never attempted for that tenant")
        elif v > want[1]:
            violation(f"row {m}: version {v} beyond any attempt ({want[1]})")
        if m not in acked or acked[m][1] != v:
            in_doubt += 1

    conn = psycopg2.connect(**dsn, user="payymo_client")
    tokens = 0
    for tid, key in tenants().items():
        with conn, conn.cursor() as cur:
            cur.execute("SELECT payymo.set_tenant(%s)", (key,))
            # A foreign row (a violation, reported below) is not decrypted.
            cur.execute("SELECT marker, tenant_id, CASE WHEN tenant_id = %s "
                        "THEN payymo.decrypt_token(token, %s) END "
                        "FROM items WHERE writer LIKE 'crash-%%'", (tid, CTX))
            for m, t, text in cur.fetchall():
                tokens += 1
                if t != tid or tried.get(m, [None, 0, None])[2] != text:
                    violation(f"tenant {tid}: row {m} of {t}, or its token, is wrong")
    conn.close()
    print(f"acknowledged_rows={len(acked)} rows_after_restart={len(db)} "
          f"in_doubt={in_doubt} tokens_decrypted={tokens} violations={len(violations)}",
          flush=True)
    sys.exit(1 if violations else 0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["load", "verify"])
    ap.add_argument("--host", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--dbname", default="payymo_ext")
    ap.add_argument("--log", required=True)
    ap.add_argument("--writers", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=60)
    args = ap.parse_args()
    (load if args.mode == "load" else verify)(args)


if __name__ == "__main__":
    main()
