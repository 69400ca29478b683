"""`unified-ai review PROJECT`: list the predictions routed to people, answer or skip one.

Answers go through `unified_ai.io.review_served.record_any` (a queued item: `record_review`, a
served one: `record_served`, by the same rules), so the reviewer is checked against
`policy.review.reviewers` (names compared as for approvals) and the answer against the task,
here as anywhere else. Served rows routed to people are listed with the queued ones.
"""

import click

from unified_ai.cli.app import Context, main, print_table, run


def _refused(fn):
    """Run `fn` with the CLI's one-line errors, a refused review included."""
    from unified_ai.policies.review_answers import ReviewRefused

    def go():
        try:
            return fn()
        except ReviewRefused as exc:
            raise click.ClickException(str(exc)) from None

    return run(go)


@main.group("review", invoke_without_command=True)
@click.argument("project")
@click.pass_context
def review_cmd(ctx: click.Context, project: str) -> None:
    """Predictions of PROJECT routed to people: list them (the default), answer or skip one."""
    ctx.obj = {"project": project}
    if ctx.invoked_subcommand is None:
        _list(project, batch=None, show_all=False)


@review_cmd.command("list")
@click.option("--batch", default=None, help="Only this batch's items.")
@click.option(
    "--all",
    "show_all",
    is_flag=True,
    help="Answered, escalated and timed-out items too (default: open and overdue).",
)
@click.pass_context
def list_cmd(ctx: click.Context, batch: str | None, show_all: bool) -> None:
    """List the routed predictions waiting for a person (open, overdue), oldest first."""
    _list(ctx.obj["project"], batch=batch, show_all=show_all)


def _list(project: str, *, batch: str | None, show_all: bool) -> None:
    def go():
        from unified_ai.io.review_served import all_items
        from unified_ai.policies.review_answers import WAITING

        context = Context()
        config = context.project(project)
        items = all_items(context.store(), config, batch=batch)  # queued and served
        shown = [i for i in items if show_all or i.state in WAITING]
        if not shown:
            click.echo(f"{config.name}: no {'routed' if show_all else 'open'} items")
            return
        print_table(
            ["review id", "state", "batch", "row", "reasons", "model", "shadow", "due", "detail"],
            [
                [
                    item.review_id,
                    item.state.upper(),
                    item.batch,
                    item.row_id,
                    item.reasons,
                    item.model_answer or "",
                    item.shadow_answer or "",
                    f"{item.due_at:%Y-%m-%d %H:%M} UTC",
                    item.agreed if item.agreed is not None else item.detail,
                ]
                for item in shown
            ],
        )

    _refused(go)


def _record(ctx: click.Context, review_id: str, **fields) -> None:
    def go():
        from unified_ai.io.review_served import record_any
        from unified_ai.runtime import login_name

        context = Context()
        config = context.project(ctx.obj["project"])
        who = fields.pop("reviewer") or login_name()
        record = record_any(context.store(), config, review_id, reviewer=who, **fields)
        what = f"answer {record.answer}" if record.answer is not None else "skip"
        click.echo(
            f"recorded {what} of {config.name} item {review_id} (batch {record.batch}, row "
            f"{record.row_id}) by {who}"
        )

    _refused(go)


@review_cmd.command("answer")
@click.argument("review_id")
@click.option(
    "--answer",
    "answer",
    required=True,
    help="Binary 0 or 1; multiclass a class label; regression a number.",
)
@click.option("--by", "reviewer", default=None, help="Who answers (default: $USER).")
@click.option("--batch", default=None, help="The item's batch (default: search every batch).")
@click.option("--comment", default="", help="Why; kept with the answer.")
@click.pass_context
def answer_cmd(
    ctx: click.Context,
    review_id: str,
    answer: str,
    reviewer: str | None,
    batch: str | None,
    comment: str,
) -> None:
    """Answer REVIEW_ID (a `review id` from the list): who, the answer, why."""
    _record(
        ctx,
        review_id,
        reviewer=reviewer,
        batch=batch,
        action="answer",
        answer=answer,
        comment=comment,
    )


@review_cmd.command("skip")
@click.argument("review_id")
@click.option("--by", "reviewer", default=None, help="Who skips it (default: $USER).")
@click.option("--batch", default=None, help="The item's batch (default: search every batch).")
@click.option("--comment", default="", help="Why; kept with the skip.")
@click.pass_context
def skip_cmd(
    ctx: click.Context, review_id: str, reviewer: str | None, batch: str | None, comment: str
) -> None:
    """Skip REVIEW_ID: recorded, and the item stays open for someone else."""
    _record(ctx, review_id, reviewer=reviewer, batch=batch, action="skip", comment=comment)
