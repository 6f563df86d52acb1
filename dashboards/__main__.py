"""``python -m dashboards``: regenerate the Grafana JSON and provisioning files (or check them)."""

from __future__ import annotations

from pathlib import Path

import click

from dashboards.generate import PACKAGE_DIR, PROMETHEUS_URL, stale, write_all


@click.command(name="dashboards")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=PACKAGE_DIR,
    show_default=True,
    help="Directory to write generated/*.json and provisioning/*.yaml into.",
)
@click.option("--prometheus-url", default=PROMETHEUS_URL, show_default=True, help="URL Grafana uses for Prometheus.")
@click.option("--check", is_flag=True, help="Write nothing; fail if the files under --out are stale.")
def main(out: Path, prometheus_url: str, check: bool) -> None:
    """Generate driftscope's Grafana dashboards (JSON) and Grafana provisioning files."""
    if check:
        bad = stale(out, prometheus_url)
        if bad:
            raise click.ClickException(f"stale generated files (run python -m dashboards): {', '.join(bad)}")
        click.echo("dashboards up to date")
        return
    for path in write_all(out, prometheus_url):
        click.echo(str(path))


if __name__ == "__main__":
    main()
