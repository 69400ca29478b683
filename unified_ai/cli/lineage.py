"""Commands that read the lineage: history, lineage trees, blast radius, the store's health."""

import json
import sys

import click

from unified_ai.cli.app import ALL_ASSETS, ASSETS, Context, check_asset, main, print_table, run
from unified_ai.cli.history_pages import DEFAULT_LIMIT, CursorError, history_page
from unified_ai.io.reader import StoreReader
from unified_ai.io.records import SEGMENT
from unified_ai.io.store import LineageStoreError
from unified_ai.names import BATCH_ASSETS, DEPLOYED_MODEL, PARTITIONS, sensor_names
from unified_ai.queries import ledger_rows


@main.command("history")
@click.argument("project")
@click.argument("asset", required=False)
@click.option(
    "--limit",
    type=click.IntRange(min=0),
    default=DEFAULT_LIMIT,
    show_default=True,
    help="Moves per page (0: every move).",
)
@click.option(
    "--cursor",
    default=None,
    help="Show the page after the one that printed this cursor (`next` in --json).",
)
@click.option("--oldest-first", is_flag=True, help="Page from the oldest move on.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def history_cmd(
    project: str,
    asset: str | None,
    limit: int,
    cursor: str | None,
    oldest_first: bool,
    as_json: bool,
) -> None:
    """Pointer moves of PROJECT's assets (or one ASSET), a page at a time, newest first.

    Ends with the deployment ledger of the page's deployment moves: which model was live from
    when until when. A page reads only its own moves, however long the history is; `--json`
    gives `next`, the cursor of the next page (null on the last).
    """

    def go():
        ctx = Context()
        store = ctx.store()
        if not (SEGMENT.fullmatch(project) and store.asset_dir([project]).exists()):
            # Nothing stored under that name: is it a project at all? (Loading the projects
            # imports Dagster, which would cost more than the page itself.)
            ctx.project(project)
        if asset:
            check_asset(asset)
        assets = [asset] if asset else list(ASSETS)
        try:
            page = history_page(
                store,
                project,
                assets,
                limit=limit,
                cursor=cursor,
                oldest_first=oldest_first,
                neighbours=[DEPLOYED_MODEL],
            )
        except CursorError as exc:
            raise click.BadParameter(str(exc), param_hint="--cursor") from None
        live, refused = {}, []
        for name in assets:
            try:
                live[name] = store.current_version([project, name])
            except LineageStoreError as exc:
                # A damaged, replayed or edited pointer: nothing is live, and the reader is told
                # why (the moves stay listed: they are what a person investigates it with).
                refused.append(str(exc).splitlines()[0])
        # The newest move made its version current; `store verify` reports a pointer that
        # disagrees, and no entry is marked live then.
        moves = [
            {
                **move.__dict__,
                "asset": name,
                "entry": entry,
                "current": page.newest.get(name) == entry and move.version == live.get(name),
            }
            for name, entry, move in page.moves
        ]
        deployed = [move for name, _, move in page.moves if name == DEPLOYED_MODEL]
        ledger = ledger_rows(
            StoreReader(store),
            project,
            deployed if oldest_first else deployed[::-1],
            page.newer_than_page.get(DEPLOYED_MODEL),
        )
        if as_json:
            body = {
                "moves": moves,
                "deployments": ledger,
                "refused_pointers": refused,
                "next": page.next_cursor,
            }
            click.echo(json.dumps(body, indent=2))
            return
        _print_history(project, asset, moves, ledger, refused, page.next_cursor)

    run(go)


def _print_history(
    project: str,
    asset: str | None,
    moves: list[dict],
    ledger: list[dict],
    refused: list[str],
    next_cursor: str | None,
) -> None:
    for line in refused:
        click.echo(f"warning: {line}", err=True)
    if not moves:
        click.echo(f"{project}: nothing materialized yet")
        return
    print_table(
        ["time", "asset", "version", "state", "action", "actor", "run", "reason"],
        [
            [
                m["at"],
                m["asset"],
                m["version"] + ("*" if m["current"] else ""),
                ("LIVE" if m["asset"] == DEPLOYED_MODEL else "current") if m["current"] else "",
                m["action"],
                m["actor"] or "-",
                (m["run_id"] or "-")[:8],
                m["reason"] or "",
            ]
            for m in moves
        ],
    )
    click.echo("(* = current version)")
    if next_cursor:
        command = " ".join(["unified-ai history", project, *([asset] if asset else [])])
        click.echo(f"more: {command} --cursor {next_cursor}")
    if ledger:
        click.echo("")
        click.echo("what was live when (deployed_model):")
        print_table(
            ["from", "until", "deployment", "model", "how"],
            [
                [
                    row["from"],
                    row["until"] or "now",
                    row["version"],
                    row["model_version"],
                    f"{row['action']} by {row['actor'] or '-'}",
                ]
                for row in ledger
            ],
        )


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
@click.option("--batch", default=None, help="The batch, for a per-batch asset (production_batch…).")
@click.option(
    "--pause",
    is_flag=True,
    help="Pause the automations that would consume it (and exclude a batch from training).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--url", default=None, help="Pause the sensors of this Dagster webserver.")
def impact_cmd(
    project: str,
    asset: str,
    version: str,
    batch: str | None,
    pause: bool,
    as_json: bool,
    url: str | None,
) -> None:
    """Blast radius of ASSET@VERSION: everything built from it, what is live, what acts next.

    For a per-batch asset give `--batch`: the models trained from the batch are listed, and
    `--pause` also excludes the batch from later training.
    """
    from unified_ai.io.lineage import downstream_of, stored_paths
    from unified_ai.names import CONSUMES

    def go():
        ctx = Context()
        config = ctx.project(project)
        check_asset(asset)
        store = ctx.store()
        if batch is not None and asset not in BATCH_ASSETS:
            raise click.ClickException(
                f"--batch: {asset} has no batches ({', '.join(BATCH_ASSETS)} do)"
            )
        start = [config.name, asset] + ([PARTITIONS, batch] if batch is not None else [])
        paths = stored_paths(store, config.name, list(ALL_ASSETS))
        rows = downstream_of(store, paths, start, version)
        touched = {asset} | {row["asset"].split("/")[1] for row in rows}
        names = sensor_names(config.name)
        automations = sorted(names[role] for role, uses in CONSUMES.items() if uses & touched)
        if pause:
            _pause(ctx, automations, f"impact analysis of {config.name}/{asset}@{version}", url)
            _observe_pause(start, batch, automations, version, url)
            if batch is not None:
                from unified_ai.io.exclusions import set_exclusions

                set_exclusions(
                    store,
                    config.name,
                    exclude=[batch],
                    reason=f"impact analysis of {config.name}/{asset}@{version}",
                    actor="cli:impact",
                )
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
        if pause and batch is not None:
            click.echo(
                f"excluded batch {batch} from later training; undo with: unified-ai exclude "
                f"{config.name} {batch} --undo --reason ..."
            )

    run(go)


def _pause(ctx: Context, sensors: list[str], reason: str, url: str | None) -> None:
    """Stop `sensors` in Dagster, after noting why (the note is shown while they are stopped)."""
    import getpass

    from unified_ai.cli.automations import AutomationError, PauseNotes, stop

    notes = PauseNotes(ctx.settings.automations_root)
    for sensor in sensors:
        notes.write(sensor, reason, f"cli:{getpass.getuser()}")
    try:
        stop(sensors, url=url)
    except AutomationError as exc:
        raise click.ClickException(f"pausing {', '.join(sensors)}: {exc}") from None


def _observe_pause(
    suspect: list[str], batch: str | None, sensors: list[str], version: str, url: str | None
) -> None:
    """Say on the suspect asset's page in the UI which automations were paused for it."""
    from unified_ai.cli.automations import AutomationError, observe

    asset_path = suspect[:2]  # the asset, without its partition folder
    described = f"{version} is suspect: paused " + (", ".join(sensors) or "no automation")
    try:
        observe(asset_path, batch, described, url=url)
    except AutomationError as exc:
        raise click.ClickException(f"paused, but not recorded in Dagster: {exc}") from None


@main.command("resume")
@click.argument("project")
@click.argument("sensors", nargs=-1)
@click.option("--url", default=None, help="Resume the sensors of this Dagster webserver.")
def resume_cmd(project: str, sensors: tuple[str, ...], url: str | None) -> None:
    """Resume PROJECT's paused automations (all, or the SENSORS named)."""
    from unified_ai.cli.automations import AutomationError, start

    def go():
        ctx = Context()
        config = ctx.project(project)
        known = set(sensor_names(config.name).values())
        unknown = set(sensors) - known
        if unknown:
            raise click.ClickException(
                f"unknown sensor(s) {sorted(unknown)} (known: {', '.join(sorted(known))})"
            )
        try:
            resumed = start(list(sensors or sorted(known)), url=url)
        except AutomationError as exc:
            raise click.ClickException(f"resuming {project}'s automations: {exc}") from None
        click.echo(f"resumed: {', '.join(resumed) or 'nothing was paused'}")

    run(go)


@main.command("automations")
@click.argument("project")
@click.option("--url", default=None, help="Ask this Dagster webserver instead of DAGSTER_HOME.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def automations_cmd(project: str, url: str | None, as_json: bool) -> None:
    """Whether each of PROJECT's automations runs, and why a paused one was paused."""
    from unified_ai.cli.automations import AutomationError, PauseNotes, describe

    def go():
        ctx = Context()
        config = ctx.project(project)
        sensors = sorted(sensor_names(config.name).values())
        try:
            states = describe(sensors, PauseNotes(ctx.settings.automations_root), url=url)
        except AutomationError as exc:
            raise click.ClickException(f"reading {project}'s automations: {exc}") from None
        if as_json:
            rows = [{"sensor": s.name, "status": s.status, "paused": s.note} for s in states]
            click.echo(json.dumps(rows, indent=2))
            return
        for state in states:
            line = f"{state.name:<40} {state.status}"
            if state.paused:
                note = state.note
                line += (
                    f"  paused {note['at']} by {note['by']}: {note['reason']}"
                    if note
                    else "  (stopped in Dagster; no reason recorded)"
                )
            click.echo(line)

    run(go)


@main.group("store")
def store_group() -> None:
    """Inspect the lineage store."""


@store_group.command("verify")
@click.argument("project", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option(
    "--deep",
    is_flag=True,
    help="Also decode every version as a reader does (model files, compiled scorers and their "
    "probe outputs) and report each version a reader would refuse.",
)
def store_verify(project: str | None, as_json: bool, deep: bool) -> None:
    """Check every checksum, pointer and history hash chain (of PROJECT, or the whole store).

    Prints each problem on one line (asset@version, path, reason) and exits 1 if there is any.
    Staging folders left by writers that died are removed.
    """

    def go():
        ctx = Context()
        store = ctx.store()
        prefix = [project] if project else []
        if project and not store.asset_paths(prefix) and project not in ctx.projects():
            ctx.project(project)  # raises: unknown project, with the known ones
        report = store.verify(prefix, deep=deep)
        if as_json:
            click.echo(
                json.dumps(
                    {
                        "assets": report.assets,
                        "versions": report.versions,
                        "problems": [p.__dict__ for p in report.problems],
                        "cleaned": report.cleaned,
                        "info": report.info,
                    },
                    indent=2,
                )
            )
        else:
            scope = project or "the store"
            for path in report.cleaned:
                click.echo(f"removed stale staging folder {path}")
            for note in report.info:
                click.echo(f"note: {note}")
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
