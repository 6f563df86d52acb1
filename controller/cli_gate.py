"""``driftscope gate``: judge a canary or a deploy against its baseline; the exit status is the verdict.

Exit status: 0 pass (and marginal unless ``--fail-on marginal``), 1 fail, 2 marginal with
``--fail-on marginal``, 3 insufficient data, 4 usage error (bad arguments, unreadable
store or contract). Click's own usage errors exit 2, which would read as "marginal", so
this command maps every usage error to 4.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Literal, cast

import click
import duckdb
from pydantic import ValidationError

from controller.cli_support import common_options, settings_for
from controller.gate import EXIT_CODES, GateError, GateRequest, GateResult, exit_code, parse_side, render, run_gate
from detectors.judge import ContractError
from store.connection import connect_readonly
from store.errors import StoreError

__all__ = ["gate"]

USAGE_EXIT = EXIT_CODES["usage"]


class GateUsageError(click.ClickException):
    """A usage error of ``driftscope gate``: printed as 'Error: ...', exit status 4."""

    exit_code = USAGE_EXIT


class UsageExit4Command(click.Command):
    """A click command whose usage errors (bad options, missing values) exit 4 instead of 2, which would read
    as the gate's 'marginal' (shared by ``gate`` and ``plan``)."""

    def make_context(
        self, info_name: str | None, args: list[str], parent: click.Context | None = None, **extra: Any
    ) -> click.Context:
        try:
            return super().make_context(info_name, args, parent, **extra)
        except click.UsageError as exc:
            exc.exit_code = USAGE_EXIT  # type: ignore[misc]  # click reads it from the instance
            raise

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:
            exc.exit_code = USAGE_EXIT  # type: ignore[misc]  # click reads it from the instance
            raise


def _remote(api: str, token: str | None, request: GateRequest, timeout_s: float) -> GateResult:
    """POST the request to a running ``driftscope serve`` (``{api}/api/gate``) and parse its answer."""
    url = api.rstrip("/") + "/api/gate"
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}
    req = urllib.request.Request(url, data=request.model_dump_json().encode(), headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:
            body = resp.read()
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")[:500]
        raise GateUsageError(f"{url} answered {exc.code}: {detail}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise GateUsageError(f"cannot reach {url}: {exc}") from None
    try:
        return GateResult.model_validate_json(body)
    except ValidationError as exc:
        raise GateUsageError(f"{url} did not answer a gate result: {exc.errors()[0]['msg']}") from None


def _connect(path: str) -> duckdb.DuckDBPyConnection:
    if not Path(path).is_file():
        raise GateUsageError(f"store {path} does not exist (run `driftscope serve`, `import` or `simulate` first)")
    try:
        return connect_readonly(path)
    except StoreError as exc:
        raise GateUsageError(str(exc)) from None


def _local(store: str | Path, request: GateRequest, contract_path: str | None) -> GateResult:
    con = _connect(str(store))
    try:
        return run_gate(con, request)
    except ContractError as exc:
        raise GateUsageError(str(exc).replace("contract contract", f"contract {contract_path}")) from None
    except GateError as exc:
        raise GateUsageError(str(exc)) from None
    finally:
        con.close()


@click.command("gate", cls=UsageExit4Command)
@common_options
@click.option("--baseline", required=True, help="Baseline side: version=V and/or window=START/END (ISO-8601, UTC).")
@click.option("--candidate", required=True, help="Candidate side, same syntax as --baseline.")
@click.option("--service", help="The service under change (required with version=...; default: the contract's).")
@click.option("--contract", "contract_path", type=click.Path(dir_okay=False), help="Feature contract (YAML).")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "markdown"]), default="table", show_default=True)
@click.option(
    "--fail-on",
    type=click.Choice(["marginal", "fail"]),
    default="fail",
    show_default=True,
    help="Which verdict fails the pipeline: 'marginal' makes a marginal verdict exit 2.",
)
@click.option(
    "--alpha",
    type=click.FloatRange(0, 0.5, min_open=True, max_open=True),
    default=0.01,
    show_default=True,
    help="Family-wise significance level (Holm) of the per-metric tests: higher finds more, fails falsely more.",
)
@click.option("--output", type=click.Path(dir_okay=False), help="Also write the rendered result to this file.")
@click.option("--api", help="Ask a running `driftscope serve` (its --http URL) instead of opening the store.")
@click.option("--api-token", envvar="DRIFTSCOPE_API_TOKEN", help="Bearer token for --api [env DRIFTSCOPE_API_TOKEN].")
@click.option("--timeout", "timeout_s", type=float, default=300.0, show_default=True, help="Seconds to wait for --api.")
def gate(  # noqa: PLR0917  click passes every option as an argument
    config_path: str | None,
    store_path: str | None,
    baseline: str,
    candidate: str,
    service: str | None,
    contract_path: str | None,
    fmt: str,
    fail_on: str,
    alpha: float,
    output: str | None,
    api: str | None,
    api_token: str | None,
    timeout_s: float,
) -> None:
    """Judge a candidate (canary, or after a deploy) against its baseline and exit with the verdict.

    \b
    Sides: version=V, window=START/END, or both comma-separated, e.g.
      --baseline version=1.4.0 --candidate version=1.5.0 --service checkout
      --baseline window=2026-03-02T10:00/2026-03-02T11:00 --candidate window=2026-03-02T11:00/2026-03-02T12:00
    Exit status: 0 pass, 1 fail, 2 marginal (with --fail-on marginal), 3 insufficient data, 4 usage error.
    With --api URL the judging runs in `driftscope serve` (POST /api/gate), which holds the store.
    """
    try:
        contract_text = Path(contract_path).read_text(encoding="utf-8") if contract_path else None
    except OSError as exc:
        raise GateUsageError(f"cannot read contract {contract_path}: {exc.strerror}") from None
    try:
        request = GateRequest(
            baseline=parse_side(baseline, "--baseline"),
            candidate=parse_side(candidate, "--candidate"),
            service=service,
            contract=contract_text,
            alpha=alpha,
        )
    except (GateError, ValidationError) as exc:
        raise GateUsageError(str(exc)) from None
    if api:
        result = _remote(api, api_token, request, timeout_s)
    else:
        result = _local(settings_for(config_path, store_path).store, request, contract_path)
    text = render(result, cast(Literal["table", "json", "markdown"], fmt))
    if output:
        Path(output).write_text(text, encoding="utf-8")
    click.echo(text, nl=False)
    raise SystemExit(exit_code(result, cast(Literal["marginal", "fail"], fail_on)))
