"""A project's columns on its data: the model inputs, the columns kept, and the target."""

from dataclasses import dataclass
from typing import TYPE_CHECKING

from unified_ai.ml.file_rules import numeric_with_missing_words
from unified_ai.names import INTERNAL_COLUMNS

if TYPE_CHECKING:
    import pandas as pd

    from unified_ai.projects.schema import ProjectConfig


@dataclass(frozen=True)
class FeatureColumns:
    """The resolved model inputs of a project."""

    numeric: list[str]
    categorical: list[str]

    @property
    def all(self) -> list[str]:
        return [*self.numeric, *self.categorical]


def resolve_features(project: "ProjectConfig", frame: "pd.DataFrame") -> FeatureColumns:
    """Resolve declared features, inferring types when the project uses `all_but`."""
    import pandas as pd

    spec = project.features
    if spec.all_but is None:
        return FeatureColumns(numeric=list(spec.numeric), categorical=list(spec.categorical))
    # Row ids and origins are the product's bookkeeping: a model that learned them would learn
    # where a row came from, not what it says.
    excluded = {project.target, *project.segments, *spec.all_but, *INTERNAL_COLUMNS}
    numeric, categorical = [], []
    for column in frame.columns:
        if column in excluded:
            continue
        values = frame[column]
        if (
            pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
        ) or numeric_with_missing_words(values):
            numeric.append(column)
        else:
            categorical.append(column)
    return FeatureColumns(numeric=numeric, categorical=categorical)


def project_columns(project: "ProjectConfig", frame: "pd.DataFrame") -> list[str]:
    """Columns the project keeps from its source, in a stable order, without duplicates."""
    wanted = [project.target, *resolve_features(project, frame).all, *project.segments]
    wanted += list(project.columns)
    return list(dict.fromkeys(wanted))


def select_project_columns(project: "ProjectConfig", frame: "pd.DataFrame") -> "pd.DataFrame":
    """Keep the project's columns that exist; missing ones are reported by validation."""
    keep = [c for c in project_columns(project, frame) if c in frame.columns]
    return frame[keep].reset_index(drop=True)


def binary_target(project: "ProjectConfig", frame: "pd.DataFrame") -> "pd.Series":
    """The target as 0/1 integers (1 = the project's positive label)."""
    import pandas as pd

    values = frame[project.target]
    positive = project.positive_label
    if pd.api.types.is_numeric_dtype(values) and not isinstance(positive, str):
        return (values == positive).astype("int64")
    return (values.astype(str) == str(positive)).astype("int64")


def target_classes(project: "ProjectConfig", frame: "pd.DataFrame") -> list:
    """The distinct target values of `frame` (training data), as plain Python values, sorted."""
    values = frame[project.target].dropna().unique().tolist()
    try:
        return sorted(values)
    except TypeError:  # mixed types: any stable order will do
        return sorted(values, key=repr)
