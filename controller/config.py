"""driftscope configuration: one validated model, from a TOML file plus ``DRIFTSCOPE_*``.

Every key is documented here once. Precedence, highest first: environment variables
(``DRIFTSCOPE_SECTION__KEY``, e.g. ``DRIFTSCOPE_INGEST__QUEUE_ROWS_MAX=50000``), the TOML
file given with ``--config``, the defaults below. Unknown keys in the file are errors (a
typo must not silently fall back to a default); every error names the key.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.cron import CronTrigger
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from investigations.config import InvestigationsConfig
from store.clickhouse import ClickHouseTarget, resolve_password
from store.schema_otel import OtelTables


class ConfigError(ValueError):
    """The configuration is invalid; the message names each bad key and the problem."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_address(value: str) -> str:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"{value!r} is not HOST:PORT")
    return value


class ServerConfig(_Section):
    """Listen addresses (HOST:PORT; port 0 picks a free port)."""

    otlp_http: str = "127.0.0.1:4318"
    """OTLP/HTTP receiver."""
    otlp_grpc: str = "127.0.0.1:4317"
    """OTLP/gRPC receiver."""
    http: str = "127.0.0.1:8080"
    """API, ``/metrics``, ``/healthz``, ``/readyz``."""

    _addresses = field_validator("otlp_http", "otlp_grpc", "http")(_check_address)


class IngestConfig(_Section):
    """Ingest limits. Bytes are Arrow bytes for the queue, wire bytes for bodies."""

    queue_rows_max: int = Field(200_000, gt=0)
    """Rows decoded but not yet committed before receivers answer 429."""
    queue_bytes_max: int = Field(256 * 1024 * 1024, gt=0)
    """Arrow bytes decoded but not yet committed before receivers answer 429."""
    batch_rows_max: int = Field(100_000, gt=0)
    """Largest group commit, in rows."""
    flush_interval_s: float = Field(0.005, ge=0, le=1)
    """Longest a commit waits for requests still being decoded to join it, in seconds (group commit)."""
    body_bytes_max: int = Field(16 * 1024 * 1024, gt=0)
    """Largest request body as received (compressed), in bytes; larger gets 413."""
    decompressed_bytes_max: int = Field(64 * 1024 * 1024, gt=0)
    """Largest request body after decompression, in bytes; larger gets 413."""
    retry_after_s: int = Field(1, ge=1, le=300)
    """Seconds a refused client is asked to wait (Retry-After / RetryInfo)."""
    concurrency_max: int = Field(64, gt=0)
    """Export requests handled at once per transport; more get 503 / RESOURCE_EXHAUSTED.
    With the queue limit this bounds memory: about queue_bytes_max + concurrency_max x
    (body_bytes_max + decompressed_bytes_max) at worst."""


class RetentionConfig(_Section):
    """Days of raw data kept per table; older rows are deleted by the retention job."""

    spans_days: float = Field(7.0, gt=0)
    logs_days: float = Field(7.0, gt=0)
    metrics_days: float = Field(30.0, gt=0)
    """Applies to all metric point tables."""

    def seconds_by_table(self) -> dict[str, float]:
        """Raw table name -> retention in seconds."""
        day_s = 86_400.0
        metric_tables = ("metric_points", "histogram_points", "exp_histogram_points", "summary_points")
        return {
            "spans": self.spans_days * day_s,
            "logs": self.logs_days * day_s,
            **{t: self.metrics_days * day_s for t in metric_tables},
        }


class AuthConfig(_Section):
    """Optional bearer tokens, set separately for the API and for ingest (empty = open).

    Put them in the environment (``DRIFTSCOPE_AUTH__API_TOKEN``), not in a committed file.
    Refused requests get 401 with no detail about why.
    """

    api_token: str = ""
    """Required as ``Authorization: Bearer ...`` on ``/api/*`` (health and metrics stay open)."""
    ingest_token: str = ""
    """Required on OTLP/HTTP requests and as gRPC ``authorization`` metadata."""


class JobsConfig(_Section):
    """When the scheduled jobs run. Intervals in seconds; crons in the configured time zone."""

    enabled: bool = True
    """Run the scheduler inside ``driftscope serve`` (off: ingest and API only)."""
    rollup_interval_s: float = Field(60.0, gt=0)
    """Bring rollups up to date."""
    detect_interval_s: float = Field(300.0, gt=0)
    """Run the detectors over the detection window and write findings."""
    report_cron: str = "0 2 * * *"
    """Nightly drift report (crontab: minute hour day month weekday)."""
    retention_cron: str = "30 3 * * *"
    """Delete raw rows past retention."""
    timezone: str = "UTC"
    """IANA time zone of the crons."""
    misfire_grace_s: float = Field(300.0, gt=0)
    """A run late by more than this is skipped (missed runs are coalesced into one)."""

    @field_validator("report_cron", "retention_cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        try:
            CronTrigger.from_crontab(value)
        except ValueError as exc:
            raise ValueError(f"{value!r} is not a crontab expression: {exc}") from None
        return value

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not an IANA time zone") from None
        return value


class DetectionConfigSection(_Section):
    """What the scheduled detection job looks at (data time: windows end at the newest data)."""

    window_s: float = Field(3_600.0, gt=0)
    """Window under test, in seconds."""
    history_s: float = Field(7 * 86_400.0, gt=0)
    """History the baselines learn from, in seconds."""
    resolve_after_s: float = Field(1_800.0, gt=0)
    """A finding not seen again for this long (data time) resolves itself."""
    spec: str = ""
    """Invariant spec (YAML) checked by the detection job when set."""


class ReportsConfig(_Section):
    """Where reports go."""

    out_dir: str = "driftscope-reports"
    """Directory for written reports (one sub-directory per report)."""
    window_s: float = Field(86_400.0, gt=0)
    """Window the nightly report covers, in seconds."""


class TelemetryConfig(_Section):
    """driftscope's own telemetry."""

    log_format: str = Field("json", pattern="^(json|text)$")
    """``json`` (one object per line, with trace ids) or ``text``."""
    otlp_endpoint: str = ""
    """OTLP/HTTP base URL for self-tracing (e.g. its own receiver); empty = off."""
    top_scores_max: int = Field(50, ge=0)
    """Most drift-score series exported on ``/metrics`` (bounds label cardinality)."""


class ClickHouseConfig(_Section):
    """The ClickHouse telemetry plane (``plane.backend = "clickhouse"``)."""

    url: str = Field("chdb:", pattern=r"^(chdb:.*|https?://.+)$")
    """``http(s)://host:port`` of a server, or ``chdb:`` / ``chdb:///dir`` for the in-process engine."""
    database: str = "otel"
    """Database holding the Collector exporter's tables; driftscope's rollup tables are created beside them."""
    user: str = "default"
    password_file: str = ""
    """File whose first line is the password (wins over ``password_env``); never put it in the TOML."""
    password_env: str = ""
    """Name of an environment variable holding the password."""
    ingest: bool = False
    """driftscope's own OTLP receivers write spans, logs and metric points into the exporter's tables
    (created when missing) instead of the store file. Off: a Collector writes them."""
    tables: dict[str, str] = {}
    """The exporter's table names when not its defaults: keys traces, logs, gauge, sum, histogram,
    exponential_histogram, summary (e.g. ``traces = "otel_traces_v2"``)."""

    @field_validator("tables")
    @classmethod
    def _known_tables(cls, value: dict[str, str]) -> dict[str, str]:
        OtelTables.from_mapping(value)  # ValueError names the unknown keys
        return value


class PlaneConfig(_Section):
    """Where the telemetry lives. ``duckdb`` (default): raw tables and rollups in the store file.
    ``clickhouse``: the OpenTelemetry Collector ClickHouse exporter's tables, read as they are;
    rollups are computed there; findings, invariants, jobs, investigations stay in the store file."""

    backend: Literal["duckdb", "clickhouse"] = "duckdb"
    clickhouse: ClickHouseConfig = ClickHouseConfig()

    def target(self) -> ClickHouseTarget:
        """The ClickHouse connection target, with the password resolved (ClickHouseError says why not)."""
        cfg = self.clickhouse
        return ClickHouseTarget(
            url=cfg.url, database=cfg.database, user=cfg.user,
            password=resolve_password(cfg.password_file, cfg.password_env), tables=OtelTables.from_mapping(cfg.tables),
        )  # fmt: skip


class Settings(BaseSettings):
    """The whole configuration."""

    model_config = SettingsConfigDict(env_prefix="DRIFTSCOPE_", env_nested_delimiter="__", extra="forbid", frozen=True)

    store: str = "driftscope.duckdb"
    """Path of the DuckDB store file."""
    server: ServerConfig = ServerConfig()
    ingest: IngestConfig = IngestConfig()
    retention: RetentionConfig = RetentionConfig()
    auth: AuthConfig = AuthConfig()
    jobs: JobsConfig = JobsConfig()
    detection: DetectionConfigSection = DetectionConfigSection()
    reports: ReportsConfig = ReportsConfig()
    telemetry: TelemetryConfig = TelemetryConfig()
    investigations: InvestigationsConfig = InvestigationsConfig()
    plane: PlaneConfig = PlaneConfig()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Environment beats the file (passed as init values), which beats defaults.
        return (env_settings, init_settings)


def _format(exc: ValidationError, source: str) -> str:
    lines = []
    for err in exc.errors():
        key = ".".join(str(part) for part in err["loc"]) or "(root)"
        got = err.get("input")
        shown = "" if isinstance(got, dict) else f" (got {str(got)[:60]!r})"
        lines.append(f"  {key}: {err['msg']}{shown}")
    return f"invalid configuration ({source}):\n" + "\n".join(lines)


def load_config(path: str | Path | None = None, **overrides: Any) -> Settings:
    """Read, merge and validate the configuration; ConfigError names every bad key.

    ``overrides`` are CLI flags (section dicts or top-level keys) applied last.
    """
    data: dict[str, Any] = {}
    source = "defaults and DRIFTSCOPE_* environment"
    if path is not None:
        source = f"{path} and DRIFTSCOPE_* environment"
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"config file {path} does not exist") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    try:
        settings = Settings(**data)
        if overrides:
            merged = settings.model_dump()
            for key, value in overrides.items():
                if isinstance(value, dict):
                    merged[key] = {**merged[key], **value}
                else:
                    merged[key] = value
            settings = Settings.model_validate(merged)
    except ValidationError as exc:
        raise ConfigError(_format(exc, source)) from None
    return settings
