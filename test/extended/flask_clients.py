#!/usr/bin/python3
"""Drives examples/flask/app.py with Flask's test client, from several
threads at once, for two tenants, through PgBouncer (transaction pooling):
each thread creates bank connections and transactions for its tenant and
lists them after every write, checking that it sees exactly its tenant's
rows.  Then the refusals: no key, a bad key, a forged tenant header, another
tenant's white-label domain, a reference to another tenant's row.  Prints
"name=value" lines for test/extended/flask.t.

    flask_clients.py DSN ALPHA_KEY BRAVO_KEY BRAVO_DOMAIN THREADS REQUESTS
"""
import sys
import threading
import uuid

sys.path.insert(0, "examples/flask")
from app import create_app  # noqa: E402

dsn, alpha_key, bravo_key, bravo_domain = sys.argv[1:5]
threads, requests_each = int(sys.argv[5]), int(sys.argv[6])
app = create_app(dsn, pool_size=4)
keys = {"alpha": alpha_key, "bravo": bravo_key}
violations = []
done = {"requests": 0}
lock = threading.Lock()


def auth(tenant, rid=None):
    headers = {"Authorization": "Bearer " + keys[tenant]}
    if rid:
        headers["X-Request-ID"] = rid
    return headers


def worker(tenant, n):
    client = app.test_client()
    mine = set()
    for i in range(requests_each):
        marker = f"{tenant}-{n}-{i}-{uuid.uuid4().hex[:8]}"
        r = client.post("/bank-connections", headers=auth(tenant),
                        json={"bank_id": marker, "account_id": "acc", "account_name": tenant,
                              "access_token": "token-" + marker})
        if r.status_code != 201:
            violations.append(f"{tenant}: create returned {r.status_code} {r.get_json()}")
            continue
        conn_id = r.get_json()["id"]
        mine.add(marker)
        r = client.post("/transactions", headers=auth(tenant),
                        json={"bank_connection_id": conn_id, "amount": "1.00", "description": marker})
        if r.status_code != 201:
            violations.append(f"{tenant}: transaction returned {r.status_code}")
        rows = client.get("/bank-connections", headers=auth(tenant)).get_json()
        names = {row["account_name"] for row in rows}
        if names - {tenant}:
            violations.append(f"{tenant} saw rows of {names - {tenant}}")
        seen = {row["bank_id"] for row in rows}
        if not mine <= seen:
            violations.append(f"{tenant} misses its own rows {mine - seen}")
        token = client.get(f"/bank-connections/{conn_id}/token", headers=auth(tenant)).get_json()
        if token != {"access_token": "token-" + marker}:
            violations.append(f"{tenant}: token {token}")
        with lock:
            done["requests"] += 4


pool = [threading.Thread(target=worker, args=(t, n)) for n in range(threads) for t in ("alpha", "bravo")]
for t in pool:
    t.start()
for t in pool:
    t.join()
print(f"requests={done['requests']}")
print(f"violations={len(violations)}")
for v in violations[:10]:
    print("# " + v)

client = app.test_client()
r = client.get("/bank-connections")
print(f"no_key={r.status_code} no_key_rows={0 if r.status_code != 200 else len(r.get_json())}")
r = client.get("/bank-connections", headers={"Authorization": "Bearer pyk_not_a_key"})
print(f"bad_key={r.status_code}")
r = client.get("/bank-connections", headers={**auth("alpha"), "X-Tenant-ID": "2", "X-Forwarded-Host": bravo_domain})
names = {row["account_name"] for row in r.get_json()}
print(f"forged_header={r.status_code} forged_header_names={','.join(sorted(names))}")
r = client.get("/bank-connections", headers={**auth("alpha"), "Host": bravo_domain})
print(f"other_domain={r.status_code}")
r = client.get("/bank-connections", headers={**auth("bravo"), "Host": bravo_domain})
print(f"own_domain={r.status_code} own_domain_rows={len(r.get_json())}")
bravo_conn = client.get("/bank-connections", headers=auth("bravo")).get_json()[0]["id"]
r = client.post("/transactions", headers=auth("alpha", "req-cross-7f3a"),
                json={"bank_connection_id": bravo_conn, "amount": "9.99", "description": "cross"})
print(f"cross_reference={r.status_code} cross_request_id={r.headers.get('X-Request-ID')}")

# Users: a login per tenant (the tenant from the Host's first label), the
# session token and a JWT as bearer credentials, logout.
import os  # noqa: E402

def bearer(credential):
    return {"Authorization": "Bearer " + credential}

r = client.post("/login", headers={"Host": "alpha.app.example"},
                json={"email": "ann@alpha.example", "password": "wrong password"})
print(f"login_wrong_password={r.status_code}")
r = client.post("/login", headers={"Host": "alpha.app.example"},
                json={"email": "ANN@alpha.example", "password": "ann's password"})
session = r.get_json().get("session", "")
print(f"login={r.status_code}")
me = client.get("/me", headers=bearer(session)).get_json()
print(f"session_me={me.get('email')}/{me.get('role')}/{me.get('tenant_id')}")
names = {row["account_name"] for row in client.get("/bank-connections", headers=bearer(session)).get_json()}
print(f"session_rows_of={','.join(sorted(names))}")
print(f"api_key_me={client.get('/me', headers=auth('alpha')).status_code}")
print(f"logout={client.post('/logout', headers=bearer(session)).status_code}")
print(f"after_logout={client.get('/me', headers=bearer(session)).status_code}")
jwt = os.environ["BRAVO_JWT"]
me = client.get("/me", headers=bearer(jwt)).get_json()
print(f"jwt_me={me.get('email')}/{me.get('role')}/{me.get('tenant_id')}")
names = {row["account_name"] for row in client.get("/bank-connections", headers=bearer(jwt)).get_json()}
print(f"jwt_rows_of={','.join(sorted(names))}")
print(f"bad_jwt={client.get('/me', headers=bearer(jwt[:-4] + 'AAAA')).status_code}")
