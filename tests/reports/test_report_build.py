"""The report model, its three forms and its index, on real simulated stores."""

from __future__ import annotations

import datetime as dt
import re
import shutil
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path

import duckdb
import numpy as np
import orjson
import polars as pl
from click.testing import CliRunner

from analysis import Window, signals
from controller.cli_report import report as report_command
from detectors.base import SignalKey
from detectors.findings import Finding
from reports import build_report, generate_report, get_report, list_reports, write_report
from store import investigations as store_investigations
from store.connection import Store
from store.findings import severity_rank, write_findings

Opener = Callable[[Path], duckdb.DuckDBPyConnection]
QUIET = re.compile(r"^No drift: 0 findings across (\d+) signals in the last 24 h\.$")


def _naive_utc(ns: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ns / 1e9, dt.UTC).replace(tzinfo=None)


def _copy(src: Path, directory: Path) -> Path:
    target = directory / src.name
    shutil.copyfile(src, target)
    return target


def test_incident_report_ranks_findings_and_names_the_deploy(incident_store: Path, open_store: Opener) -> None:
    con = open_store(incident_store)
    model = build_report(con, now_ns=0)
    in_db = con.execute("SELECT count(*), max(epoch_ns(window_end)) FROM findings").fetchone()
    assert in_db is not None and len(model.findings) == in_db[0] > 0
    assert model.window_end_ns == in_db[1]  # the data ends where detection's window ended
    ranks = [(severity_rank(f.severity), -f.score) for f in model.findings]
    assert ranks == sorted(ranks)
    assert sum(model.by_severity.values()) == len(model.findings)
    assert not model.quiet
    # The deploy of checkout 2.0.0 (combo-deploy-errors) is the deploy in the window and named in the headline.
    assert [(d.service, d.version, d.previous_version) for d in model.deploys] == [("checkout", "2.0.0", "1.9.0")]
    assert "after deploy checkout 2.0.0" in model.headline
    assert re.search(r"since \d\d:\d\d UTC", model.headline)
    top = model.findings[0]
    assert top.severity == "critical" and top.detector == "invariant_error_free"
    assert f"{len(model.findings)} findings" in model.headline


def test_each_affected_signal_gets_one_plot_from_analysis(incident_store: Path, open_store: Opener) -> None:
    con = open_store(incident_store)
    model = build_report(con, now_ns=0)
    perf = {f.signal_key for f in model.findings if f.category == "performance"}
    assert len(model.plots) == min(12, len(perf)) and model.plots_omitted == len(perf) - len(model.plots)
    assert len({p.label + str(p.attributes) for p in model.plots}) == len(model.plots)
    for plot in model.plots:
        s = plot.series
        assert s is not None and np.isfinite(s.values).sum() > 60
        assert s.times_ns[-1] < model.window_end_ns and s.times_ns[0] >= model.window_start_ns
        band = np.isfinite(s.lower) & np.isfinite(s.upper)
        assert band.sum() > 60 and np.all(s.lower[band] <= s.upper[band])
        assert plot.change_points_ns, plot.label
        assert {d.version for d in plot.deploys} == {"2.0.0"}
    # The plotted points are analysis' own, unchanged.
    plot = model.plots[0]
    assert plot.series is not None
    frame = signals(
        con,
        plot.kind,  # type: ignore[arg-type]
        Window(_naive_utc(model.window_start_ns), _naive_utc(model.window_end_ns)),
        service=plot.service,
        operation=plot.operation,
        metric=plot.metric,
    ).filter(pl.col("attributes").is_null() if plot.attributes is None else pl.col("attributes") == plot.attributes)
    expected = dict(zip(frame["time"].dt.epoch("ns").to_list(), frame["value"].to_list(), strict=True))
    got = dict(zip(plot.series.times_ns.tolist(), plot.series.values.tolist(), strict=True))
    assert expected and all(got[t] == v for t, v in expected.items())  # fmt: skip


def test_plot_cap_says_how_many_were_left_out(incident_store: Path, open_store: Opener, tmp_path: Path) -> None:
    con = open_store(incident_store)
    model = build_report(con, now_ns=0, plots_max=2)
    affected = len({f.signal_key for f in model.findings if f.category == "performance"})
    assert len(model.plots) == 2 and model.plots_omitted == affected - 2 > 0
    paths = write_report(model, tmp_path, ["html", "markdown"])
    html = paths["html"].read_text()
    assert html.count('<figure class="plot"') == 2 and html.count("<svg") == 2
    assert f"{affected - 2} more affected signals not plotted" in html
    assert f"{affected - 2} more affected signals are not plotted" in paths["markdown"].read_text()


def test_invariant_and_log_template_sections_show_counterexamples(
    incident_store: Path, open_store: Opener, tmp_path: Path
) -> None:
    con = open_store(incident_store)
    model = build_report(con, now_ns=0)
    [violation] = model.invariant_violations
    [template] = model.log_template_changes
    traces = violation.counterexamples.trace_ids
    assert len(traces) == 3
    real = con.execute(
        "SELECT count(DISTINCT trace_id) FROM spans WHERE trace_id IN (SELECT unnest(?))", [list(traces)]
    )
    assert real.fetchone() == (3,)  # counterexamples are traces of the store
    paths = write_report(model, tmp_path)
    html, md = paths["html"].read_text(), paths["markdown"].read_text()
    for text in (html, md):
        assert "Invariant violations" in text and "Log template changes" in text
        assert all(t in text for t in traces)
    assert "SELECT trace_id FROM spans WHERE status_code = &#39;ERROR&#39;" in html
    assert "```sql\nSELECT trace_id FROM spans WHERE status_code = 'ERROR'\n```" in md
    line = template.counterexamples.lines[0]
    assert line and line.split()[0] in html


def test_quiet_store_says_so_in_one_line(quiet_store: Path, open_store: Opener, tmp_path: Path) -> None:
    con = open_store(quiet_store)
    model = build_report(con, now_ns=0)
    match = QUIET.match(model.headline)
    assert match and int(match.group(1)) == model.n_signals > 10
    assert model.quiet and model.findings == () and model.plots == ()
    paths = write_report(model, tmp_path)
    md = paths["markdown"].read_text()
    assert model.headline in md and "## Findings" not in md
    html = paths["html"].read_text()
    assert 'class="headline quiet"' in html and 'id="findings"' not in html and "<svg" not in html
    doc = orjson.loads(paths["json"].read_bytes())
    assert doc["quiet"] is True and doc["findings"] == [] and doc["headline"] == model.headline


def test_empty_store_gives_a_quiet_report_and_an_index(tmp_path: Path) -> None:
    store = Store(tmp_path / "empty.duckdb")
    try:
        con = store.cursor()
        end_ns = 1_772_000_000 * 10**9
        model, paths = generate_report(con, tmp_path / "out", now_ns=end_ns)
        assert model.window_end_ns == end_ns  # no data: the window ends now
        assert model.headline == "No drift: 0 findings across 0 signals in the last 24 h."
        assert sorted(paths) == ["html", "json", "markdown"] and all(p.stat().st_size > 0 for p in paths.values())
        [row] = list_reports(con)
        assert row["id"] == model.id == paths["html"].parent.name and row["n_findings"] == 0
    finally:
        store.close()


def test_index_lists_newest_first_and_replaces_a_rewritten_report(
    incident_store: Path, open_store: Opener, tmp_path: Path
) -> None:
    con = open_store(_copy(incident_store, tmp_path))
    assert list_reports(con) == [] and get_report(con, "drift-report-x") is None
    out = tmp_path / "out"
    first, _ = generate_report(con, out, window_s=6 * 3600, now_ns=1)
    again, _ = generate_report(con, out, window_s=6 * 3600, now_ns=2)
    older, _ = generate_report(con, out, window_end_ns=first.window_end_ns - 3600 * 10**9, window_s=3600, now_ns=3)
    assert again.id == first.id != older.id
    rows = list_reports(con)
    assert [r["id"] for r in rows] == [first.id, older.id]
    got = get_report(con, first.id)
    assert got is not None and got["n_findings"] == len(first.findings) and got["headline"] == first.headline
    assert got["by_severity"] == first.by_severity
    assert sorted(got["files"]) == ["html", "json", "markdown"] and all(
        Path(p).is_file() for p in got["files"].values()
    )
    assert got["created_at"] == "1970-01-01T00:00:00Z"  # the second write replaced the first row (ns 2 -> 0 s)
    assert get_report(con, "drift-report-none") is None


def test_json_form_follows_its_schema(incident_store: Path, open_store: Opener, tmp_path: Path) -> None:
    con = open_store(incident_store)
    model = build_report(con, window_s=6 * 3600, now_ns=0)
    doc = orjson.loads(write_report(model, tmp_path, ["json"])["json"].read_bytes())
    assert list(doc) == [
        "schema_version", "id", "created_at", "window", "headline", "quiet", "n_signals", "by_severity",
        "findings", "plots", "plots_omitted", "deploys", "investigations_available",
    ]  # fmt: skip
    assert doc["schema_version"] == 1 and doc["window"]["end_ns"] - doc["window"]["start_ns"] == 6 * 3600 * 10**9
    assert doc["window"]["hours"] == 6.0
    assert [f["id"] for f in doc["findings"]] == [f.id for f in model.findings]
    f0 = doc["findings"][0]
    assert {"effect_text", "severity", "category", "counterexamples", "investigations", "change_time"} <= set(f0)
    assert all(p["points"] > 0 and p["change_points_ns"] for p in doc["plots"])
    assert doc["deploys"][0]["version"] == "2.0.0" and doc["deploys"][0]["time"].endswith("Z")


def test_investigation_links_appear_once_the_table_has_rows(
    incident_store: Path, open_store: Opener, tmp_path: Path
) -> None:
    con = open_store(_copy(incident_store, tmp_path))
    assert build_report(con, now_ns=0).investigations_available is False
    target = con.execute("SELECT id FROM findings ORDER BY id LIMIT 1").fetchone()
    assert target is not None
    store_investigations.start(con, {
        "id": "inv-1", "finding_id": target[0], "fingerprint": "fp", "trigger": "finding", "policy": "playbook",
        "title": "t", "window_start": 0, "window_end": 1, "baseline_start": 0, "snapshot_path": None, "started_at": 0,
    })  # fmt: skip
    model = build_report(con, now_ns=0)
    linked = [f for f in model.findings if f.investigations]
    assert [f.id for f in linked] == [target[0]] and model.investigations_available
    paths = write_report(model, tmp_path / "out", ["html", "markdown"])
    assert 'class="investigation">t</span>' in paths["html"].read_text()  # running: no file to link yet
    assert "| t |" in paths["markdown"].read_text()
    # Finished, its report in a folder of its own elsewhere (the demo's layout): the links resolve.
    inv_md = tmp_path / "elsewhere" / "investigations" / "inv-1" / "report.md"
    inv_md.parent.mkdir(parents=True)
    inv_md.write_text("# investigation\n")
    store_investigations.finish(con, "inv-1", {
        "status": "complete", "report": {}, "report_path": str(inv_md), "claims_total": 0, "claims_verified": 0,
        "steps": 0, "tokens": 0, "cost_usd": 0.0, "wall_s": 0.0, "finished_at": 1,
    })  # fmt: skip
    paths = write_report(build_report(con, now_ns=0), tmp_path / "reports", ["html", "markdown"])
    html_links = _links_html(paths["html"].read_text())
    md_links = re.findall(r"\]\(([^)]+)\)", paths["markdown"].read_text())
    assert html_links and md_links
    for href in html_links + md_links:  # follow every link
        assert (paths["html"].parent / href).resolve().is_file(), href
    assert any((paths["html"].parent / h).resolve() == inv_md.resolve() for h in html_links)


def _links_html(text: str) -> list[str]:
    """Every href of a page that is not an in-page anchor."""
    found: list[str] = []

    class Links(HTMLParser):
        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            found.extend(v for k, v in attrs if k == "href" and v and not v.startswith("#"))

    Links().feed(text)
    return found


def test_hostile_telemetry_strings_are_text_in_every_form(tmp_path: Path) -> None:
    hostile = "<script>alert(1)</script>"
    store = Store(tmp_path / "hostile.duckdb")
    try:
        con = store.cursor()
        t0 = 1_772_000_000 * 10**9
        con.execute(
            "INSERT INTO deploy_markers VALUES (?, '1', make_timestamp_ns(?)), (?, ?, make_timestamp_ns(?))",
            [hostile, t0 - 7200 * 10**9, hostile, "2<img src=x onerror=alert(2)>", t0 - 600 * 10**9],
        )
        line = "x\n| a | b |\n```\n<img src=x onerror=alert(3)> [click](javascript:alert(4)) **bold**"
        findings = [
            Finding(
                detector=d, signal=SignalKey(kind, hostile, "op</td><td>", None, '{"k": "<b>v</b>"}'),
                window_start_ns=t0 - 3600 * 10**9, window_end_ns=t0, change_ns=t0 - 600 * 10**9,
                severity="warning", score=0.5, effect=0.4, effect_text=f"p99 +40 % {hostile}", before=1.0, after=1.4,
                p_value=1e-6, q_value=1e-5, evidence={"trace_ids": [hostile], "examples": [line], "sql": line},
            )
            for d, kind in (("level_shift", "latency_p99"), ("invariant_x", "error_ratio"), ("log_template_new", "x"))
        ]  # fmt: skip
        write_findings(con, findings, now_ns=t0, resolve_after_s=1800)
        _, paths = generate_report(con, tmp_path / "out", now_ns=t0)
    finally:
        store.close()
    html = paths["html"].read_text()
    assert "<script" not in html and "<img" not in html and "<b>v</b>" not in html and '</td><td>"' not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "&lt;img src=x onerror=alert(2)&gt;" in html
    md = paths["markdown"].read_text()
    prose = re.sub(r"^(`{4,})sql\n.*?^\1$", "", md, flags=re.M | re.S)  # code blocks are literal text anyway
    assert re.search(r"(?<!\\)[<\]]", prose) is None  # every < and ] is backslash-escaped: no tags, no links
    assert "**bold**" not in prose and "**bold**" in md  # ... and no emphasis, except inside the code block
    assert "\\<script\\>alert(1)\\</script\\>" in md
    assert "| a | b |" not in prose  # a hostile line cannot add table rows or break out of its list item
    fences = re.findall(r"^(`{3,})sql$", md, flags=re.M)
    assert fences and all(len(f) >= 4 for f in fences)  # longer than the ``` inside the hostile SQL
    assert orjson.loads(paths["json"].read_bytes())["findings"][0]["service"] == hostile


def test_cli_writes_the_chosen_forms_and_rejects_bad_input(incident_store: Path, tmp_path: Path) -> None:
    store = _copy(incident_store, tmp_path)
    runner = CliRunner()
    out = tmp_path / "out"
    result = runner.invoke(
        report_command, ["--store", str(store), "--window", "6h", "--out", str(out), "--format", "markdown"]
    )
    assert result.exit_code == 0, result.output
    [written] = list(out.iterdir())
    assert [p.name for p in written.iterdir()] == ["report.md"]
    assert str(written / "report.md") in result.output and "after deploy checkout 2.0.0" in result.output
    bad = runner.invoke(report_command, ["--store", str(store), "--window", "6x", "--out", str(out)])
    assert bad.exit_code == 2 and "'6x' is not a duration" in bad.output
    bad_end = runner.invoke(report_command, ["--store", str(store), "--end", "yesterday", "--out", str(out)])
    assert bad_end.exit_code == 2 and "'yesterday' is not an ISO-8601 time" in bad_end.output
    ended = runner.invoke(
        report_command, ["--store", str(store), "--end", "2026-03-02T03:00Z", "--window", "1h", "--out", str(out)]
    )
    assert ended.exit_code == 0, ended.output
    assert (out / "drift-report-2026-03-02T0300Z" / "report.html").is_file()
