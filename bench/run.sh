#!/usr/bin/env bash
# `make bench`: compare payymo with no isolation and with the hand-written
# equivalent (RLS on a custom setting, PL/pgSQL trigger, pgcrypto).
#
# Builds and installs payymo, starts a throwaway cluster (payymo preloaded, a
# token key file), loads bench/load.sql into database "bench" -- the same rows
# in schemas v_none, v_hand, v_payymo -- and runs each workload's pgbench
# scripts (bench/<variant>/<workload>.sql) in short interleaved rounds: every
# round runs all three variants, in an order rotated from round to round, so
# that drift (other processes, caches, table growth) hits all of them alike.
# The table reports the median TPS of the rounds, and as ratios the median of
# each round's ratio (the variants of a round run back to back).  Then
# set_tenant against set_config per call inside one backend, the statistics
# on and off, and the scaling run: 10, 1,000, 10,000 and 100,000 tenants with
# the same rows per tenant, the read workloads for none and payymo.  Every
# row is printed with its target and verdict.
#
#   bench/run.sh [workload...]     default: all of them
#
# Environment:
#   BENCH_FULL=1        longer rounds (5 x 20 s) and 500 transactions per
#                       tenant in the scaling run; the default is a quick run
#                       (3 x 3 s, about 25 minutes, most of it loading the
#                       100,000-tenant database)
#   BENCH_SCALE_POINTS  the scaling run's tenant counts (default "10 1000 10000 100000")
#   BENCH_SECONDS, BENCH_ROUNDS   override the round length and count
#   BENCH_CLIENTS (4), BENCH_THREADS (2)   pgbench -c and -j; 4 clients keep
#                       both cores busy, so TPS reflects CPU cost per transaction
#   BENCH_SCALING=0     skip the scaling run; BENCH_SCALING=only runs nothing else
#   BENCH_BUILD=0       use the payymo already installed instead of building
#   BENCH_SETTINGS      more postgresql.conf lines, separated by ";" (for
#                       example "payymo.key_use_interval = 0")
# The tables are also written to bench/results/latest.md at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
. test/lib.sh

PGBENCH="$PG_BINDIR/pgbench"
FULL=${BENCH_FULL:-0}
if [ "$FULL" = 1 ]; then
    SECS=${BENCH_SECONDS:-20} ROUNDS=${BENCH_ROUNDS:-5} SCALE_TX=500
else
    SECS=${BENCH_SECONDS:-3} ROUNDS=${BENCH_ROUNDS:-3} SCALE_TX=50
fi
read -r -a SCALE_POINTS <<<"${BENCH_SCALE_POINTS:-10 1000 10000 100000}"
CLIENTS=${BENCH_CLIENTS:-4}
THREADS=${BENCH_THREADS:-2}
SCALING=${BENCH_SCALING:-1}
case $SCALING in 0|1|only) ;; *) echo "BENCH_SCALING is 0, 1 or only" >&2; exit 2 ;; esac
TENANTS=1000 TX_PER_TENANT=500 CONN_PER_TENANT=100
SCALE_CONN=5
VARIANTS=(none hand payymo)
ALL_WORKLOADS=(context_bare context point latest20 report token1 token100 insert1 insert100)
if [ $# -gt 0 ]; then WORKLOADS=("$@"); else WORKLOADS=("${ALL_WORKLOADS[@]}"); fi
for w in "${WORKLOADS[@]}"; do
    [ -f "bench/none/$w.sql" ] || { echo "unknown workload: $w" >&2; exit 2; }
done

work=$(mktemp -d /tmp/payymo-bench.XXXXXX)
keydir=$(mktemp -d /tmp/payymo-bench-keys.XXXXXX)
trap 'cluster_stop; rm -rf "$work" "$keydir"' EXIT
chmod 755 "$work"

results=$work/latest.md

echo "== build"
if [ "${BENCH_BUILD:-1}" = 1 ] && ! build_and_install "$work/build.log"; then
    cat "$work/build.log"; exit 1
fi

echo "== cluster"
cluster_start "shared_preload_libraries = 'payymo'" \
    "payymo.key_file = '$(make_key_file "$keydir")'" \
    "shared_buffers = '1GB'" "autovacuum = off" "jit = off" \
    "max_wal_size = '8GB'" "checkpoint_timeout = '1h'" \
    "payymo.stats_max_tenants = 200000" "payymo.key_cache_size = 200000" \
    ${BENCH_SETTINGS:+"${BENCH_SETTINGS//;/$'\n'}"}

# load DB TENANTS TX_PER_TENANT CONN_PER_TENANT WITH_HAND
load() {
    local t0=$SECONDS
    q -c "CREATE DATABASE $1"
    q -d "$1" -v tenants="$2" -v tx_per_tenant="$3" -v conn_per_tenant="$4" \
      -v with_hand="$5" -v token_key="$(random_key_hex)" -f bench/load.sql >"$work/load-$1.log" 2>&1 \
        || { cat "$work/load-$1.log"; exit 1; }
    echo "   $1: $2 tenants, $(q -d "$1" -c 'SELECT count(*) FROM v_none.transactions') transactions," \
         "$(q -d "$1" -c 'SELECT count(*) FROM v_none.bank_connections') bank connections, $((SECONDS - t0)) s"
}

# pgbench_tps DB VARIANT WORKLOAD TENANTS TX CONN: one round; prints the TPS.
# Variant "nostats" is payymo's scripts and schema with payymo.track_stats off.
pgbench_tps() {
    local db=$1 v=$2 w=$3 log="$work/pgbench.log" key s=${2/nostats/payymo}
    key=$(q -d "$db" -c "SELECT api_key FROM bench.client_keys WHERE tenant_id = 1")
    if ! "$PGBENCH" -n -M prepared \
            -c "$CLIENTS" -j "$THREADS" -T "$SECS" -U "bench_$v" \
            -D tenants="$4" -D tx_per_tenant="$5" -D conn_per_tenant="$6" \
            -D t=1 -D key="$key" -f "bench/$s/$w.sql" "$db" >"$log" 2>&1 \
       || grep -q 'aborted' "$log"; then
        echo "pgbench failed: $v/$w" >&2; cat "$log" >&2; exit 1
    fi
    sed -n 's/^tps = \([0-9.]*\) .*/\1/p' "$log"
    # Inserts: put the table back as it was, so every round starts alike.
    case $w in insert*)
        q -d "$db" -c "DELETE FROM v_$s.transactions WHERE id > $(($4 * $5))" \
                   -c "VACUUM v_$s.transactions" ;;
    esac
}

# paired A B: each round's TPS in file A over the same round's in file B.
paired() {
    [ "$(wc -l <"$1")" = "$(wc -l <"$2")" ] || { echo "rounds missing: $1 $2" >&2; exit 1; }
    paste "$1" "$2" | awk '$1 <= 0 || $2 <= 0 { exit 1 } { print $1 / $2 }' \
        || { echo "a round without TPS: $1 $2" >&2; exit 1; }
}

median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

# run_rounds DB TENANTS TX CONN OUTFILE WORKLOAD VARIANT...: interleaved
# rounds; appends "workload variant median" lines to OUTFILE.
run_rounds() {
    local db=$1 n=$2 tx=$3 conn=$4 out=$5 w=$6 r i v
    shift 6
    local vs=("$@") k=$#
    for v in "${vs[@]}"; do : >"$work/tps-$w-$v"; done
    # A short warm-up round, not counted: plans cached, pages touched.
    for v in "${vs[@]}"; do
        SECS=1 pgbench_tps "$db" "$v" "$w" "$n" "$tx" "$conn" >/dev/null
    done
    for ((r = 0; r < ROUNDS; r++)); do
        for ((i = 0; i < k; i++)); do
            v=${vs[$(((i + r) % k))]}
            pgbench_tps "$db" "$v" "$w" "$n" "$tx" "$conn" >>"$work/tps-$w-$v"
        done
    done
    for v in "${vs[@]}"; do
        echo "$w $v $(median <"$work/tps-$w-$v")" >>"$out"
        printf '   %-13s %-7s %s\n' "$w" "$v" "$(tr '\n' ' ' <"$work/tps-$w-$v")"
    done
    # The ratios: payymo over each other variant in every round (they ran
    # back to back), then the median -- steadier than a ratio of medians
    # when the machine's speed drifts from round to round.
    for v in "${vs[@]}"; do
        [ "$v" != payymo ] || continue
        paired "$work/tps-$w-payymo" "$work/tps-$w-$v" >"$work/ratios"
        echo "$w payymo/$v $(median <"$work/ratios")" >>"$out"
    done
}

# Each workload's targets: payymo/none and payymo/hand-written.
target_none() {
    case $1 in
        point|latest20|report|insert1) echo 0.97 ;;
        insert100) echo 0.95 ;;
        *) echo - ;;
    esac
}
target_hand() {
    case $1 in
        insert100) echo 1.10 ;;
        token100) echo 20 ;;
        context_bare) echo 0.90 ;;
        *) echo 1.00 ;;
    esac
}

machine() {
    echo "Machine: $(nproc) CPUs, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)," \
         "$(q -c 'SELECT version()' | sed 's/ on .*//'), load average $(cut -d' ' -f1-3 /proc/loadavg)"
}

if [ "$SCALING" != only ]; then
echo "== load"
load bench "$TENANTS" "$TX_PER_TENANT" "$CONN_PER_TENANT" 1

echo "== rounds: ${ROUNDS} x ${SECS} s per variant, $CLIENTS clients, $THREADS thread(s)"
raw="$work/main.txt"
: >"$raw"
for w in "${WORKLOADS[@]}"; do
    run_rounds bench "$TENANTS" "$TX_PER_TENANT" "$CONN_PER_TENANT" "$raw" "$w" "${VARIANTS[@]}"
done

{
    echo "$(machine)"
    echo
    echo "$TENANTS tenants, $((TENANTS * TX_PER_TENANT)) transactions, $((TENANTS * CONN_PER_TENANT))" \
         "bank connections; pgbench -M prepared -c $CLIENTS -j $THREADS, $ROUNDS interleaved" \
         "rounds of $SECS s: median TPS, and the median of the rounds' ratios"
    echo
    echo "| workload | none | hand-written | payymo | payymo/none | target | payymo/hand | target |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|"
    for w in "${WORKLOADS[@]}"; do
        awk -v w="$w" -v tn="$(target_none "$w")" -v th="$(target_hand "$w")" '
            $1 == w { tps[$2] = $3 }
            function mark(x, t) { return (t == "-") ? "" : (x >= t ? " ok" : " **missed**") }
            END {
                rn = tps["payymo/none"]; rh = tps["payymo/hand"]
                printf "| %s | %.0f | %.0f | %.0f | %.3f | %s%s | %.3f | %s%s |\n",
                    w, tps["none"], tps["hand"], tps["payymo"], rn, (tn == "-" ? "-" : "≥ " tn), mark(rn, tn),
                    rh, (th == "-" ? "" : "≥ " th), mark(rh, th)
            }' "$raw"
    done
} >"$results"

# set_tenant per call against set_config, inside one backend: plpgsql loops
# in a transaction block, interleaved rounds, medians.  One tenant's key, so
# the backend's key cache serves every call after the first, as it does for
# a pooled connection serving the same tenants.
echo "== per call: set_tenant and set_config"
key1=$(q -d bench -c "SELECT api_key FROM bench.client_keys WHERE tenant_id = 1")
q -d bench >/dev/null <<'SQL'
CREATE TABLE bench.call_us (kind text, us double precision);
CREATE FUNCTION bench.loop_us(kind text, key text, n int) RETURNS double precision
LANGUAGE plpgsql AS $$
DECLARE t0 timestamptz := clock_timestamp();
BEGIN
    FOR i IN 1..n LOOP
        IF kind = 'set_config' THEN PERFORM set_config('app.tenant_id', '1', true);
        ELSE PERFORM payymo.set_tenant(key);
        END IF;
    END LOOP;
    RETURN extract(epoch FROM clock_timestamp() - t0) * 1e6 / n;
END $$;
SQL
for ((r = 0; r < 5; r++)); do
    q -d bench -v key="$key1" >/dev/null <<'SQL'
BEGIN;
INSERT INTO bench.call_us
SELECT kind, bench.loop_us(kind, :'key', 50000)
  FROM unnest(ARRAY['set_config', 'set_tenant']) kind ORDER BY random();
COMMIT;
SQL
done
{
    echo
    echo "Per call inside one backend (µs, median of 5 interleaved rounds of 50,000 calls)"
    echo
    echo "| call | µs | ratio | target |"
    echo "|---|---:|---:|---:|"
    q -d bench -F ' ' -c "SELECT kind, percentile_cont(0.5) WITHIN GROUP (ORDER BY us)
                            FROM bench.call_us GROUP BY kind ORDER BY kind" |
    awk '{ us[$1] = $2 }
         END { r = us["set_tenant"] / us["set_config"]
               printf "| set_config(...) | %.2f | | |\n", us["set_config"]
               printf "| set_tenant(key), cached | %.2f | %.2f× set_config | ≤ 1.5%s |\n",
                      us["set_tenant"], r, (r <= 1.5 ? " ok" : " **missed**") }'
} >>"$results"

# What the per-tenant statistics cost.
echo "== statistics overhead: payymo with payymo.track_stats on and off"
sraw="$work/stats.txt"
: >"$sraw"
for w in point insert1; do
    run_rounds bench "$TENANTS" "$TX_PER_TENANT" "$CONN_PER_TENANT" "$sraw" "$w" payymo nostats
done
{
    echo
    echo "Per-tenant statistics: payymo TPS with payymo.track_stats on / off (target ≥ 0.98)"
    echo
    echo "| workload | on | off | on/off |"
    echo "|---|---:|---:|---:|"
    for w in point insert1; do
        awk -v w="$w" '$1 == w { tps[$2] = $3 }
            END { r = tps["payymo/nostats"]
                  printf "| %s | %.0f | %.0f | %.3f%s |\n", w, tps["payymo"], tps["nostats"], r,
                         (r >= 0.98 ? " ok" : " **missed**") }' "$sraw"
    done
} >>"$results"

fi # SCALING != only

# warm_up DB: every tenant once, through each variant's role: its rows read,
# and for payymo its key verified and a statement run in its context, which
# creates the tenant's statistics entry (the shared state; each connection's
# key cache starts empty all the same).  A site with 100,000 tenants in daily
# use has them all; a 3-second round meets most tenants for the first time,
# so without this the scaling run measures a cold start, not the steady state.
warm_up() {
    local v t0=$SECONDS
    for v in none payymo; do
        q -d "$1" -U "bench_$v" -v v="$v" -v tx="$SCALE_TX" >/dev/null <<'SQL'
SELECT CASE WHEN :'v' = 'payymo' THEN format('SELECT payymo.set_tenant(%L, false)', api_key)
       END,
       format('SELECT count(*) FROM transactions WHERE tenant_id = %s AND id = %s',
              tenant_id, (tenant_id - 1) * :tx + 1)
  FROM bench.client_keys ORDER BY tenant_id
\gexec
SQL
    done
    echo "   $1: warmed up every tenant, $((SECONDS - t0)) s"
}

if [ "$SCALING" != 0 ]; then
    echo "== scaling: $SCALE_TX transactions per tenant"
    sraw="$work/scaling.txt"
    for n in "${SCALE_POINTS[@]}"; do
        load "scale_$n" "$n" "$SCALE_TX" "$SCALE_CONN" 0
        warm_up "scale_$n"
        : >"$sraw.$n"
        for w in point latest20; do
            run_rounds "scale_$n" "$n" "$SCALE_TX" "$SCALE_CONN" "$sraw.$n" "$w" none payymo
        done
        q -c "DROP DATABASE scale_$n"
    done
    {
        [ "$SCALING" != only ] || machine
        echo
        echo "Scaling: $SCALE_TX transactions per tenant; payymo TPS (payymo/none); target: the"
        echo "ratios within 3 % of each other"
        echo
        printf '| workload |'
        for n in "${SCALE_POINTS[@]}"; do printf ' %s tenants |' "$n"; done
        printf ' spread | target |\n|---|'
        for n in "${SCALE_POINTS[@]}"; do printf -- '---:|'; done
        printf -- '---:|---:|\n'
        for w in point latest20; do
            printf '| %s |' "$w"
            for n in "${SCALE_POINTS[@]}"; do
                awk -v w="$w" '$1 == w { tps[$2] = $3 }
                    END { printf "%.0f %.4f\n", tps["payymo"], tps["payymo/none"] }' "$sraw.$n"
            done | awk '{ printf " %s (%.3f) |", $1, $2; r[NR] = $2 }
                        END { lo = hi = r[1]
                              for (i in r) { if (r[i] < lo) lo = r[i]; if (r[i] > hi) hi = r[i] }
                              s = hi / lo - 1
                              printf " %.1f %% | ≤ 3 %%%s |", 100 * s, (s <= 0.03 ? " ok" : " **missed**") }'
            echo
        done
    } >>"$results"
fi

mkdir -p bench/results
cp "$results" bench/results/latest.md
echo
cat "$results"
