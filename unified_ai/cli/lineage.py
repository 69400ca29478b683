"""Commands that read the lineage: history, lineage trees, blast radius, the store's health."""

import json
import sys

import click

from unified_ai.cli.app import ALL_ASSETS, ASSETS, Context, check_asset, main, run
from unified_ai.io.reader import StoreReader
from unified_ai.names import DEPLOYED_MODEL, sensor_names
from unified_ai.queries import deployment_ledger


@main.command("history")
@click.argument("project")
@click.argument("asset", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def history_cmd(project: str, asset: str | None, as_json: bool) -> None:
    """Every pointer move of PROJECT's assets (or one ASSET), newest first.

    Ends with the deployment ledger: which model was live from when until when.
    """

    def go():
        ctx = Context()
        config = ctx.project(project)
        store = ctx.store()
        if asset:
            check_asset(asset)
        assets = [asset] if asset else list(ASSETS)
        moves = []
        for name in assets:
            history = store.history([config.name, name])
            live = store.current_version([config.name, name])
            for index, move in enumerate(history):
                # The newest move made its version current; `store verify` reports a pointer
                # that disagrees, and no entry is marked live then.
                newest = index == len(history) - 1
                moves.append(
                    {**move.__dict__, "asset": name, "current": newest and move.version == live}
                )
        moves.sort(key=lambda m: m["at"], reverse=True)
        ledger = (
            deployment_ledger(StoreReader(store), config.name) if DEPLOYED_MODEL in assets else []
        )
        if as_json:
            click.echo(json.dumps({"moves": moves, "deployments": ledger}, indent=2))
            return
        if not moves:
            click.echo(f"{config.name}: nothing materialized yet")
            return
        click.echo(
            f"{'time':<29} {'asset':<19} {'version':<18} {'action':<12} {'actor':<20} "
            f"{'run':<9} reason"
        )
        for m in moves:
            version = m["version"] + ("*" if m["current"] else " ")
            click.echo(
                f"{m['at']:<29} {m['asset']:<19} {version:<18} {m['action']:<12} "
                f"{(m['actor'] or '-'):<20} {(m['run_id'] or '-')[:8]:<9} {m['reason'] or ''}"
            )
        click.echo("(* = current version)")
        if ledger:
            click.echo("")
            click.echo("what was live when (deployed_model):")
            for row in ledger:
                until = row["until"] or "now"
                click.echo(
                    f"  {row['from']} → {until:<29} deployment {row['version']} "
                    f"model {row['model_version']} ({row['action']} by {row['actor'] or '-'})"
                )

    run(go)


@main.command("lineage")
@click.argument("project")
@click.argument("asset")
@click.option("--version", "version", default=None, help="A stored version (default: current).")
@click.option("--json", "as_json", is_flag=True, help="Print the tree as JSON.")
def lineage_cmd(project: str, asset: str, version: str | None, as_json: bool) -> None:
    """The upstream tree of ASSET's version: which data, split, model and report produced it."""
    from unified_ai.io.lineage import lineage_tree, render_tree

    def go():
        ctx = Context()
        config = ctx.project(project)
        check_asset(asset)
        store = ctx.store()
        chosen = version or store.require_current([config.name, asset])
        tree = lineage_tree(store, [config.name, asset], chosen)
        if as_json:
            click.echo(json.dumps(tree, indent=2))
        else:
            click.echo("\n".join(render_tree(tree)))

    run(go)


@main.command("impact")
@click.argument("project")
@click.argument("asset")
@click.option("--version", "version", required=True, help="The suspect version.")
@click.option("--pause", is_flag=True, help="Pause the automations that would consume it.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def impact_cmd(project: str, asset: str, version: str, pause: bool, as_json: bool) -> None:
    """Blast radius of ASSET@VERSION: everything built from it, what is live, what acts next."""
    from unified_ai.io.lineage import downstream_of, stored_paths
    from unified_ai.names import CONSUMES
    from unified_ai.resources.automations import Automations

    def go():
        ctx = Context()
        config = ctx.project(project)
        check_asset(asset)
        store = ctx.store()
        paths = stored_paths(store, config.name, list(ALL_ASSETS))
        rows = downstream_of(store, paths, [config.name, asset], version)
        touched = {asset} | {row["asset"].split("/")[1] for row in rows}
        names = sensor_names(config.name)
        automations = sorted(names[role] for role, uses in CONSUMES.items() if uses & touched)
        switches = Automations(root=ctx.settings.paused_root)
        if pause:
            for sensor in automations:
                switches.pause(sensor, f"impact analysis of {config.name}/{asset}@{version}")
        if as_json:
            click.echo(
                json.dumps(
                    {"built_from_it": rows, "automations": automations, "paused": pause}, indent=2
                )
            )
            return
        click.echo(f"{config.name}/{asset}@{version} was used to build {len(rows)} version(s):")
        for row in rows:
            live = (
                "  <- LIVE"
                if row["current"] and row["asset"].endswith(DEPLOYED_MODEL)
                else ("  (current)" if row["current"] else "")
            )
            click.echo(f"  {row['asset']}@{row['version']}  from {row['built_from']}{live}")
        click.echo("automations that would consume it next: " + (", ".join(automations) or "none"))
        if pause and automations:
            click.echo(f"paused them; resume with: unified-ai resume {config.name}")

    run(go)


@main.command("resume")
@click.argument("project")
@click.argument("sensors", nargs=-1)
def resume_cmd(project: str, sensors: tuple[str, ...]) -> None:
    """Resume PROJECT's paused automations (all, or the SENSORS named)."""
    from unified_ai.resources.automations import Automations

    def go():
        ctx = Context()
        config = ctx.project(project)
        known = set(sensor_names(config.name).values())
        unknown = set(sensors) - known
        if unknown:
            raise click.ClickException(
                f"unknown sensor(s) {sorted(unknown)} (known: {', '.join(sorted(known))})"
            )
        switches = Automations(root=ctx.settings.paused_root)
        resumed = [s for s in (sensors or sorted(known)) if switches.resume(s)]
        click.echo(f"resumed: {', '.join(resumed) or 'nothing was paused'}")

    run(go)


@main.group("store")
def store_group() -> None:
    """Inspect the lineage store."""


@store_group.command("verify")
@click.argument("project", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def store_verify(project: str | None, as_json: bool) -> None:
    """Check every checksum, pointer and history chain (of PROJECT, or the whole store).

    Prints each problem on one line (asset@version, path, reason) and exits 1 if there is any.
    Staging folders left by writers that died are removed.
    """

    def go():
        ctx = Context()
        store = ctx.store()
        prefix = [project] if project else []
        if project and not store.asset_paths(prefix) and project not in ctx.projects():
            ctx.project(project)  # raises: unknown project, with the known ones
        report = store.verify(prefix)
        if as_json:
            click.echo(
                json.dumps(
                    {
                        "assets": report.assets,
                        "versions": report.versions,
                        "problems": [p.__dict__ for p in report.problems],
                        "cleaned": report.cleaned,
                    },
                    indent=2,
                )
            )
        else:
            scope = project or "the store"
            for path in report.cleaned:
                click.echo(f"removed stale staging folder {path}")
            for p in report.problems:
                click.echo(p.problem, err=True)  # one line: asset@version, path and reason
            verdict = f"{len(report.problems)} problem(s)" if report.problems else "no problems"
            click.echo(
                f"checked {report.assets} asset(s) and {report.versions} version(s) of {scope}: "
                f"{verdict}"
            )
        if report.problems:
            sys.exit(1)

    run(go)
