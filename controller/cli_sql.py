"""``driftscope sql --api URL``: the query runs in the service (``POST /api/sql``), rows come back as JSON."""

from __future__ import annotations

import contextlib
import urllib.error
import urllib.request

import click
import orjson
import pyarrow as pa

TIMEOUT_S = 60.0


def query_api(base_url: str, query: str, token: str) -> pa.Table:
    """The rows of ``query`` run by the service at ``base_url``; a clean CLI error for any refusal."""
    url = base_url.rstrip("/") + "/api/sql"
    if not url.startswith(("http://", "https://")):
        raise click.ClickException(f"--api must be an http(s) URL like http://127.0.0.1:8080 (got {base_url!r})")
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=orjson.dumps({"sql": query}), headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            body = orjson.loads(response.read())
    except urllib.error.HTTPError as exc:
        detail = exc.read()[:500].decode("utf-8", "replace")
        with contextlib.suppress(orjson.JSONDecodeError, AttributeError):
            detail = str(orjson.loads(detail).get("error", detail))
        hint = " (pass --token or set DRIFTSCOPE_AUTH__API_TOKEN)" if exc.code == 401 else ""
        raise click.ClickException(f"{url} answered {exc.code}: {detail}{hint}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise click.ClickException(f"cannot reach {url}: {getattr(exc, 'reason', exc)}") from None
    if body.get("truncated"):
        click.echo(f"(first {body['rows_max']:,d} rows: the service caps an answer there)", err=True)
    columns = body["columns"]
    return _table(columns, body["rows"])


def _table(columns: list[str], rows: list[list[object]]) -> pa.Table:
    """Rows as Arrow; a column whose values do not share one type becomes text."""
    arrays = []
    for i in range(len(columns)):
        values = [r[i] for r in rows]
        try:
            arrays.append(pa.array(values))
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            arrays.append(pa.array([None if v is None else str(v) for v in values], pa.string()))
    return pa.table(arrays, names=_unique(columns))


def _unique(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for n in names:
        seen[n] = seen.get(n, 0) + 1
        out.append(n if seen[n] == 1 else f"{n}_{seen[n]}")
    return out
