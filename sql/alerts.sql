-- =========================================================================
-- Alerts on abnormal tenants
-- =========================================================================
--
-- An administrator sets a threshold per metric (and, optionally, per
-- tenant); check_alerts() compares each tenant's change of that metric over
-- the rule's period with the threshold.  It runs in one background worker
-- (payymo.alerts_database, every payymo.alerts_interval seconds; src/alerts.c)
-- or from any scheduler, never in the tenants' backends.  A crossing adds a
-- row to payymo.alert_log, shown in payymo.alerts until acknowledged, logs
-- one WARNING line and sends NOTIFY payymo_alert with the alert's id.
--
-- Counters come from tenant_stats() as samples: a tenant's value is stored
-- only when it changed since its last sample, so idle tenants cost nothing
-- and the value at any time is the last sample before it.

-- The metrics a rule can name: the counters of tenant_stats(),
-- exec_time_share and storage_growth.
CREATE FUNCTION payymo._alert_metrics()
RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN ARRAY[
        'statements', 'rows', 'total_exec_time', 'shared_blks_hit',
        'shared_blks_read', 'shared_blks_dirtied', 'shared_blks_written',
        'temp_blks_read', 'temp_blks_written', 'wal_records', 'wal_bytes',
        'denied', 'rate_limited', 'exec_time_share', 'storage_growth'];

COMMENT ON FUNCTION payymo._alert_metrics() IS
'Internal: the metrics an alert rule can name';

CREATE TABLE payymo.alert_rules (
    metric text NOT NULL
        CONSTRAINT alert_rules_metric
        CHECK (metric OPERATOR(pg_catalog.=) ANY (payymo._alert_metrics())),
    tenant_id bigint,
    threshold double precision NOT NULL
        CONSTRAINT alert_rules_threshold
        CHECK (threshold OPERATOR(pg_catalog.>) 0
               AND threshold OPERATOR(pg_catalog.<) 'Infinity'
               AND (metric OPERATOR(pg_catalog.<>) 'exec_time_share'
                    OR threshold OPERATOR(pg_catalog.<) 1)),
    period interval NOT NULL
        CONSTRAINT alert_rules_period
        CHECK (period OPERATOR(pg_catalog.>=) '1 second'
               AND period OPERATOR(pg_catalog.<=) '31 days'),
    baseline_at timestamptz,
    sampled_at timestamptz,
    CONSTRAINT alert_rules_key UNIQUE NULLS NOT DISTINCT (metric, tenant_id)
);

COMMENT ON TABLE payymo.alert_rules IS
'Alert thresholds per metric, for every tenant (tenant_id NULL) or one tenant; set with set_alert()';

CREATE TABLE payymo.alert_samples (
    metric text NOT NULL,
    tenant_id bigint NOT NULL,
    sampled_at timestamptz NOT NULL,
    value double precision NOT NULL,
    PRIMARY KEY (metric, tenant_id, sampled_at)
);

COMMENT ON TABLE payymo.alert_samples IS
'Per-tenant values of the metrics that alert rules use, stored when they change; kept for the longest period';

CREATE TABLE payymo.alert_log (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id bigint NOT NULL,
    metric text NOT NULL,
    value double precision NOT NULL,
    threshold double precision NOT NULL,
    period interval NOT NULL,
    raised_at timestamptz NOT NULL,
    acknowledged_at timestamptz,
    acknowledged_by name
);

CREATE UNIQUE INDEX alert_log_open ON payymo.alert_log (tenant_id, metric)
    WHERE acknowledged_at IS NULL;

COMMENT ON TABLE payymo.alert_log IS
'Every alert raised by check_alerts(), acknowledged or not';

CREATE VIEW payymo.alerts AS
SELECT a.id, a.tenant_id, t.slug, a.metric, a.value, a.threshold, a.period, a.raised_at
  FROM payymo.alert_log a
  LEFT JOIN payymo.tenants t ON t.id OPERATOR(pg_catalog.=) a.tenant_id
 WHERE a.acknowledged_at IS NULL;

COMMENT ON VIEW payymo.alerts IS
'Alerts not acknowledged yet (acknowledge_alert())';

REVOKE ALL ON payymo.alert_rules, payymo.alert_samples, payymo.alert_log, payymo.alerts
    FROM PUBLIC;
GRANT SELECT ON payymo.alert_rules, payymo.alert_log, payymo.alerts
    TO payymo_admin, pg_monitor;
SELECT pg_catalog.pg_extension_config_dump('payymo.alert_rules', '');
SELECT pg_catalog.pg_extension_config_dump('payymo.alert_log', '');
SELECT pg_catalog.pg_extension_config_dump('payymo.alert_log_id_seq', '');

-- The sampled quantity behind a rule's metric.  No SET clause (it names
-- nothing to look up), so that the planner inlines it: check_alerts()
-- evaluates it for every tenant.
CREATE FUNCTION payymo._alert_source(metric text)
RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN CASE metric WHEN 'exec_time_share' THEN 'total_exec_time'
                   WHEN 'storage_growth' THEN 'storage_bytes'
                   ELSE metric END;

COMMENT ON FUNCTION payymo._alert_source(text) IS
'Internal: the sampled quantity behind an alert metric';

CREATE FUNCTION payymo.set_alert(metric text, threshold double precision,
                                 period interval DEFAULT '5 minutes',
                                 tenant_id bigint DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
BEGIN
    IF metric IS NULL OR threshold IS NULL OR period IS NULL THEN
        RAISE EXCEPTION 'metric, threshold and period must not be null'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF metric OPERATOR(pg_catalog.<>) ALL (payymo._alert_metrics()) THEN
        RAISE EXCEPTION 'unknown alert metric "%"', metric
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use a counter of payymo.tenant_stats (denied, rate_limited, statements, wal_bytes, ...), exec_time_share or storage_growth.';
    END IF;
    IF set_alert.tenant_id IS NOT NULL
       AND NOT EXISTS (SELECT FROM payymo.tenants t
                        WHERE t.id OPERATOR(pg_catalog.=) set_alert.tenant_id) THEN
        RAISE EXCEPTION 'tenant % does not exist', set_alert.tenant_id
            USING ERRCODE = 'no_data_found';
    END IF;
    INSERT INTO payymo.alert_rules AS r (metric, tenant_id, threshold, period)
    VALUES (set_alert.metric, set_alert.tenant_id, set_alert.threshold, set_alert.period)
    ON CONFLICT (metric, tenant_id) DO UPDATE
       SET threshold = excluded.threshold, period = excluded.period,
           -- a new period starts from a new baseline: the samples kept
           -- so far may not reach back to the start of a longer one
           baseline_at = CASE WHEN r.period OPERATOR(pg_catalog.=) excluded.period
                              THEN r.baseline_at END,
           sampled_at = CASE WHEN r.period OPERATOR(pg_catalog.=) excluded.period
                             THEN r.sampled_at END;
    IF pg_catalog.current_setting('payymo.alerts_database', true)
       IS DISTINCT FROM pg_catalog.current_database() THEN
        RAISE NOTICE 'no background worker evaluates alerts in database "%"',
                     pg_catalog.current_database()
            USING HINT = 'Set payymo.alerts_database to this database and restart, or call payymo.check_alerts() from a scheduler.';
    END IF;
END
$$;

COMMENT ON FUNCTION payymo.set_alert(text, double precision, interval, bigint) IS
'Sets the threshold of an alert metric over a period, for every tenant (tenant_id NULL) or one tenant, whose rule then replaces the general one';

CREATE FUNCTION payymo.drop_alert(metric text, tenant_id bigint DEFAULT NULL)
RETURNS boolean
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    DELETE FROM payymo.alert_rules r
     WHERE r.metric OPERATOR(pg_catalog.=) drop_alert.metric
       AND r.tenant_id IS NOT DISTINCT FROM drop_alert.tenant_id;
    RETURN FOUND;
END
$$;

COMMENT ON FUNCTION payymo.drop_alert(text, bigint) IS
'Removes an alert rule; true if there was one';

CREATE FUNCTION payymo.acknowledge_alert(alert_id bigint)
RETURNS boolean
LANGUAGE plpgsql VOLATILE STRICT PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    UPDATE payymo.alert_log a
       SET acknowledged_at = pg_catalog.now(), acknowledged_by = session_user
     WHERE a.id OPERATOR(pg_catalog.=) alert_id AND a.acknowledged_at IS NULL;
    RETURN FOUND;
END
$$;

COMMENT ON FUNCTION payymo.acknowledge_alert(bigint) IS
'Removes an alert from payymo.alerts (it stays in alert_log); true if it was open.  The same metric can alert again for the tenant from the next check';

-- Each tenant's last sample of each quantity, in one pass over the samples
-- (the primary key read backwards).  No SET clause, so that the planner
-- inlines it into check_alerts()' joins.
CREATE FUNCTION payymo._alert_last_samples()
RETURNS SETOF payymo.alert_samples
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
SELECT DISTINCT ON (l.metric, l.tenant_id) l.*
  FROM payymo.alert_samples l
 ORDER BY l.metric DESC, l.tenant_id DESC, l.sampled_at DESC
$$;

COMMENT ON FUNCTION payymo._alert_last_samples() IS
'Internal: the last sample of each quantity and tenant';

REVOKE EXECUTE ON FUNCTION payymo._alert_last_samples() FROM PUBLIC;

-- check_alerts()' WARNING: one line in the log (a RAISE would add its
-- PL/pgSQL context and the statement).
CREATE FUNCTION payymo._alert_warning(message text)
RETURNS void
LANGUAGE C VOLATILE STRICT PARALLEL RESTRICTED
AS 'MODULE_PATHNAME', 'payymo_alert_warning';

COMMENT ON FUNCTION payymo._alert_warning(text) IS
'Internal: logs an alert as one WARNING line';

REVOKE EXECUTE ON FUNCTION payymo._alert_warning(text) FROM PUBLIC;

-- One evaluation: sample the metrics rules use, compare each tenant's
-- change over the rule's period with its threshold, raise what crossed.
CREATE FUNCTION payymo.check_alerts()
RETURNS TABLE (alert_id bigint, tenant_id bigint, metric text,
               value double precision, threshold double precision)
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    now_ts timestamptz;
    cur payymo.alert_samples[];
    storage_due boolean;
    raised payymo.alert_log[];
    a payymo.alert_log;
BEGIN
    -- Every statement reads what committed before it: the lock below then
    -- orders evaluations, and a concurrent one's samples are seen.
    IF pg_catalog.current_setting('transaction_isolation') OPERATOR(pg_catalog.<>) 'read committed' THEN
        RAISE EXCEPTION 'check_alerts() must run at READ COMMITTED'
            USING ERRCODE = 'feature_not_supported';
    END IF;
    -- One evaluation at a time (the worker and a manual call); readers of
    -- the samples are not blocked.
    LOCK TABLE payymo.alert_samples IN SHARE ROW EXCLUSIVE MODE;
    now_ts := pg_catalog.clock_timestamp();

    IF EXISTS (SELECT FROM payymo.alert_rules r
                WHERE r.metric OPERATOR(pg_catalog.<>) 'storage_growth') THEN
        cur := ARRAY(
            SELECT ROW(m.metric, s.tenant_id, now_ts, m.value)::payymo.alert_samples
              FROM payymo.tenant_stats() s
             CROSS JOIN LATERAL (VALUES
                   ('statements', s.statements::float8), ('rows', s.rows::float8),
                   ('total_exec_time', s.total_exec_time),
                   ('shared_blks_hit', s.shared_blks_hit::float8),
                   ('shared_blks_read', s.shared_blks_read::float8),
                   ('shared_blks_dirtied', s.shared_blks_dirtied::float8),
                   ('shared_blks_written', s.shared_blks_written::float8),
                   ('temp_blks_read', s.temp_blks_read::float8),
                   ('temp_blks_written', s.temp_blks_written::float8),
                   ('wal_records', s.wal_records::float8),
                   ('wal_bytes', s.wal_bytes::float8),
                   ('denied', s.denied::float8),
                   ('rate_limited', s.rate_limited::float8)) m(metric, value)
             WHERE s.datid OPERATOR(pg_catalog.=)
                   (SELECT d.oid FROM pg_catalog.pg_database d
                     WHERE d.datname OPERATOR(pg_catalog.=) pg_catalog.current_database())
               -- statistics and rows outlive a dropped tenant: not alerted
               AND EXISTS (SELECT FROM payymo.tenants t WHERE t.id OPERATOR(pg_catalog.=) s.tenant_id)
               AND m.metric IN (SELECT payymo._alert_source(r.metric) FROM payymo.alert_rules r));
    ELSE
        cur := '{}';
    END IF;

    -- Storage is measured at most every sixth of the shortest storage
    -- period (a scan of every table under tenancy, or a sample of it:
    -- payymo.alerts_storage_sample percent of the pages).
    storage_due := EXISTS (
        SELECT FROM payymo.alert_rules r
         WHERE r.metric OPERATOR(pg_catalog.=) 'storage_growth'
           AND (r.sampled_at IS NULL
                OR (r.sampled_at OPERATOR(pg_catalog.+) (r.period OPERATOR(pg_catalog./) 6))
                   OPERATOR(pg_catalog.<=) now_ts));
    IF storage_due THEN
        cur := cur OPERATOR(pg_catalog.||) ARRAY(
            SELECT ROW('storage_bytes', st.tenant_id, now_ts, pg_catalog.sum(st.bytes)::float8)::payymo.alert_samples
              FROM payymo.tenant_storage(COALESCE(
                       pg_catalog.current_setting('payymo.alerts_storage_sample', true)::float8,
                       100)) st
             WHERE EXISTS (SELECT FROM payymo.tenants t WHERE t.id OPERATOR(pg_catalog.=) st.tenant_id)
             GROUP BY st.tenant_id);
    END IF;

    -- A counter below the tenant's last sample was reset (tenant_stats_reset,
    -- eviction, restart): its history no longer applies, and its change is
    -- counted from zero.  (A reset followed by more activity than before
    -- before the next evaluation goes unnoticed: the change is undercounted
    -- for one period.)  Storage is a level, not a counter: it may shrink.
    DELETE FROM payymo.alert_samples s
     USING pg_catalog.unnest(cur) c
      JOIN payymo._alert_last_samples() l
        ON l.metric OPERATOR(pg_catalog.=) c.metric
       AND l.tenant_id OPERATOR(pg_catalog.=) c.tenant_id
     WHERE c.metric OPERATOR(pg_catalog.<>) 'storage_bytes'
       AND c.value OPERATOR(pg_catalog.<) l.value
       AND s.metric OPERATOR(pg_catalog.=) c.metric
       AND s.tenant_id OPERATOR(pg_catalog.=) c.tenant_id;

    -- Every statement below joins whole sets (the current values, the
    -- samples, the rules): no look-up per tenant.
    WITH c AS (SELECT * FROM pg_catalog.unnest(cur)),
    r AS MATERIALIZED (
        -- rules with a baseline (their first check only records one),
        -- numbered once for the joins below
        SELECT pg_catalog.row_number() OVER () AS rule_no,
               r.metric, r.tenant_id, r.threshold, r.period,
               payymo._alert_source(r.metric) AS source,
               GREATEST(now_ts OPERATOR(pg_catalog.-) r.period, r.baseline_at) AS since
          FROM payymo.alert_rules r
         WHERE r.baseline_at IS NOT NULL
    ),
    b AS (
        -- each tenant's value at the start of the rule's period: its last
        -- sample at or before it (no sample: zero).  A general rule and a
        -- share rule (which needs every tenant's, for the total) read the
        -- quantity's samples; a tenant's own rule only that tenant's.
        SELECT DISTINCT ON (x.rule_no, x.tenant_id) x.rule_no, x.tenant_id, x.value
          FROM (SELECT r.rule_no, l.tenant_id, l.value, l.sampled_at
                  FROM r JOIN payymo.alert_samples l
                    ON l.metric OPERATOR(pg_catalog.=) r.source
                   AND l.sampled_at OPERATOR(pg_catalog.<=) r.since
                 WHERE r.tenant_id IS NULL OR r.metric OPERATOR(pg_catalog.=) 'exec_time_share'
                UNION ALL
                SELECT r.rule_no, l.tenant_id, l.value, l.sampled_at
                  FROM r JOIN payymo.alert_samples l
                    ON l.metric OPERATOR(pg_catalog.=) r.source
                   AND l.tenant_id OPERATOR(pg_catalog.=) r.tenant_id
                   AND l.sampled_at OPERATOR(pg_catalog.<=) r.since
                 WHERE r.tenant_id IS NOT NULL
                   AND r.metric OPERATOR(pg_catalog.<>) 'exec_time_share') x
         ORDER BY x.rule_no, x.tenant_id, x.sampled_at DESC
    ),
    d AS (
        -- each tenant's change over the rule's period
        SELECT r.metric, r.tenant_id AS rule_tenant, c.tenant_id, r.threshold, r.period,
               c.value OPERATOR(pg_catalog.-) COALESCE(b.value, 0) AS change
          FROM r JOIN c ON c.metric OPERATOR(pg_catalog.=) r.source
          LEFT JOIN b ON b.rule_no OPERATOR(pg_catalog.=) r.rule_no
                     AND b.tenant_id OPERATOR(pg_catalog.=) c.tenant_id
         WHERE r.tenant_id IS NULL OR r.tenant_id OPERATOR(pg_catalog.=) c.tenant_id
               OR r.metric OPERATOR(pg_catalog.=) 'exec_time_share'
    ),
    v AS (
        -- a share needs at least one second of execution time in all
        SELECT d.metric, d.rule_tenant, d.tenant_id, d.threshold, d.period,
               CASE WHEN d.metric OPERATOR(pg_catalog.<>) 'exec_time_share' THEN d.change
                    WHEN pg_catalog.sum(d.change) OVER w OPERATOR(pg_catalog.>=) 1000
                    THEN d.change OPERATOR(pg_catalog./) pg_catalog.sum(d.change) OVER w
               END AS value
          FROM d
        WINDOW w AS (PARTITION BY d.metric, d.rule_tenant)
    ),
    ins AS (
        INSERT INTO payymo.alert_log (tenant_id, metric, value, threshold, period, raised_at)
        SELECT v.tenant_id, v.metric, v.value, v.threshold, v.period, now_ts
          FROM v
         WHERE v.value OPERATOR(pg_catalog.>) v.threshold
           AND (v.rule_tenant OPERATOR(pg_catalog.=) v.tenant_id
                OR (v.rule_tenant IS NULL
                    AND NOT EXISTS (SELECT FROM payymo.alert_rules o
                                     WHERE o.metric OPERATOR(pg_catalog.=) v.metric
                                       AND o.tenant_id OPERATOR(pg_catalog.=) v.tenant_id)))
        ON CONFLICT (tenant_id, metric) WHERE acknowledged_at IS NULL DO NOTHING
        RETURNING *
    )
    SELECT pg_catalog.array_agg(ins ORDER BY ins.id) INTO raised FROM ins;

    -- Record what changed, at most every twentieth of the shortest period
    -- of the quantity's rules (so a period's start is known to within 5 %,
    -- and a tenant busy all the time adds at most 20 samples per period).
    INSERT INTO payymo.alert_samples
    SELECT c.* FROM pg_catalog.unnest(cur) c
      JOIN (SELECT payymo._alert_source(r.metric) AS source, pg_catalog.min(r.period) AS period
              FROM payymo.alert_rules r GROUP BY 1) p
        ON p.source OPERATOR(pg_catalog.=) c.metric
      LEFT JOIN payymo._alert_last_samples() l
        ON l.metric OPERATOR(pg_catalog.=) c.metric
       AND l.tenant_id OPERATOR(pg_catalog.=) c.tenant_id
     WHERE c.value IS DISTINCT FROM COALESCE(l.value, 0)
       AND (l.sampled_at IS NULL
            OR l.sampled_at OPERATOR(pg_catalog.<=)
               (now_ts OPERATOR(pg_catalog.-) (p.period OPERATOR(pg_catalog./) 20)));
    UPDATE payymo.alert_rules r
       SET sampled_at = now_ts, baseline_at = COALESCE(r.baseline_at, now_ts)
     WHERE r.metric OPERATOR(pg_catalog.<>) 'storage_growth' OR storage_due;

    -- Keep, per tenant and quantity, the samples of the longest period and
    -- the last one before it; nothing of tenants or quantities gone.
    DELETE FROM payymo.alert_samples s
     WHERE NOT EXISTS (SELECT FROM payymo.tenants t WHERE t.id OPERATOR(pg_catalog.=) s.tenant_id);
    DELETE FROM payymo.alert_samples s
     WHERE NOT EXISTS (SELECT FROM payymo.alert_rules r
                        WHERE payymo._alert_source(r.metric) OPERATOR(pg_catalog.=) s.metric);
    DELETE FROM payymo.alert_samples s
     USING (SELECT l.metric, l.tenant_id, pg_catalog.max(l.sampled_at) AS keep_from
              FROM payymo.alert_samples l
              JOIN (SELECT payymo._alert_source(r.metric) AS source, pg_catalog.max(r.period) AS period
                      FROM payymo.alert_rules r GROUP BY 1) p
                ON p.source OPERATOR(pg_catalog.=) l.metric
             WHERE l.sampled_at OPERATOR(pg_catalog.<=) (now_ts OPERATOR(pg_catalog.-) p.period)
             GROUP BY l.metric, l.tenant_id) k
     WHERE s.metric OPERATOR(pg_catalog.=) k.metric
       AND s.tenant_id OPERATOR(pg_catalog.=) k.tenant_id
       AND s.sampled_at OPERATOR(pg_catalog.<) k.keep_from;

    FOREACH a IN ARRAY COALESCE(raised, '{}') LOOP
        PERFORM payymo._alert_warning(pg_catalog.format(
            'payymo alert %s: tenant %s (%s) %s = %s over %s, threshold %s',
            a.id, a.tenant_id,
            COALESCE((SELECT t.slug FROM payymo.tenants t
                       WHERE t.id OPERATOR(pg_catalog.=) a.tenant_id), '?'),
            a.metric, pg_catalog.round(a.value::numeric, 3)::float8, a.period, a.threshold));
        -- Any role can LISTEN: the payload is the id alone, and the details
        -- are in payymo.alerts, which only administrators read.  That an
        -- alert was raised is still visible: payymo.alerts_notify = off
        -- sends nothing.
        IF COALESCE(pg_catalog.current_setting('payymo.alerts_notify', true), 'on') OPERATOR(pg_catalog.=) 'on' THEN
            PERFORM pg_catalog.pg_notify('payymo_alert', a.id::text);
        END IF;
        alert_id := a.id;
        tenant_id := a.tenant_id;
        metric := a.metric;
        value := a.value;
        threshold := a.threshold;
        RETURN NEXT;
    END LOOP;
END
$$;

COMMENT ON FUNCTION payymo.check_alerts() IS
'Evaluates the alert rules once and returns the alerts it raised (each also logged as a WARNING and sent with NOTIFY payymo_alert); run by the alerts worker, or by a scheduler';

REVOKE EXECUTE ON FUNCTION payymo.set_alert(text, double precision, interval, bigint),
    payymo.drop_alert(text, bigint), payymo.acknowledge_alert(bigint),
    payymo.check_alerts() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION payymo.set_alert(text, double precision, interval, bigint),
    payymo.drop_alert(text, bigint), payymo.acknowledge_alert(bigint),
    payymo.check_alerts() TO payymo_admin;
