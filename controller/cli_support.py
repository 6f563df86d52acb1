"""Shared pieces of the command line: common options, settings, durations, table output.

Kept apart from ``controller.cli`` so that command modules (one per capability) can use
them and be registered on the main group without import cycles.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any, TypeVar

import click
import orjson
import polars as pl
import pyarrow as pa
import pyarrow.csv as pa_csv

from controller.config import ConfigError, Settings, load_config

F = TypeVar("F", bound=Callable[..., Any])


def common_options(func: F) -> F:
    """Add ``--config FILE`` and ``--store PATH``, the options every store command takes."""
    func = click.option("--config", "config_path", type=click.Path(dir_okay=False), help="TOML configuration file.")(
        func
    )
    func = click.option(
        "--store",
        "store_path",
        type=click.Path(dir_okay=False),
        help="DuckDB store file [default: ./driftscope.duckdb].",
    )(func)
    return func


def settings_for(config_path: str | None, store_path: str | None, **overrides: Any) -> Settings:
    """Load the configuration with ``--store`` applied; a bad configuration is a clean CLI error."""
    if store_path:
        overrides["store"] = store_path
    try:
        return load_config(config_path, **overrides)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


def format_table(table: pa.Table, fmt: str) -> str:
    """Render an Arrow table as an aligned table, CSV or JSON (one object per row)."""
    if fmt == "csv":
        buf = io.BytesIO()
        pa_csv.write_csv(table, buf)
        return buf.getvalue().decode()
    if fmt == "json":
        # Nanosecond timestamps have no Python datetime: render every temporal column as text.
        columns = [c.cast(pa.string()) if pa.types.is_temporal(c.type) else c for c in table.columns]
        table = pa.table(columns, names=table.column_names)
        return orjson.dumps(table.to_pylist(), default=str, option=orjson.OPT_INDENT_2).decode() + "\n"
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    with pl.Config(tbl_rows=200, tbl_cols=50, fmt_str_lengths=80, tbl_hide_dataframe_shape=True):
        return f"{frame}\n({table.num_rows} rows)\n"


def parse_duration(text: str) -> float:
    """Seconds in "90s", "15m", "24h", "7d"."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    try:
        return float(text[:-1]) * units[text[-1]]
    except (KeyError, ValueError, IndexError):
        raise click.BadParameter(f"{text!r} is not a duration like 90s, 15m, 24h or 7d") from None
