"""The job that routes a scored batch to people (projects with `policy.review`)."""

import dagster as dg

from unified_ai.names import REVIEW_QUEUE, route_reviews_job
from unified_ai.projects.schema import ProjectConfig
from unified_ai.stages.common import job_tags, key


def build_review_job_defs(project: ProjectConfig) -> list:
    """`<project>__route_reviews`: route one scored batch (a partition) to people."""
    return [
        dg.define_asset_job(
            route_reviews_job(project.name),
            selection=dg.AssetSelection.assets(key(project, REVIEW_QUEUE)),
            description=f"{project.name}: route a scored batch's unsure, out-of-range and "
            "audited predictions to people (policy.review).",
            tags=job_tags(project),
        )
    ]
