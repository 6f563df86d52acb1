"""One worked example per command, shown at the end of its ``--help`` (``controller.cli`` attaches them)."""

from __future__ import annotations

EXAMPLES: dict[str, str] = {
    "adversary mde": "driftscope adversary mde --workers 2",
    "adversary run": "driftscope adversary run --budget 50 --seed 1 --write-regressions tests/regressions",
    "adversary world": "driftscope adversary world 1002",
    "contract": "driftscope contract --store driftscope.duckdb --format json",
    "demo": "driftscope demo --history-days 7 --rate 3",
    "detect": "driftscope detect --window 1h --history 7d --format table",
    "detect-series": "driftscope detect-series --input cpu.csv --output scored.csv --mode auto",
    "findings": "driftscope --store driftscope.duckdb findings --open --format csv",
    "gate": "driftscope gate --baseline version=5.1.0 --candidate version=5.2.0 --service payment",
    "gym run": "driftscope gym run --scenario combo-deploy-errors --policy playbook",
    "gym whatif": "driftscope gym whatif --scenario combo-deploy-errors --patch rollback.json --format json",
    "import": "driftscope import --store traces.duckdb otel-export/*.jsonl",
    "invariants check": "driftscope invariants check --spec driftscope.spec.yaml --format json",
    "invariants extract": "driftscope invariants extract --out driftscope.spec.yaml",
    "investigate": "driftscope investigate 8ed4d28ecf2949945477ea8e --policy playbook --format markdown",
    "plan check": "driftscope plan check contract.yaml --repo . --junit junit.xml --format markdown",
    "plan check-design": "driftscope plan check-design contract.yaml",
    "plan draft": 'driftscope plan draft --feature "rate-limit checkout retries" > contract.yaml',
    "report": "driftscope report --window 24h --out driftscope-reports --format html",
    "retention": "driftscope retention --config driftscope.toml",
    "rollup": "driftscope rollup --store driftscope.duckdb",
    "scenarios": "driftscope scenarios",
    "serve": "DRIFTSCOPE_AUTH__API_TOKEN=s3cret driftscope serve --http 0.0.0.0:8080",
    "simulate": "driftscope simulate --scenario webshop-quiet --hours 2 --otlp http://127.0.0.1:4318",
    "sql": 'driftscope sql --api http://127.0.0.1:8080 "SELECT severity, count(*) FROM findings GROUP BY ALL"',
    "twin check": "driftscope twin check --twin world.toml --window 1h",
    "twin fit": "driftscope twin fit --window 24h --out world.toml",
    "whatif": "driftscope whatif --patch rollback.yaml --since 2h",
}
"""Command path (``"invariants check"``) -> a command line that runs it."""


def epilog(path: str) -> str | None:
    """The ``--help`` epilog of the command at ``path`` (click keeps ``\\b`` paragraphs as written)."""
    example = EXAMPLES.get(path)
    return None if example is None else f"\b\nExample:\n  {example}"
