#!/usr/bin/env node
// Tenant isolation as a Node.js application sees it (node-postgres, bind
// parameters).  The scenario of test/drivers/python/isolation.py, which
// describes it; test/extended/drivers.t runs both, directly and through
// PgBouncer.  Usage:
//   node isolation.js --host DIR --port N [--dbname D] [--clients N] [--txns N]
// Keys and tenant ids come from ALPHA_KEY, ALPHA_ID, BRAVO_KEY, BRAVO_ID.
// Prints one line of counts; exits 1 on any violation or unexpected error.
'use strict';

const crypto = require('crypto');
const { Client } = require('pg');

const CTX = 'items.token';

function parseArgs(argv) {
  const a = { dbname: 'payymo_ext', clients: 4, txns: 60 };
  for (let i = 2; i < argv.length; i += 2) a[argv[i].replace(/^--/, '')] = argv[i + 1];
  if (!a.host || !a.port) throw new Error('--host and --port are required');
  return { ...a, port: +a.port, clients: +a.clients, txns: +a.txns };
}

async function main() {
  const args = parseArgs(process.argv);
  const tenants = [
    [process.env.ALPHA_KEY, String(process.env.ALPHA_ID)],
    [process.env.BRAVO_KEY, String(process.env.BRAVO_ID)],
  ];
  const run = crypto.randomBytes(4).toString('hex');
  const totals = { transactions: 0, committed: 0, rows_checked: 0, tokens_checked: 0,
                   refused: 0, violations: 0, errors: 0 };
  const ciphertexts = { [tenants[0][1]]: [], [tenants[1][1]]: [] };

  const violation = (msg) => { totals.violations++; console.log(`# VIOLATION: ${msg}`); };

  // Runs sql in its own transaction (after set_tenant(key) if given); it
  // must fail with a SQLSTATE starting with prefix.
  async function expectError(db, prefix, what, sql, params, key) {
    try {
      await db.query('BEGIN');
      if (key) await db.query('SELECT payymo.set_tenant($1)', [key]);
      await db.query(sql, params);
      violation(`${what}: succeeded`);
    } catch (e) {
      if (!String(e.code || '').startsWith(prefix)) {
        violation(`${what}: SQLSTATE ${e.code}, wanted ${prefix}*`);
      }
    } finally {
      await db.query('ROLLBACK');
    }
    totals.refused++;
  }

  async function client(c) {
    const writer = `${run}-node-${c}`;
    const plain = new Map();            // marker -> [tenant id, plaintext]
    const db = new Client({ host: args.host, port: args.port, database: args.dbname,
                            user: 'payymo_client', connectionTimeoutMillis: 10000 });
    await db.connect();
    for (let i = 0; i < args.txns; i++) {
      const [key, tid] = tenants[(c + i) % 2];
      const otherTid = tenants[(c + i + 1) % 2][1];
      try {
        await db.query('BEGIN');
        let r = await db.query('SELECT payymo.set_tenant($1) AS t', [key]);
        if (r.rows[0].t !== tid) violation(`${writer} txn ${i}: set_tenant returned ${r.rows[0].t}`);
        r = await db.query('SELECT payymo.current_tenant() AS t');
        if (r.rows[0].t !== tid) violation(`${writer} txn ${i}: current_tenant is ${r.rows[0].t}`);
        const marker = crypto.randomUUID();
        const secret = `tok-${crypto.randomUUID()}`;
        r = await db.query(
          'INSERT INTO items (marker, writer, payload, token) ' +
          'VALUES ($1, $2, $3, payymo.encrypt_token($4, $5)) RETURNING tenant_id, token',
          [marker, writer, tid, secret, CTX]);
        if (r.rows[0].tenant_id !== tid) violation(`${writer} txn ${i}: insert stamped with ${r.rows[0].tenant_id}`);
        plain.set(marker, [tid, secret]);
        ciphertexts[tid].push(r.rows[0].token);
        r = await db.query('SELECT tenant_id, marker FROM items');
        totals.rows_checked += r.rows.length;
        const seen = new Set();
        for (const row of r.rows) {
          seen.add(row.marker);
          if (row.tenant_id !== tid) violation(`${writer} txn ${i}: tenant ${tid} saw a row of ${row.tenant_id}`);
        }
        for (const [m, [t]] of plain) {
          if (t === tid && !seen.has(m)) violation(`${writer} txn ${i}: own row ${m} not visible`);
        }
        r = await db.query('SELECT marker, payymo.decrypt_token(token, $1) AS text ' +
                           'FROM items WHERE writer = $2', [CTX, writer]);
        for (const row of r.rows) {
          totals.tokens_checked++;
          const want = plain.get(row.marker);
          if (!want || want[0] !== tid || want[1] !== row.text) {
            violation(`${writer} txn ${i}: token of ${row.marker} decrypted wrong`);
          }
        }
        await db.query('COMMIT');
        totals.transactions++;
        totals.committed++;
        if (i % 5 === 0) {
          await expectError(db, '42501', `${writer} txn ${i}: read without set_tenant`,
                            'SELECT count(*) FROM items', []);
          const foreign = ciphertexts[otherTid][ciphertexts[otherTid].length - 1];
          if (foreign) {
            await expectError(db, '22', `${writer} txn ${i}: decrypt of a foreign token`,
                              'SELECT payymo.decrypt_token($1, $2)', [foreign, CTX], key);
          }
          const bad = key.slice(0, -1) + (key.endsWith('a') ? 'b' : 'a');
          await expectError(db, '28000', `${writer} txn ${i}: mistyped key`,
                            'SELECT payymo.set_tenant($1)', [bad]);
          totals.transactions += foreign ? 3 : 2;
        }
      } catch (e) {
        totals.errors++;
        console.log(`# ${writer} txn ${i}: unexpected ${e.code}: ${e.message}`);
        await db.query('ROLLBACK').catch(() => {});
      }
    }
    await db.end();
  }

  const clients = [];
  for (let c = 0; c < args.clients; c++) clients.push(client(c));
  const results = await Promise.allSettled(clients);
  for (const r of results) {
    if (r.status === 'rejected') { totals.errors++; console.log(`# client failed: ${r.reason}`); }
  }
  const version = require('pg/package.json').version;
  console.log(`driver=node-pg-${version} clients=${args.clients} ` +
              Object.entries(totals).map(([k, v]) => `${k}=${v}`).join(' '));
  process.exitCode = totals.violations || totals.errors ? 1 : 0;
}

main().catch((e) => { console.log(`# ${e.stack}`); process.exitCode = 1; });
