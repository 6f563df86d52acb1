"""The SQL behind the tool belt, over the snapshot's raw tables.

Every query takes the window parameters of ``IncidentWindow.params`` ($b0 baseline start,
$i0 incident start, $i1 end, $bs / $is their lengths in s) and optional $service /
$operation filters (NULL matches all). Spans in [$b0, $i0) are "before", in [$i0, $i1)
"after". Self time of a span = its duration minus its children's (ns, floored at 0); an
"own" error is an error span none of whose children failed, which separates where
failures start from where they propagate.
"""

from __future__ import annotations

SPANS = """
s AS (
    SELECT trace_id, span_id, parent_span_id, service_name AS service, span_name AS operation, span_kind,
           duration_ns, status_code = 'ERROR' AS err, start_time, attributes, service_version,
           CASE WHEN start_time >= $i0 THEN 'after' ELSE 'before' END AS w
    FROM spans
    WHERE start_time >= $b0 AND start_time < $i1
)"""

_SELF = """
kids AS (
    SELECT trace_id, parent_span_id AS span_id, sum(duration_ns) AS child_ns, bool_or(err) AS child_err
    FROM s WHERE parent_span_id IS NOT NULL AND parent_span_id != '' GROUP BY ALL
),
j AS (
    SELECT s.*, greatest(duration_ns - coalesce(child_ns, 0), 0) AS self_ns,
           err AND NOT coalesce(child_err, false) AS own_err,
           parent_span_id IS NULL OR parent_span_id = '' AS is_root
    FROM s LEFT JOIN kids USING (trace_id, span_id)
)"""

FILTER = "($service IS NULL OR service = $service) AND ($operation IS NULL OR operation = $operation)"

COMPARE_WINDOWS = f"""
WITH {SPANS}, {_SELF}
SELECT service, operation,
    count(*) FILTER (w = 'before') AS n_before,
    count(*) FILTER (w = 'after') AS n_after,
    round(count(*) FILTER (w = 'before') / $bs, 4) AS rate_before,
    round(count(*) FILTER (w = 'after') / $is, 4) AS rate_after,
    round(avg(duration_ns) FILTER (w = 'before') / 1e6, 4) AS mean_ms_before,
    round(avg(duration_ns) FILTER (w = 'after') / 1e6, 4) AS mean_ms_after,
    round(avg(self_ns) FILTER (w = 'before') / 1e6, 4) AS self_ms_before,
    round(avg(self_ns) FILTER (w = 'after') / 1e6, 4) AS self_ms_after,
    round(coalesce(stddev_samp(self_ns) FILTER (w = 'before'), 0) / 1e6, 4) AS self_sd_ms_before,
    round(coalesce(stddev_samp(self_ns) FILTER (w = 'after'), 0) / 1e6, 4) AS self_sd_ms_after,
    round(avg(err::INT) FILTER (w = 'before'), 6) AS error_ratio_before,
    round(avg(err::INT) FILTER (w = 'after'), 6) AS error_ratio_after,
    round(avg(own_err::INT) FILTER (w = 'before'), 6) AS own_error_ratio_before,
    round(avg(own_err::INT) FILTER (w = 'after'), 6) AS own_error_ratio_after,
    round(avg(is_root::INT) FILTER (w = 'before'), 6) AS root_ratio_before,
    round(avg(is_root::INT) FILTER (w = 'after'), 6) AS root_ratio_after
FROM j WHERE {FILTER}
GROUP BY ALL HAVING count(*) FILTER (w = 'before') > 0 OR count(*) FILTER (w = 'after') > 0
ORDER BY service, operation
"""

DEPENDENCIES = f"""
WITH {SPANS},
e AS (
    SELECT p.service AS caller_service, p.operation AS caller_operation, p.span_kind AS caller_kind,
           c.service AS callee_service, c.operation AS callee_operation, c.w, c.duration_ns, p.span_id AS parent_id
    FROM s c JOIN s p ON c.trace_id = p.trace_id AND c.parent_span_id = p.span_id
    WHERE NOT (p.service IS NOT DISTINCT FROM c.service AND p.operation = c.operation)
),
callers AS (  -- per kind: an operation seen before only through its callers' CLIENT spans had no traced calls
    SELECT service AS caller_service, operation AS caller_operation, span_kind AS caller_kind,
           count(*) FILTER (w = 'before') AS spans_before, count(*) FILTER (w = 'after') AS spans_after
    FROM s GROUP BY ALL
)
SELECT caller_service, caller_operation, caller_kind, callee_service, callee_operation,
    round(count(*) FILTER (w = 'before') / $bs, 4) AS calls_per_s_before,
    round(count(*) FILTER (w = 'after') / $is, 4) AS calls_per_s_after,
    round(count(*) FILTER (w = 'before') / greatest(any_value(spans_before), 1), 4) AS calls_per_caller_before,
    round(count(*) FILTER (w = 'after') / greatest(any_value(spans_after), 1), 4) AS calls_per_caller_after,
    round(coalesce(sum(duration_ns) FILTER (w = 'before'), 0) / greatest(any_value(spans_before), 1) / 1e6, 4)
        AS contribution_ms_before,
    round(coalesce(sum(duration_ns) FILTER (w = 'after'), 0) / greatest(any_value(spans_after), 1) / 1e6, 4)
        AS contribution_ms_after,
    any_value(spans_before) AS caller_spans_before, any_value(spans_after) AS caller_spans_after
FROM e JOIN callers USING (caller_service, caller_operation, caller_kind)
WHERE ($service IS NULL OR caller_service = $service OR callee_service = $service)
  AND ($operation IS NULL OR caller_operation = $operation OR callee_operation = $operation)
GROUP BY ALL
ORDER BY caller_service, caller_operation, caller_kind, callee_service, callee_operation
"""

DEPLOYS = """
WITH v AS (
    SELECT service_name AS service, service_version AS version, min(start_time) AS first_seen
    FROM spans WHERE start_time < $i1 AND service_version IS NOT NULL GROUP BY ALL
),
ranked AS (SELECT *, row_number() OVER (PARTITION BY service ORDER BY first_seen) AS nth FROM v)
SELECT service, version, strftime(first_seen, '%Y-%m-%dT%H:%M:%SZ') AS first_seen,
       first_seen >= $i0 AS in_incident
FROM ranked WHERE nth > 1 AND first_seen >= $b0 AND ($service IS NULL OR service = $service)
ORDER BY first_seen, service
"""

_TEMPLATE = (
    "regexp_replace(regexp_replace(regexp_replace(body, '[0-9a-fA-F]{8}-[0-9a-fA-F-]{27}', '<uuid>', 'g'), "
    "'(user|order|item|req)-[0-9]+', '<id>', 'g'), '[0-9]+([.][0-9]+)?', '<n>', 'g')"
)

LOG_TEMPLATES_DIFF = f"""
WITH l AS (
    SELECT service_name AS service, coalesce(severity_text, '') AS severity, {_TEMPLATE} AS template,
           CASE WHEN time >= $i0 THEN 'after' ELSE 'before' END AS w
    FROM logs WHERE time >= $b0 AND time < $i1 AND ($service IS NULL OR service_name = $service)
),
traced AS (  -- the service's own spans before (not its callers' CLIENT spans): it was running and observed
    SELECT service_name AS service, count(*) AS spans_before FROM spans
    WHERE start_time >= $b0 AND start_time < $i0 AND span_kind != 'CLIENT' GROUP BY ALL
)
SELECT service, severity, left(template, 200) AS template,
    count(*) FILTER (w = 'before') AS n_before, count(*) FILTER (w = 'after') AS n_after,
    round(count(*) FILTER (w = 'before') / $bs, 5) AS rate_before,
    round(count(*) FILTER (w = 'after') / $is, 5) AS rate_after,
    count(*) FILTER (w = 'before') = 0 AS new,
    coalesce(any_value(traced.spans_before), 0) AS service_spans_before
FROM l LEFT JOIN traced USING (service) GROUP BY service, severity, template
ORDER BY new DESC, (count(*) FILTER (w = 'after') / $is) - (count(*) FILTER (w = 'before') / $bs) DESC,
    service, template
"""

ATTRIBUTE_DIFF = f"""
WITH {SPANS},
base AS (
    SELECT service, operation, quantile_cont(duration_ns, 0.9) AS p90 FROM s WHERE w = 'before' GROUP BY ALL
),
t AS (
    SELECT s.*, CASE WHEN w = 'after' AND ($target = 'error' AND err OR $target = 'slow' AND duration_ns > p90)
                     THEN 'target' WHEN w = 'before' THEN 'baseline' END AS grp
    FROM s LEFT JOIN base USING (service, operation) WHERE {FILTER}
),
kv AS (
    SELECT grp, k AS key, json_extract_string(attributes, '$."' || k || '"') AS value
    FROM (SELECT grp, attributes, unnest(json_keys(attributes)) AS k FROM t WHERE grp IS NOT NULL)
    UNION ALL SELECT grp, 'service.version', service_version FROM t WHERE grp IS NOT NULL
),
totals AS (SELECT grp, count(*) AS n FROM t WHERE grp IS NOT NULL GROUP BY grp),
cardinality AS (SELECT key FROM kv GROUP BY key HAVING count(DISTINCT value) <= 50),
shares AS (
SELECT key, value,
    round(count(*) FILTER (grp = 'target') / greatest((SELECT n FROM totals WHERE grp = 'target'), 1), 4)
        AS share_target,
    round(count(*) FILTER (grp = 'baseline') / greatest((SELECT n FROM totals WHERE grp = 'baseline'), 1), 4)
        AS share_baseline,
    (SELECT n FROM totals WHERE grp = 'target') AS target_spans
FROM kv SEMI JOIN cardinality USING (key)
GROUP BY ALL
)
SELECT * FROM shares ORDER BY share_target - share_baseline DESC, key, value
"""

EXEMPLARS = f"""
WITH {SPANS}
SELECT trace_id, span_id, service, operation, round(duration_ns / 1e6, 3) AS duration_ms, err AS error,
       strftime(start_time, '%Y-%m-%dT%H:%M:%S.%gZ') AS start
FROM s WHERE w = 'after' AND {FILTER} AND ($kind = 'slow' OR err)
ORDER BY duration_ns DESC, trace_id, span_id
"""

TRACE = """
SELECT span_id, parent_span_id, service_name AS service, span_name AS operation, span_kind,
       epoch_ns(start_time) AS start_ns, epoch_ns(end_time) AS end_ns, duration_ns, status_code
FROM spans WHERE trace_id = $trace_id ORDER BY start_time, span_id
"""

SATURATION = """
WITH g AS (
    SELECT service_name AS service, metric_name AS metric, json_extract_string(attributes, '$.operation') AS operation,
           value, CASE WHEN time >= $i0 THEN 'after' ELSE 'before' END AS w
    FROM metric_points
    WHERE kind = 'gauge' AND time >= $b0 AND time < $i1 AND ($service IS NULL OR service_name = $service)
)
SELECT service, operation, metric,
    round(avg(value) FILTER (w = 'before'), 4) AS mean_before, round(avg(value) FILTER (w = 'after'), 4) AS mean_after,
    round(max(value) FILTER (w = 'after'), 4) AS max_after
FROM g GROUP BY ALL
ORDER BY coalesce(avg(value) FILTER (w = 'after'), 0) - coalesce(avg(value) FILTER (w = 'before'), 0) DESC,
         service, operation, metric
"""

FINDINGS = """
SELECT id, detector, kind, service, operation, metric, severity, effect_text, q_value,
       strftime(coalesce(change_time, window_start), '%Y-%m-%dT%H:%M:%SZ') AS changed
FROM findings
WHERE window_end >= $b0 AND window_start < $i1 AND ($service IS NULL OR service = $service)
ORDER BY list_position(['critical', 'warning', 'info'], severity), score DESC, id
"""

ATTRIBUTE_CONTRACT = f"""
WITH {SPANS},
kv AS (
    SELECT service, operation, span_kind, w, k AS key, json_type(attributes, '$."' || k || '"') AS type
    FROM (SELECT service, operation, span_kind, w, attributes, unnest(json_keys(attributes)) AS k
          FROM s WHERE {FILTER})
),
n AS (  -- per kind: a CLIENT span seen before and a SERVER span traced since carry different attributes
    SELECT service, operation, span_kind, count(*) FILTER (w = 'before') AS n0, count(*) FILTER (w = 'after') AS n1
    FROM s WHERE {FILTER} GROUP BY ALL
),
keys AS (
    SELECT service, operation, span_kind, key,
           count(*) FILTER (w = 'before') AS k0, count(*) FILTER (w = 'after') AS k1,
           string_agg(DISTINCT type, ',' ORDER BY type) FILTER (w = 'before') AS types_before,
           string_agg(DISTINCT type, ',' ORDER BY type) FILTER (w = 'after') AS types_after
    FROM kv GROUP BY ALL
)
SELECT service, operation, span_kind, key, round(k0 / greatest(n0, 1), 4) AS share_before,
       round(k1 / greatest(n1, 1), 4) AS share_after,
       types_before, types_after
FROM keys JOIN n USING (service, operation, span_kind)
WHERE n0 > 0 AND n1 > 0 AND (abs(k1 / n1 - k0 / n0) > 0.2 OR types_before IS DISTINCT FROM types_after)
ORDER BY service, operation, span_kind, key
"""
