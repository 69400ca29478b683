"""Jobs of projects with `policy.review`: route a scored batch to people; record an answer."""

import dagster as dg
from pydantic import Field

from unified_ai.names import (
    REVIEW_QUEUE,
    REVIEWS,
    op_name,
    review_job,
    route_reviews_job,
)
from unified_ai.projects.schema import ProjectConfig
from unified_ai.resources.identity import Identity
from unified_ai.resources.storage import LineageStorage
from unified_ai.stages.common import job_tags, key

#: The op of `<project>__review` is named for what it records.
REVIEW_OP = "answer_review"


class ReviewConfig(dg.Config):
    """One reviewer's answer to one routed prediction (launchpad config)."""

    review_id: str = Field(
        description="the item: review_queue's review_id (`unified-ai review PROJECT list`)"
    )
    answer: str = Field(
        default="",
        description="binary 0 or 1 (1: positive); multiclass one of the model's classes; "
        "regression a number. Empty with action skip.",
    )
    by: str = Field(default="", description="who answers (checked against policy.review)")
    comment: str = ""
    action: str = Field(default="answer", description="answer, or skip (leave it to others)")


def review_run_config(
    project: ProjectConfig,
    *,
    review_id: str,
    answer: str,
    by: str,
    comment: str = "",
    action: str = "answer",
) -> dict:
    """Run config of `<project>__review` recording one answer."""
    config = {
        "review_id": review_id,
        "answer": answer,
        "by": by,
        "comment": comment,
        "action": action,
    }
    return {"ops": {op_name(project.name, REVIEW_OP): {"config": config}}}


def build_review_answer_job(project: ProjectConfig) -> dg.JobDefinition:
    """`<project>__review`: record one person's answer, as the CLI and the HTTP route do.

    The answer goes through `record_review` (reviewer checked against `policy.review`, answer
    against the task) and is reported as a materialization of the batch's `reviews` partition,
    so every answer shows in the UI with who gave it. A refused answer fails the run with the
    one-line reason and records nothing.
    """
    reviews_key = key(project, REVIEWS)

    @dg.op(
        name=op_name(project.name, REVIEW_OP),
        description="Record a reviewer's answer to a routed prediction (policy.review).",
        out=dg.Out(dg.Nothing),
    )
    def record(
        context: dg.OpExecutionContext,
        config: ReviewConfig,
        lineage: LineageStorage,
        identity: Identity,
    ):
        from unified_ai.io.review_answers import record_review
        from unified_ai.policies.approval import same_person
        from unified_ai.policies.review_answers import ReviewRefused

        where = f"{project.name}/{REVIEWS}"
        declared = config.by.strip()
        authenticated = identity.authenticated(context)
        if identity.tag and authenticated is None:
            raise dg.Failure(
                description=f"{where}: no authenticated user in run tag {identity.tag}"
            )
        if authenticated is not None and declared and not same_person(declared, authenticated):
            raise dg.Failure(
                description=f"{where}: declared reviewer {declared} is not the signed-in user "
                f"{authenticated}"
            )
        try:
            recorded = record_review(
                lineage.store(),
                project,
                config.review_id.strip(),
                reviewer=authenticated or declared,
                action=config.action,
                answer=config.answer if config.action == "answer" else None,
                comment=config.comment,
            )
        except ReviewRefused as exc:
            raise dg.Failure(description=f"{where}: {exc}") from None
        context.log_event(
            dg.AssetMaterialization(
                asset_key=reviews_key,
                partition=recorded.batch,
                description=f"{recorded.reviewer}: {recorded.action} {recorded.review_id}",
                metadata={
                    "review_id": recorded.review_id,
                    "row_id": recorded.row_id,
                    "action": recorded.action,
                    "answer": recorded.answer if recorded.answer is not None else "none",
                    "model_answer": recorded.model_answer or "none",
                    "reviewer": recorded.reviewer,
                    "authenticated": authenticated is not None,
                    "comment": recorded.comment,
                    "at": recorded.at,
                },
            )
        )

    @dg.job(
        name=review_job(project.name),
        description=f"{project.name}: answer a prediction routed to people (set review_id, "
        "answer, by, comment); it becomes ground truth of its batch.",
        tags=job_tags(project),
    )
    def review():
        record()

    return review


def build_review_job_defs(project: ProjectConfig) -> list:
    """`<project>__route_reviews` (route one scored batch) and `<project>__review` (answer)."""
    return [
        dg.define_asset_job(
            route_reviews_job(project.name),
            selection=dg.AssetSelection.assets(key(project, REVIEW_QUEUE)),
            description=f"{project.name}: route a scored batch's unsure, out-of-range and "
            "audited predictions to people (policy.review).",
            tags=job_tags(project),
        ),
        build_review_answer_job(project),
    ]
