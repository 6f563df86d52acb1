"""driftscope's own state tables: findings, invariants, job runs, dispatch decisions,
investigations and the reports index, each with its forward migrations.

Every family keeps its own version table (as the raw and rollup tables do), so a store
written before this module existed migrates without change. Entries are never edited once
released; a change is a new entry appended to its family. Times are ``TIMESTAMP_NS`` (UTC).
When the telemetry plane moves to ClickHouse these tables stay in a small local DuckDB.
"""

from __future__ import annotations

FINDINGS = (
    """
CREATE TABLE findings (
    id VARCHAR PRIMARY KEY,
    fingerprint VARCHAR NOT NULL,
    detector VARCHAR NOT NULL,
    kind VARCHAR NOT NULL,
    service VARCHAR,
    operation VARCHAR,
    metric VARCHAR,
    attributes VARCHAR,
    window_start TIMESTAMP_NS NOT NULL,
    window_end TIMESTAMP_NS NOT NULL,
    change_time TIMESTAMP_NS,
    severity VARCHAR NOT NULL,
    score DOUBLE NOT NULL,
    effect DOUBLE,
    effect_text VARCHAR NOT NULL,
    before DOUBLE,
    after DOUBLE,
    p_value DOUBLE NOT NULL,
    q_value DOUBLE NOT NULL,
    evidence JSON,
    status VARCHAR NOT NULL,
    first_seen TIMESTAMP_NS NOT NULL,
    last_seen TIMESTAMP_NS NOT NULL,
    runs INTEGER NOT NULL,
    acknowledged_at TIMESTAMP_NS,
    resolved_at TIMESTAMP_NS
);
""",
)

INVARIANTS = (
    """
CREATE TABLE invariants (
    id VARCHAR PRIMARY KEY,
    kind VARCHAR NOT NULL,
    service VARCHAR,
    operation VARCHAR,
    span_kind VARCHAR,
    subject VARCHAR,
    params JSON,
    support BIGINT NOT NULL,
    confidence DOUBLE NOT NULL,
    source VARCHAR NOT NULL,
    learned_from TIMESTAMP_NS,
    learned_to TIMESTAMP_NS
);
""",
)

JOB_RUNS = (
    """
CREATE TABLE job_runs (
    job VARCHAR NOT NULL,
    started_at TIMESTAMP_NS NOT NULL,
    finished_at TIMESTAMP_NS NOT NULL,
    outcome VARCHAR NOT NULL,
    detail JSON,
    error VARCHAR
);
""",
)

DISPATCH = (
    """
CREATE TABLE dispatch_decisions (
    decided_at TIMESTAMP_NS NOT NULL,
    source VARCHAR NOT NULL,
    fingerprint VARCHAR NOT NULL,
    action VARCHAR NOT NULL,
    reason VARCHAR NOT NULL,
    finding_id VARCHAR,
    investigation_id VARCHAR,
    title VARCHAR NOT NULL
);
""",
)

INVESTIGATIONS = (
    """
CREATE TABLE investigations (
    id VARCHAR PRIMARY KEY,
    finding_id VARCHAR,
    fingerprint VARCHAR NOT NULL,
    trigger VARCHAR NOT NULL,
    policy VARCHAR NOT NULL,
    status VARCHAR NOT NULL,
    title VARCHAR NOT NULL,
    report_path VARCHAR,
    window_start TIMESTAMP_NS NOT NULL,
    window_end TIMESTAMP_NS NOT NULL,
    baseline_start TIMESTAMP_NS NOT NULL,
    snapshot_path VARCHAR,
    report JSON,
    claims_total INTEGER NOT NULL DEFAULT 0,
    claims_verified INTEGER NOT NULL DEFAULT 0,
    steps INTEGER NOT NULL DEFAULT 0,
    tokens BIGINT NOT NULL DEFAULT 0,
    cost_usd DOUBLE NOT NULL DEFAULT 0,
    wall_s DOUBLE NOT NULL DEFAULT 0,
    started_at TIMESTAMP_NS NOT NULL,
    finished_at TIMESTAMP_NS
);
CREATE TABLE investigation_steps (
    investigation_id VARCHAR NOT NULL,
    step INTEGER NOT NULL,
    kind VARCHAR NOT NULL,
    name VARCHAR NOT NULL,
    payload JSON NOT NULL,
    wall_s DOUBLE NOT NULL,
    PRIMARY KEY (investigation_id, step)
);
""",
)

REPORTS = (
    """
CREATE TABLE reports (
    id VARCHAR PRIMARY KEY,
    created_at TIMESTAMP_NS NOT NULL,
    window_start TIMESTAMP_NS NOT NULL,
    window_end TIMESTAMP_NS NOT NULL,
    headline VARCHAR NOT NULL,
    path VARCHAR NOT NULL,
    n_findings INTEGER NOT NULL,
    n_critical INTEGER NOT NULL,
    n_warning INTEGER NOT NULL,
    n_info INTEGER NOT NULL
);
""",
)
