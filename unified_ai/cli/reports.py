"""`unified-ai report`: a stored HTML report (evaluation, drift page) as a local file to open."""

import json
import os
import tempfile
from pathlib import Path

import click

from unified_ai.cli.app import Context, main, os_reason, run
from unified_ai.names import DRIFT_REPORT, EVALUATION_REPORT

#: Assets whose stored versions carry an HTML page.
REPORT_ASSETS = (EVALUATION_REPORT, DRIFT_REPORT)
#: Where pages go when no `--out` is given: one file per version, so re-running overwrites it
#: with the same bytes.
DEFAULT_FOLDER = "unified-ai-reports"


def _newest_batch_with_page(store, project: str) -> str:
    """The batch whose drift report with a page was stored last."""
    from unified_ai.io.store import LineageStoreError

    folder = store.asset_dir([project, DRIFT_REPORT, "partitions"])
    try:
        batches = [name for name, is_dir in store.entries(folder) if is_dir]
    except FileNotFoundError:
        batches = []
    newest: tuple[str, str] | None = None
    for batch in batches:
        path = [project, DRIFT_REPORT, "partitions", batch]
        version = store.current_version(path)
        if version is None:
            continue
        manifest = store.read_manifest(path, version)
        if any(name.endswith(".html") for name in manifest.files) and (
            newest is None or manifest.created_at > newest[0]
        ):
            newest = (manifest.created_at, batch)
    if newest is None:
        raise LineageStoreError(
            f"{project}/{DRIFT_REPORT}: no batch has a drift page yet (a page is rendered for "
            "drifted batches, and every Nth with monitoring.drift_page_every)"
        )
    return newest[1]


def write_page(target: Path, text: str, option: str = "--out") -> None:
    """Write `text` to `target`; one-line error naming the path and the reason when it fails.

    A regular file (or a new one) is written beside and renamed, so a failed write never leaves
    half a page in place of a whole one; a device, a pipe or a link is written in place.
    """
    where = f"{option} {target}" if option else str(target)
    data = text.encode("utf-8")
    try:
        if target.is_symlink() or (target.exists() and not target.is_file()):
            with target.open("wb") as handle:
                handle.write(data)
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(f".{target.name}.{os.getpid()}.partial")
        try:
            temporary.write_bytes(data)
            os.replace(temporary, target)
        finally:
            temporary.unlink(missing_ok=True)
    except OSError as exc:
        raise click.ClickException(f"{where}: cannot write the page: {os_reason(exc)}") from None


@main.command("report")
@click.argument("project")
@click.argument("asset", required=False, default=EVALUATION_REPORT)
@click.option("--version", "version", default=None, help="A stored version (default: current).")
@click.option(
    "--batch", default=None, help="For drift_report: the batch (default: newest with a page)."
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False),
    default=None,
    help="Where to write the page (default: a file in the system's temporary folder).",
)
@click.option("--open", "open_it", is_flag=True, help="Open the page in the web browser.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of the path.")
def report_cmd(
    project: str,
    asset: str,
    version: str | None,
    batch: str | None,
    out: str | None,
    open_it: bool,
    as_json: bool,
) -> None:
    """Write the HTML page of PROJECT's ASSET (evaluation_report or drift_report) to a file.

    Prints the file's path; with --open, opens it in the web browser.
    """

    def go():
        from unified_ai.ml.artifacts import Report

        if asset not in REPORT_ASSETS:
            raise click.ClickException(
                f"{asset!r} has no HTML page (pages: {', '.join(REPORT_ASSETS)})"
            )
        if batch is not None and asset != DRIFT_REPORT:
            raise click.ClickException("--batch applies to drift_report only")
        if out is not None and not out.strip():
            raise click.ClickException(f"--out {out!r}: an empty path names no file")
        ctx = Context()
        config = ctx.project(project)
        store = ctx.store()
        path = [config.name, asset]
        if asset == DRIFT_REPORT:
            path += ["partitions", batch or _newest_batch_with_page(store, config.name)]
        chosen = version or store.require_current(path)
        where = f"{'/'.join(path)}@{chosen}"
        value = store.read_value(path, chosen)
        pages = (
            sorted(n for n in value.attachments if n.endswith(".html"))
            if isinstance(value, Report)
            else []
        )
        if not pages:
            raise click.ClickException(f"{where}: this version has no HTML page")
        target = (
            Path(out)
            if out is not None
            else Path(tempfile.gettempdir())
            / DEFAULT_FOLDER
            / ("-".join([*path[:2], *path[3:], chosen]) + ".html")
        )
        write_page(target, value.attachments[pages[0]], "--out" if out is not None else "")
        if as_json:
            click.echo(json.dumps({"report": where, "path": str(target)}))
        else:
            click.echo(str(target))
        if open_it:
            import webbrowser

            if not webbrowser.open(target.resolve().as_uri()):
                raise click.ClickException(f"no web browser could open {target}")

    run(go)
