"""`unified_ai.ModelProject`: a model project as a Dagster component.

A project is a folder of Dagster's defs folder (`unified_ai/defs/<name>/defs.yaml`)::

    type: unified_ai.ModelProject
    attributes:
      name: churn
      data: {source: churn.csv}     # relative to the folder
      ...

Its attributes are validated by the project schema itself (`ProjectConfig`), so `dg check yaml`,
`dg check defs`, `unified-ai policy check` and the code location agree on what a valid project is;
`build_project` turns it into assets, checks, jobs and sensors. `dg scaffold defs
unified_ai.ModelProject NAME` writes a folder with a project to fill in.

Importing this module is cheap (Dagster and pydantic only): the stage wiring and the libraries it
needs are imported when definitions are built.
"""

import re
from pathlib import Path

import dagster as dg
from pydantic import BaseModel

from unified_ai.projects.schema import ProjectConfig

#: The file `dg scaffold defs` writes and the defs folder loads a component from.
DEFS_FILE = "defs.yaml"


def project_name_for(folder_name: str) -> str:
    """A valid project name from a folder name (`Churn-EU` → `churn_eu`)."""
    name = re.sub(r"[^a-z0-9_]+", "_", folder_name.lower()).strip("_")
    if not name or not name[0].isalpha():
        name = f"model_{name}".rstrip("_")
    return name[:63]


_TEMPLATE = """\
# A model project: its data, features, estimator and the policy that gates deployment.
# The fields are those of any project file (see docs/project-file.md); check them with
# `dg check yaml` or `unified-ai policy check {path}`.
type: {type_name}
attributes:
  name: {name}
  description: ""
  # Shown as the owners of every asset: `team:<name>` or an e-mail address.
  owners: []
  data:
    # bundled:<name>, a CSV or Parquet file relative to this folder, or an fsspec URL.
    source: {name}.csv
  # binary_classification, multiclass_classification (3+ classes, optionally listed in
  # `classes:`) or regression (a number). Binary projects name the `positive_label`; the other
  # tasks drop it and use their own metrics below (regression: rmse, mae, r2, mape; multiclass:
  # accuracy, macro_f1, log_loss, roc_auc_ovr, per_class_recall, per_class_precision) and
  # estimators (regression: Ridge, HistGradientBoostingRegressor, RandomForestRegressor, ...).
  task: binary_classification
  target: label
  positive_label: 1
  features:
    # Every other column except the target and the segments (types are inferred from the
    # data); or list `numeric:` and `categorical:` columns instead.
    all_but: []
  segments: []
  estimator:
    class: LogisticRegression
    params: {{max_iter: 500}}
  policy:
    quality_floor: {{roc_auc: 0.6}}
"""


class ModelProjectScaffolder(dg.Scaffolder):
    """Writes `defs.yaml` with a project named after its folder, ready to be filled in."""

    def scaffold(self, request: dg.ScaffoldRequest) -> None:
        folder = request.target_path
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / DEFS_FILE
        if target.exists():
            raise FileExistsError(f"{target}: already exists; not overwriting a project")
        target.write_text(
            _TEMPLATE.format(
                type_name=request.type_name,
                name=project_name_for(folder.name),
                path=target.relative_to(request.project_root)
                if request.project_root and target.is_relative_to(request.project_root)
                else target,
            )
        )


@dg.scaffold_with(ModelProjectScaffolder)
class ModelProject(dg.Component):
    """A model project: its training loop, gates, approval, deployment, monitoring and rollback.

    Its attributes are a project file's fields, validated by `ProjectConfig`.
    """

    def __init__(self, project: ProjectConfig, path: Path | None = None):
        self.project = project
        #: The `defs.yaml` that declares it (None when built in code).
        self.path = path

    @classmethod
    def get_model_cls(cls) -> type[BaseModel]:
        # The project schema itself (not a copy): YAML attributes validate into a ProjectConfig.
        return ProjectConfig

    @classmethod
    def get_spec(cls) -> dg.ComponentTypeSpec:
        return dg.ComponentTypeSpec(
            description="A model project: assets, gates, jobs and sensors from one project file.",
            tags=["ml"],
            produces=["asset", "asset_check", "job", "sensor"],
        )

    @classmethod
    def load(cls, attributes: BaseModel | None, context: dg.ComponentLoadContext) -> "ModelProject":
        from unified_ai.projects.loader import (
            ProjectConfigError,
            refuse_repeated_keys,
            with_paths_resolved,
        )

        where = context.path / DEFS_FILE
        # A repeated key could silently undo a reviewed setting further up.
        refuse_repeated_keys(where)
        if not isinstance(attributes, ProjectConfig):
            raise ProjectConfigError(f"{where}: attributes: the project's fields are missing")
        # Relative data and script paths are relative to the project's folder, as for any file.
        return cls(with_paths_resolved(attributes, context.path, where), where)

    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        from unified_ai.stages.project import build_project

        return build_project(self.project)
