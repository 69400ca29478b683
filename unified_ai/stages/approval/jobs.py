"""Jobs a person launches: record an approval; deploy an approved candidate."""

import dagster as dg

from unified_ai.names import (
    DEPLOYED_MODEL,
    DEPLOYMENT_APPROVAL,
    FOLLOWS_DEPLOYMENT,
    approve_job,
    deploy_job,
    op_name,
)
from unified_ai.projects.schema import ProjectConfig
from unified_ai.stages.common import job_tags, key


def approval_run_config(
    project: ProjectConfig, *, model_version: str, decision: str, approver: str, comment: str
) -> dict:
    config = {
        "model_version": model_version,
        "decision": decision,
        "approver": approver,
        "comment": comment,
    }
    return {"ops": {op_name(project.name, DEPLOYMENT_APPROVAL): {"config": config}}}


def build_approval_job_defs(project: ProjectConfig) -> list:
    approve = dg.define_asset_job(
        approve_job(project.name),
        selection=dg.AssetSelection.assets(key(project, DEPLOYMENT_APPROVAL)),
        description=f"{project.name}: approve or reject the evaluated candidate (set "
        "model_version, decision, approver, comment).",
        tags=job_tags(project),
    )
    deploy = dg.define_asset_job(
        deploy_job(project.name),
        selection=dg.AssetSelection.assets(
            *(key(project, name) for name in (DEPLOYED_MODEL, *FOLLOWS_DEPLOYMENT))
        ),
        description=f"{project.name}: deploy the evaluated candidate if its gates passed and "
        "policy's approval is met.",
        tags=job_tags(project),
    )
    return [approve, deploy]
