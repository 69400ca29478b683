"""Commands a person decides with: approve, reject, roll back (as runs, visible in the UI)."""

import click

from unified_ai.cli.app import Context, main, run, waiting_on
from unified_ai.names import ACTOR_TAG, DEPLOYED_MODEL


@main.command("rollback")
@click.argument("project")
@click.option(
    "--to",
    "to_version",
    default="",
    help="Deployment or model version to restore "
    "(default: the previous deployment that passed its gates).",
)
@click.option("--reason", required=True, help="Why; kept in the incident record.")
@click.option("--by", "actor", default=None, help="Who is rolling back (default: $USER).")
@click.option("--url", default=None, help="Run on this Dagster webserver instead of locally.")
def rollback_cmd(
    project: str, to_version: str, reason: str, actor: str | None, url: str | None
) -> None:
    """Restore an earlier deployment of PROJECT: pointer, MLflow alias, incident record."""
    from unified_ai.cli.launch import run_job
    from unified_ai.names import rollback_job
    from unified_ai.runtime import login_name
    from unified_ai.stages.rollback.jobs import rollback_run_config

    def go():
        config = Context().project(project)
        who = actor or login_name() or "cli"
        with waiting_on(url, f"rolling back {config.name}"):
            result = run_job(
                rollback_job(config.name),
                rollback_run_config(
                    config, reason=reason, trigger=f"cli:{who}", to_version=to_version
                ),
                {ACTOR_TAG: who},
                url=url,
            )
        store = Context().store() if not url else None
        now = store.current_version([config.name, DEPLOYED_MODEL]) if store else None
        click.echo(
            f"rolled back {config.name} in run {result.run_id}"
            + (f"; deployed version is now {now}" if now else "")
        )

    run(go)


def _decide(
    project: str, version: str, decision: str, approver: str | None, comment: str, url: str | None
) -> None:
    from unified_ai.cli.launch import run_job
    from unified_ai.names import approve_job, deploy_job
    from unified_ai.runtime import login_name
    from unified_ai.stages.approval.jobs import approval_run_config

    def go():
        config = Context().project(project)
        who = approver or login_name()
        with waiting_on(url, f"recording the {decision} decision on {config.name}"):
            result = run_job(
                approve_job(config.name),
                approval_run_config(
                    config, model_version=version, decision=decision, approver=who, comment=comment
                ),
                {ACTOR_TAG: who},
                url=url,
            )
        verb = "approval" if decision == "approve" else "rejection"
        click.echo(
            f"recorded {verb} of {config.name} model {version} by {who} (run {result.run_id})"
        )
        if decision == "approve":
            click.echo(
                "it deploys once policy's approvals are met (approval sensor), or run "
                f"{deploy_job(config.name)}"
            )

    run(go)


@main.command("approve")
@click.argument("project")
@click.option("--version", "version", required=True, help="The candidate_model version.")
@click.option("--by", "approver", default=None, help="Who approves (default: $USER).")
@click.option("--comment", default="", help="Why.")
@click.option("--url", default=None, help="Run on this Dagster webserver instead of locally.")
def approve_cmd(
    project: str, version: str, approver: str | None, comment: str, url: str | None
) -> None:
    """Approve PROJECT's evaluated candidate VERSION for deployment."""
    _decide(project, version, "approve", approver, comment, url)


@main.command("reject")
@click.argument("project")
@click.option("--version", "version", required=True, help="The candidate_model version.")
@click.option("--by", "approver", default=None, help="Who rejects (default: $USER).")
@click.option("--reason", required=True, help="Why; kept in the audit trail.")
@click.option("--url", default=None, help="Run on this Dagster webserver instead of locally.")
def reject_cmd(
    project: str, version: str, approver: str | None, reason: str, url: str | None
) -> None:
    """Reject PROJECT's candidate VERSION: it will not be deployed."""
    _decide(project, version, "reject", approver, reason, url)
