"""``driftscope detect-series``: any univariate series from a CSV file through the detectors."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from controller.series_csv import MAX_BYTES_DEFAULT, SeriesInputError, read_series, render


class BadSeries(click.ClickException):
    """Unreadable input: the message names the line and column; exit status 2."""

    exit_code = 2


@click.command(name="detect-series")
@click.option("--input", "input_path", required=True, help="CSV file (header row, then rows), or - for stdin.")
@click.option("--output", "output_path", type=click.Path(dir_okay=False, path_type=Path), help="CSV out [stdout].")
@click.option(
    "--mode",
    type=click.Choice(["auto", "anomaly", "changepoint"]),
    default="auto",
    show_default=True,
    help="anomaly: excursions; changepoint: regime changes; auto: both.",
)
@click.option(
    "--causal", is_flag=True, help="Never look ahead (a stream's view); default: the whole file informs every row."
)
@click.option("--detector", default=None, help="Run one of the service's detectors instead (e.g. level_shift).")
@click.option("--time-column", default=None, help="Time column name or 1-based number, or 'none' [first column].")
@click.option("--value-column", default=None, help="Value column name or 1-based number [second column].")
@click.option(
    "--time-unit",
    type=click.Choice(["auto", "s", "ms", "us", "ns"]),
    default="auto",
    show_default=True,
    help="Unit of numeric timestamps (auto: by magnitude).",
)
@click.option(
    "--max-bytes", default=MAX_BYTES_DEFAULT, show_default=True, type=click.IntRange(1), help="Largest input."
)
def detect_series_cmd(  # noqa: PLR0917 (click passes every option as an argument)
    input_path: str,
    output_path: Path | None,
    mode: str,
    causal: bool,
    detector: str | None,
    time_column: str | None,
    value_column: str | None,
    time_unit: str,
    max_bytes: int,
) -> None:
    """Score every row of a series and mark alert onsets: writes the input rows plus score,alert.

    \b
    Example:
      driftscope detect-series --input latency.csv --output scored.csv
      driftscope detect-series --input gdp.csv --mode changepoint
    Timestamps: epoch s/ms/us/ns or ISO-8601 (year 1-9999), unsorted and duplicated allowed;
    a one-column file is a series in row order. score is graded evidence in [0, 1) (0.5 = the
    alert level, p < 1e-6); alert is 1 from an event's onset for at most 10 rows.
    """
    from detectors.single import detect_series

    started = time.perf_counter()
    try:
        if input_path == "-":
            series = read_series(None, text=sys.stdin.read(), time_column=time_column, value_column=value_column,
                                 time_unit=time_unit)  # fmt: skip
        else:
            path = Path(input_path)
            if not path.is_file():
                raise SeriesInputError(f"{input_path}: no such file")
            series = read_series(path, time_column=time_column, value_column=value_column, time_unit=time_unit,
                                 max_bytes=max_bytes)  # fmt: skip
        result = detect_series(series.times_s, series.values, mode, causal, detector)  # type: ignore[arg-type]
    except (SeriesInputError, ValueError) as exc:
        raise BadSeries(str(exc)) from None
    text = render(series, result.score, result.alert)
    if output_path is None:
        click.echo(text, nl=False)
        return
    output_path.write_text(text, newline="")
    period = f", period {result.period} steps" if result.period else ""
    click.echo(
        f"{len(series.lines)} rows, step {result.step_s:g} s ({result.axis}){period}, {result.method}: "
        f"{result.events} alert onsets -> {output_path} ({time.perf_counter() - started:.2f} s)",
        err=True,
    )
