#!/usr/bin/env bash
# `make bench-keyprobe`: does set_tenant's time tell an attacker whether a
# key id exists?  Measures, inside one backend, the latency of set_tenant
# for well-formed keys (valid checksum) whose key id is unknown, and for
# keys with a real key id and a wrong secret -- interleaved in random order,
# timed in batches of 20 calls of one kind -- and prints the
# percentiles of both distributions, the ratio of their medians and how much
# they overlap: the share of wrong-secret samples faster than the median of
# the unknown-key-id samples, which is about 0.5 when the two cannot be told
# apart.  A third row, valid keys, is for reference.
#
#   bench/keyprobe.sh            PROBE_KEYS (200) keys of each kind,
#                                PROBE_ROUNDS (100) rounds: 20,000 calls of
#                                each kind, 1,000 samples
#   PROBE_CHECK=1 bench/keyprobe.sh
#                                also exit non-zero unless the medians are
#                                within PROBE_MAX_RATIO (1.05) of each other
#                                and the share is between 0.3 and 0.7 (the
#                                extended suite runs it this way)
set -euo pipefail
cd "$(dirname "$0")/.."
. test/lib.sh

KEYS=${PROBE_KEYS:-200}
ROUNDS=${PROBE_ROUNDS:-100}
BATCH=20

keydir=$(mktemp -d /tmp/payymo-probe-keys.XXXXXX)
trap 'cluster_stop; rm -rf "$keydir"' EXIT
if [ "${BENCH_BUILD:-1}" = 1 ]; then
    build_and_install "$keydir/build.log" || { cat "$keydir/build.log"; exit 1; }
fi
cluster_start "shared_preload_libraries = 'payymo'" \
    "payymo.key_file = '$(make_key_file "$keydir")'" >/dev/null
q -c "CREATE EXTENSION payymo" -c "CREATE TABLE probes (kind text, key text)"

q -c "INSERT INTO probes SELECT 'valid', t.api_key
        FROM generate_series(1, $KEYS) g, LATERAL payymo.create_tenant('probe-' || g, 'Probe ' || g) t"
q -c "SELECT split_part(key, '_', 2) FROM probes" | test/forge_key.py \
    | sed "s/.*/INSERT INTO probes VALUES ('wrong secret', '&');/" | q
head -c $((KEYS * 10)) /dev/urandom | base32 | tr 'A-Z' 'a-z' | tr -d '=\n' | fold -w 16 | head -n "$KEYS" \
    | test/forge_key.py | sed "s/.*/INSERT INTO probes VALUES ('unknown key id', '&');/" | q

# One sample: BATCH calls with keys of one kind, timed together (the clock
# ticks in microseconds); the kinds take turns in a random order.
q >/dev/null <<SQL
CREATE TABLE samples (kind text, us double precision);
SET client_min_messages = error;
SET log_min_messages = fatal;          -- keep the security events out of the way
DO \$\$
DECLARE
    b record;
    k text;
    t0 timestamptz;
BEGIN
    FOR r IN 1..$ROUNDS LOOP
        FOR b IN SELECT kind, array_agg(key ORDER BY random()) AS keys
                   FROM (SELECT kind, key, (row_number() OVER (PARTITION BY kind ORDER BY random()) - 1) / $BATCH AS n
                           FROM probes) x
                  GROUP BY kind, n ORDER BY random() LOOP
            t0 := clock_timestamp();
            FOREACH k IN ARRAY b.keys LOOP
                BEGIN
                    PERFORM payymo.set_tenant(k);
                EXCEPTION WHEN invalid_authorization_specification THEN NULL;
                END;
            END LOOP;
            INSERT INTO samples
            VALUES (b.kind, extract(epoch FROM clock_timestamp() - t0) * 1e6 / cardinality(b.keys));
        END LOOP;
    END LOOP;
END
\$\$;
SQL

echo "set_tenant latency per call (µs, inside one backend, each call in its own subtransaction)"
psql -X -q -P footer=off -c "
SELECT kind, count(*) AS calls,
       round(percentile_cont(0.10) WITHIN GROUP (ORDER BY us)::numeric, 1) AS p10,
       round(percentile_cont(0.50) WITHIN GROUP (ORDER BY us)::numeric, 1) AS p50,
       round(percentile_cont(0.90) WITHIN GROUP (ORDER BY us)::numeric, 1) AS p90
  FROM samples GROUP BY kind ORDER BY kind"
read -r ratio overlap < <(q -F ' ' -c "
WITH p AS (
    SELECT kind, percentile_cont(0.5) WITHIN GROUP (ORDER BY us) AS p50,
           percentile_cont(0.1) WITHIN GROUP (ORDER BY us) AS p10,
           percentile_cont(0.9) WITHIN GROUP (ORDER BY us) AS p90
      FROM samples GROUP BY kind)
SELECT round((w.p50 / u.p50)::numeric, 3),
       round((SELECT count(*) FILTER (WHERE s.us < u.p50)::numeric / count(*)
                FROM samples s WHERE s.kind = 'wrong secret'), 3)
  FROM p w, p u WHERE w.kind = 'wrong secret' AND u.kind = 'unknown key id'")
echo
echo "median(wrong secret) / median(unknown key id) = $ratio"
echo "share of wrong-secret calls faster than the unknown-key-id median (0.5: indistinguishable) = $overlap"

if [ "${PROBE_CHECK:-0}" = 1 ]; then
    awk -v r="$ratio" -v o="$overlap" -v max="${PROBE_MAX_RATIO:-1.05}" \
        'BEGIN { exit !(r <= max && r >= 1 / max && o >= 0.3 && o <= 0.7) }'
fi
