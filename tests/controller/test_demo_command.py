"""`driftscope demo` end to end, shortened: history, the service, OTLP streaming, its detect job, report."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import duckdb


def test_a_short_demo_finds_the_payment_regression_and_writes_the_report(tmp_path: Path) -> None:
    store, out = tmp_path / "demo.duckdb", tmp_path / "reports"
    cmd = [sys.executable, "-m", "controller", "demo", "--history-days", "0.25", "--rate", "3",
           "--store", str(store), "--out", str(out)]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=400, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "streamed over OTLP" in done.stdout and "report (html)" in done.stdout
    html = next(out.glob("drift-report-*/report.html"))
    assert "Charge" in html.read_text(encoding="utf-8")
    assert re.search(r"history \d+ s, stream \d+ s, detect \d+ s, report \d+ s", done.stdout)  # phase times
    assert "▕" not in done.stdout + done.stderr  # no DuckDB progress bar in the output
    metric_lines = [line for line in done.stdout.splitlines() if " histogram_p" in line or " value " in line]
    assert all(re.search(r"\d (ms|B|s)\b", line) for line in metric_lines), metric_lines  # metric effects in units
    links = re.findall(r'href="([^"#]+)"', html.read_text(encoding="utf-8"))
    assert links and all((html.parent / link).resolve().is_file() for link in links)  # every link resolves
    con = duckdb.connect(str(store), read_only=True)
    try:
        found = con.execute(
            "SELECT kind, effect, evidence FROM findings WHERE service = 'payment' AND operation = 'Charge' "
            "AND kind LIKE 'latency_%'"
        ).fetchall()
        otlp = con.execute("SELECT count(*) FROM spans WHERE start_time >= TIMESTAMP '2026-03-04 02:30:00'").fetchone()
        detect_runs = con.execute("SELECT count(*) FROM job_runs WHERE job = 'detect' AND outcome = 'ok'").fetchone()
        investigations = con.execute(
            "SELECT i.status, i.policy, f.service FROM investigations i JOIN findings f ON f.id = i.finding_id"
        ).fetchall()
    finally:
        con.close()
    assert found, "the service's detect job missed payment:Charge"
    assert any(effect is not None and effect > 0.3 for _, effect, _ in found)  # the deploy made Charge 60 % slower
    assert all(json.loads(ev)["sql"] for _, _, ev in found)
    assert otlp is not None and otlp[0] > 1000  # the incident window arrived over OTLP
    assert detect_runs is not None and detect_runs[0] >= 1
    assert investigations and all(status != "running" for status, _, _ in investigations)
    assert {policy for _, policy, _ in investigations} == {"playbook"}  # no API key in tests
    assert "investigation" in done.stdout
