"""Dagster-typed helpers every stage shares: asset keys, definition metadata, the run's actor.

And the type of table inputs. An asset takes a table as
`name: DataFrame` with `ins={"name": dg.AssetIn(key=..., dagster_type=DATA_FRAME)}`: mypy reads
`DataFrame` as pandas' (imported only when type checking: the code location must load without
pandas), Dagster checks the loaded value with `DATA_FRAME` when the step runs. A batch input
that a large batch hands over in chunks is `name: TableOrChunks` with `TABLE_OR_CHUNKS` (the
IO manager's: the type is what asks it for chunks).
"""

import hashlib
import json
from typing import TYPE_CHECKING, Any, TypeAlias

import dagster as dg

import unified_ai
from unified_ai import names
from unified_ai.io.frame_chunks import FrameChunks
from unified_ai.projects.schema import ProjectConfig
from unified_ai.resources.io_manager import TABLE_OR_CHUNKS, is_data_frame


def _is_data_frame(_context: dg.TypeCheckContext, value: Any) -> bool:
    return is_data_frame(value)


#: The Dagster type of a table input (a pandas DataFrame), checked when the step runs.
DATA_FRAME = dg.DagsterType(
    type_check_fn=_is_data_frame,
    name="DataFrame",
    description="A pandas DataFrame.",
)


if TYPE_CHECKING:
    from pandas import DataFrame

    TableOrChunks: TypeAlias = DataFrame | FrameChunks
else:
    # Dagster resolves an asset function's annotations when the code location loads, so the
    # names must exist at run time; each is the same Dagster type the input declares.
    DataFrame = DATA_FRAME
    TableOrChunks = TABLE_OR_CHUNKS


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


def stage_tags(stage: str) -> dict[str, str]:
    """Asset tags naming the stage that builds the asset (each project is one asset group)."""
    return {names.STAGE_TAG: stage}


def code_version(project: ProjectConfig) -> str:
    """`<package version>+<hash of the project's configuration>`.

    An asset's output depends on our code and on its project's file, so a change to either
    marks the project's stored versions as built by older code.
    """
    body = json.dumps(project.model_dump(mode="json"), sort_keys=True).encode()
    return f"{unified_ai.__version__}+{hashlib.sha256(body).hexdigest()[:12]}"


def project_spec(project: ProjectConfig, spec: dg.AssetSpec) -> dg.AssetSpec:
    """`spec` as one asset of `project`: its group, owners, code version and description."""
    description = spec.description or ""
    if project.description:
        description = f"{description}\n\n{project.name}: {project.description}".strip()
    return spec.replace_attributes(
        group_name=project.name,
        owners=list(project.owners),
        code_version=code_version(project),
        description=description or None,
    )


def job_tags(project: ProjectConfig, **extra: str) -> dict[str, str]:
    """Tags of every job of a project, with `extra` tags."""
    return {names.PROJECT_TAG: project.name, **extra}


def run_actor(context: dg.AssetExecutionContext) -> str:
    """Who triggered the run: the actor tag, the UI user, or `dagster`."""
    return names.actor_of(context.run.tags)
