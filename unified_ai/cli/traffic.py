"""Commands about production traffic: simulate batches and labels, serve the deployed model."""

import click

from unified_ai.cli.app import Context, main, os_reason, run
from unified_ai.ml.simulate import MAX_BATCHES, MAX_ROWS, MAX_SEED


@main.command("simulate")
@click.argument("project")
@click.option(
    "--batches",
    default=0,
    show_default=True,
    type=click.IntRange(0, MAX_BATCHES),
    help="How many batches to write.",
)
@click.option(
    "--rows",
    default=200,
    show_default=True,
    type=click.IntRange(1, MAX_ROWS),
    help="Rows per batch.",
)
@click.option(
    "--drift",
    "drift",
    multiple=True,
    help="shift:COL=SIGMAS, scale:COL=FACTOR, mix:COL=VALUE, flip:SHARE (label noise), "
    "concept:COL (a learnable change: the outcome reverses where COL is above its median) "
    "(repeatable).",
)
@click.option(
    "--labels",
    is_flag=True,
    help="Deliver the ground truth of batches written earlier (as it arrives in life).",
)
@click.option(
    "--seed",
    default=None,
    type=click.IntRange(0, MAX_SEED),
    help="Random seed (default: time-based).",
)
def simulate_cmd(
    project: str, batches: int, rows: int, drift: tuple[str, ...], labels: bool, seed: int | None
) -> None:
    """Write production batches into PROJECT's inbox, drawn from the source's holdout rows."""
    import time

    from unified_ai.ml.data import resolve_features
    from unified_ai.ml.simulate import DriftSpecError, deliver_labels, parse_drift, write_batches
    from unified_ai.ml.split import holdout_parts
    from unified_ai.names import HOLDOUT_SPLIT, training_loop_job
    from unified_ai.resources.inbox import LABELS, Inbox

    def go():
        if not batches and not labels:
            raise click.ClickException("nothing to do: give --batches N and/or --labels")
        ctx = Context()
        config = ctx.project(project)
        inbox = Inbox(root=ctx.settings.inbox_root).folder(config)

        def parsed(numeric=None):
            try:
                return parse_drift(list(drift), config, numeric)
            except DriftSpecError as exc:
                raise click.ClickException(str(exc)) from None

        spec = None if batches else parsed()
        written = []
        if batches:
            store = ctx.store()
            holdout = store.current_version([config.name, HOLDOUT_SPLIT])
            if holdout is None:
                raise click.ClickException(
                    f"{config.name} has no holdout split yet: run {training_loop_job(config.name)} "
                    "first (batches are drawn from the source's holdout rows)"
                )
            # Rows of the source's holdout only: the recent holdout's production rows were
            # production traffic already.
            pool = holdout_parts(config, store.read_value([config.name, HOLDOUT_SPLIT], holdout))[0]
            # Numeric features as the model sees them (inferred from data for `all_but`).
            spec = parsed(resolve_features(config, pool).numeric)
            try:
                written = write_batches(
                    config,
                    pool,
                    inbox,
                    batches=batches,
                    rows=rows,
                    drift=spec,
                    seed=seed if seed is not None else time.time_ns() % 2**31,
                )
            except OSError as exc:
                raise click.ClickException(
                    f"{inbox}: cannot write batches: {os_reason(exc)}"
                ) from None
            click.echo(f"wrote {len(written)} batch(es) of {rows} rows to {inbox}")
        if labels:
            target = inbox / LABELS
            try:
                names = deliver_labels(inbox, target, keep=written)
            except OSError as exc:
                raise click.ClickException(
                    f"{target}: cannot deliver labels: {os_reason(exc)}"
                ) from None
            click.echo(f"delivered labels for {len(names)} earlier batch(es) to {target}")

    run(go)


@main.command("exclude")
@click.argument("project")
@click.argument("batches", nargs=-1, required=True)
@click.option("--reason", required=True, help="Why (recorded with each batch).")
@click.option("--undo", is_flag=True, help="Use the batches in training again.")
@click.option("--by", "actor", default=None, help="Who decides (default: the current user).")
def exclude_cmd(
    project: str, batches: tuple[str, ...], reason: str, undo: bool, actor: str | None
) -> None:
    """Exclude production BATCHES of PROJECT from later training (a reviewer marked them bad).

    The next `training_data` leaves them out and names them, with the reason, in its metadata;
    the exclusion record's version is in its lineage. `--undo` takes them back in.
    """
    import getpass

    from unified_ai.io.exclusions import set_exclusions
    from unified_ai.names import PARTITIONS, PRODUCTION_BATCH

    def go():
        ctx = Context()
        config = ctx.project(project)
        store = ctx.store()
        folder = store.asset_dir([config.name, PRODUCTION_BATCH]) / PARTITIONS
        known = set(store.names(folder)) if folder.exists() else set()
        unknown = sorted(set(batches) - known)
        if unknown and not undo:
            raise click.ClickException(
                f"{config.name}: no stored production batch named {', '.join(unknown)}"
            )
        who = actor or f"cli:{getpass.getuser()}"
        set_exclusions(
            store,
            config.name,
            exclude=() if undo else batches,
            include=batches if undo else (),
            reason=reason,
            actor=who,
        )
        verb = "use again in training" if undo else "excluded from later training"
        click.echo(f"{config.name}: {len(batches)} batch(es) {verb}: {', '.join(batches)}")

    run(go)


@main.command("serve")
@click.argument("project")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--poll-seconds", default=0.5, show_default=True, help="How often the deployment is checked."
)
@click.option(
    "--flush-rows", default=1000, show_default=True, help="Served rows per inbox batch file."
)
@click.option(
    "--flush-seconds",
    default=30.0,
    show_default=True,
    help="Longest wait before served rows are written to the inbox.",
)
@click.option("--max-rows", default=1000, show_default=True, help="Rows per request (else 413).")
@click.option(
    "--max-body-bytes",
    default=4 * 1024 * 1024,
    show_default=True,
    help="Largest request body (else 413).",
)
@click.option(
    "--max-concurrent", default=4, show_default=True, help="Requests scored at the same time."
)
@click.option(
    "--queue-seconds",
    default=2.0,
    show_default=True,
    help="Wait for a scoring slot before answering 503.",
)
@click.option(
    "--require-token-for-predict",
    is_flag=True,
    help="Predictions need the bearer token too (labels always do).",
)
@click.option(
    "--max-text-chars",
    default=256,
    show_default=True,
    help="Longest text of a categorical without a category list (else 422).",
)
@click.option(
    "--max-row-bytes", default=16 * 1024, show_default=True, help="Largest row (else 422)."
)
@click.option(
    "--max-inbox-bytes",
    default=10 * 1024**3,
    show_default=True,
    help="Quota of the project's inbox: beyond it rows are not written and labels get 507.",
)
@click.option(
    "--max-label-files",
    default=10,
    show_default=True,
    help="Label files one labels request may touch (else 413).",
)
@click.option(
    "--label-rows-per-minute",
    default=10_000,
    show_default=True,
    help="Label rows accepted per minute (else 429).",
)
@click.option(
    "--label-files-per-minute",
    default=100,
    show_default=True,
    help="Label files written per minute (else 429).",
)
@click.option(
    "--header-seconds",
    default=5.0,
    show_default=True,
    help="Longest wait for a request's headers before the connection is closed.",
)
@click.option(
    "--body-seconds",
    default=10.0,
    show_default=True,
    help="Longest wait for a request's body (else 400).",
)
@click.option(
    "--keep-alive-seconds",
    default=5.0,
    show_default=True,
    help="How long an idle connection stays open.",
)
@click.option(
    "--max-connections",
    default=1000,
    show_default=True,
    help="Open connections at once; more get 503 with Retry-After.",
)
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Server processes sharing the port; each follows the deployment itself.",
)
@click.option(
    "--traffic-log/--no-traffic-log",
    "log_traffic",
    default=True,
    show_default=True,
    help="Write served rows to the project's inbox (off: answered only, not labellable).",
)
@click.option(
    "--log-level",
    default="info",
    show_default=True,
    type=click.Choice(["critical", "error", "warning", "info", "debug"]),
)
def serve_cmd(
    project: str,
    host: str,
    port: int,
    log_level: str,
    require_token_for_predict: bool,
    log_traffic: bool,
    **limits: float,
) -> None:
    """Serve PROJECT's deployed model over HTTP, following deployments and rollbacks.

    POST /v1/projects/PROJECT/predict scores JSON rows and answers in the project's task
    (probability and decision, class and class probabilities, or value); served rows reach
    the inbox as production batches. POST /v1/projects/PROJECT/labels takes ground truth for
    served rows and needs the bearer token in UNIFIED_AI_SERVE_TOKEN (without it, labels are
    disabled).
    /healthz, /readyz, /metrics (Prometheus) and /docs (OpenAPI, no internet needed).
    """

    def go():
        # The web stack is imported here only: the code location never loads it.
        from unified_ai.resources.inbox import Inbox
        from unified_ai.runtime import SERVE_TOKEN_ENV
        from unified_ai.serving.app import ServeConfigError, ServeOptions, run
        from unified_ai.serving.auth import TokenGuard

        ctx = Context()
        config = ctx.project(project)
        try:
            options = ServeOptions(**limits, log_traffic=log_traffic)
        except ServeConfigError as exc:
            raise click.ClickException(str(exc)) from None
        token = ctx.settings.serve_token
        if require_token_for_predict and not token:
            raise click.ClickException(
                f"--require-token-for-predict needs a token: set {SERVE_TOKEN_ENV}"
            )
        if not token:
            click.echo(
                f"{SERVE_TOKEN_ENV} is not set: labels are disabled (403), predictions work",
                err=True,
            )
        guard = TokenGuard(token, require_for_predict=require_token_for_predict)
        inbox = Inbox(root=ctx.settings.inbox_root).folder(config)
        run(
            config,
            ctx.store(),
            inbox,
            options,
            host=host,
            port=port,
            log_level=log_level,
            guard=guard,
        )

    run(go)
