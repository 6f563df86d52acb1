"""``driftscope detect-series`` as a user runs it: every time axis, rows echoed byte for byte,
and bad input answered with the line and column at fault (exit 2), never a traceback."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from controller.series_csv import SeriesInputError, read_series, render


def _run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "controller", "detect-series", *args],
        capture_output=True, text=True, timeout=120, check=False, input=stdin,
    )  # fmt: skip


def _write(tmp_path: Path, text: str, name: str = "series.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode())
    return path


def _shifted(n: int = 600, at: int = 400, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    values = rng.normal(50.0, 1.0, n)
    values[at:] += 8.0
    return values


@pytest.mark.parametrize(
    ("stamp", "step"),
    [
        (lambda i: f"{1_700_000_000 + 60 * i}", 60.0),  # epoch seconds
        (lambda i: f"{(1_700_000_000 + 60 * i) * 1000}", 60.0),  # milliseconds
        (lambda i: f"{(1_700_000_000 + 60 * i) * 1_000_000}", 60.0),  # microseconds
        (lambda i: f"{(1_700_000_000 + 60 * i) * 1_000_000_000}", 60.0),  # nanoseconds
        (lambda i: (dt.datetime(2024, 1, 1) + dt.timedelta(minutes=i)).isoformat() + "Z", 60.0),
        (lambda i: (dt.datetime(2024, 1, 1) + dt.timedelta(minutes=i)).strftime("%Y-%m-%d %H:%M:%S.%f"), 60.0),
        (lambda i: (dt.datetime(1, 1, 1) + dt.timedelta(days=i)).date().isoformat(), 86_400.0),  # from year 1
        (lambda i: (dt.datetime(9000, 1, 1) + dt.timedelta(hours=i)).isoformat() + "+02:00", 3_600.0),
    ],
)
def test_every_time_axis_reads_and_finds_the_shift(stamp: object, step: float) -> None:
    values = _shifted()
    text = "time,value\n" + "".join(f"{stamp(i)},{v:.4f}\n" for i, v in enumerate(values))  # type: ignore[operator]
    series = read_series(None, text=text)
    assert series.times_s is not None
    assert np.allclose(np.diff(series.times_s), step)
    from detectors.single import detect_series

    result = detect_series(series.times_s, series.values)
    onsets = np.flatnonzero(result.alert & ~np.concatenate([[False], result.alert[:-1]]))
    assert onsets.tolist() and abs(int(onsets[0]) - 400) <= 3


def test_calendar_months_before_1677_and_year_month_stamps() -> None:
    months = [f"{1500 + m // 12:04d}-{m % 12 + 1:02d}" for m in range(60)]
    text = "month,count\n" + "".join(f"{m},{i % 7}\n" for i, m in enumerate(months))
    series = read_series(None, text=text)
    from detectors.single import detect_series

    result = detect_series(series.times_s, series.values)
    assert result.axis == "month" and len(result.score) == 60


def test_output_repeats_each_input_line_exactly_and_in_order(tmp_path: Path) -> None:
    values = _shifted(300, 200)
    stamps = [f"2024-03-0{1 + i // 100}T{(i % 100) // 60:02d}:{i % 60:02d}:00.000+00:00" for i in range(300)]
    order = np.random.default_rng(3).permutation(300)  # unsorted input, with odd spacing in the text
    lines = [f"{stamps[i]}, {values[i]:.6f}" for i in order]
    src = _write(tmp_path, "ts, v\r\n" + "\r\n".join(lines) + "\r\n")
    out = tmp_path / "out.csv"
    run = _run("--input", str(src), "--output", str(out))
    assert run.returncode == 0, run.stderr
    written = out.read_bytes().decode().split("\r\n")
    assert written[0] == "ts, v,score,alert"
    assert [line.rsplit(",", 2)[0] for line in written[1:-1]] == lines
    assert written[-1] == ""


def test_one_column_is_a_series_in_row_order_and_stdin_works() -> None:
    values = _shifted(500, 250)
    run = _run("--input", "-", stdin="latency_ms\n" + "\n".join(f"{v:.3f}" for v in values) + "\n")
    assert run.returncode == 0, run.stderr
    rows = run.stdout.splitlines()
    assert rows[0] == "latency_ms,score,alert" and len(rows) == 501
    alerts = np.array([int(r.rsplit(",", 1)[1]) for r in rows[1:]])
    assert alerts[:240].sum() == 0 and alerts[250:260].any()


def test_render_keeps_the_delimiter_and_appends_score_and_alert() -> None:
    series = read_series(None, text="t;v\n1;5\n2;6\n3;7\n")
    text = render(series, np.array([0.0, 0.25, 0.5]), np.array([False, False, True]))
    assert text == "t;v;score;alert\n1;5;0.000000;0\n2;6;0.250000;0\n3;7;0.500000;1\n"


def test_gaps_in_values_are_missing_points_not_errors() -> None:
    series = read_series(None, text="t,v\n1,1\n2,\n3,NaN\n4,null\n5,2\n")
    assert np.isnan(series.values).sum() == 3


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty file"),
        ("timestamp,value\n", "0 data rows"),
        ("timestamp,value\n1,5\n", "1 data row after the header"),
        ("t,v\n1,1\n2,x\n3,2\n", "line 3: value 'x' in column 'v' is not a number"),
        ("t,v\n1,1\n2,inf\n3,2\n", "line 3: value 'inf' in column 'v' is not finite"),
        ("t,v\n1,\n2,nan\n3,\n", "column 'v' has no numeric value"),
        ("t,v\n2024-01-01T00:00:00,1\n1704067260,2\n2024-01-01T00:02:00,3\n", "line 3: timestamp '1704067260'"),
        ("t,v\n2024-01-01,1\n01/02/2024,2\n2024-01-03,3\n", "line 3: timestamp '01/02/2024'"),
        ("t,v\n1,1\n,2\n3,3\n", "line 3: empty timestamp"),
        ("t,v\n1,1\n2\n3,3\n", "line 3 has 1 field(s)"),
        ("a,b\n1,2\n2,3\n3,4\n", "no value column 'latency'"),
    ],
)
def test_bad_input_names_line_and_column(text: str, message: str) -> None:
    with pytest.raises(SeriesInputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_series(None, text=text, value_column="latency" if "latency" in message else None)


def test_the_cli_exits_2_with_the_message_and_no_traceback(tmp_path: Path) -> None:
    bad = _write(tmp_path, "t,v\n1,1\n2,oops\n3,2\n")
    run = _run("--input", str(bad))
    assert run.returncode == 2
    assert "line 3: value 'oops' in column 'v' is not a number" in run.stderr
    assert "Traceback" not in run.stderr
    missing = _run("--input", str(tmp_path / "nope.csv"))
    assert missing.returncode == 2 and "no such file" in missing.stderr
    binary = _write(tmp_path, "t,v\n1,1\n", name="b.csv")
    binary.write_bytes(b"t,v\n1,\xff\xfe\n2,3\n3,4\n")
    undecodable = _run("--input", str(binary))
    assert undecodable.returncode == 2 and "line 2 is not UTF-8" in undecodable.stderr


def test_an_oversized_file_is_refused_before_it_is_read(tmp_path: Path) -> None:
    src = _write(tmp_path, "t,v\n" + "".join(f"{i},{i}\n" for i in range(1000)))
    run = _run("--input", str(src), "--max-bytes", "1000")
    assert run.returncode == 2 and "raise --max-bytes" in run.stderr


def test_modes_and_causal_flag_reach_the_detectors(tmp_path: Path) -> None:
    values = _shifted(800, 500)
    values[200] += 30.0  # a spike before the shift
    src = _write(tmp_path, "t,v\n" + "".join(f"{60 * i},{v}\n" for i, v in enumerate(values)))
    onsets = {}
    for args in (("--mode", "anomaly"), ("--mode", "changepoint"), ("--mode", "auto", "--causal")):
        run = _run("--input", str(src), *args)
        assert run.returncode == 0, run.stderr
        alert = np.array([int(r.rsplit(",", 1)[1]) for r in run.stdout.splitlines()[1:]], dtype=bool)
        onsets[args] = np.flatnonzero(alert & ~np.concatenate([[False], alert[:-1]])).tolist()
    assert onsets[("--mode", "anomaly")][0] == 200  # the spike is an excursion ...
    assert all(o >= 495 for o in onsets[("--mode", "changepoint")])  # ... not a regime change
    assert any(500 <= o <= 510 for o in onsets[("--mode", "auto", "--causal")])
