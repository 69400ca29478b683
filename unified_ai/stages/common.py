"""Dagster-typed helpers every stage shares: asset keys, definition metadata, the run's actor."""

import dagster as dg

from unified_ai import names
from unified_ai.projects.schema import ProjectConfig


def key(project: ProjectConfig, name: str) -> dg.AssetKey:
    """`[project, name]`: every asset of a project is prefixed by the project name."""
    return dg.AssetKey([project.name, name])


def batches_partitions(project: ProjectConfig) -> dg.DynamicPartitionsDefinition:
    """One partition per production batch file of the project."""
    return dg.DynamicPartitionsDefinition(name=names.batches_partitions(project.name))


def asset_metadata(project: ProjectConfig) -> dict[str, str]:
    """Definition metadata every project asset carries (read by the lineage IO manager)."""
    return {
        names.POLICY_VERSION_METADATA: project.policy_version,
        names.PROJECT_METADATA: project.name,
    }


def job_tags(project: ProjectConfig, **extra: str) -> dict[str, str]:
    """Tags of every job of a project, with `extra` tags."""
    return {names.PROJECT_TAG: project.name, **extra}


def run_actor(context: dg.AssetExecutionContext) -> str:
    """Who triggered the run: the actor tag, the UI user, or `dagster`."""
    return names.actor_of(context.run.tags)
