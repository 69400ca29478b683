"""The target column as models learn it, for each task. Pure pandas/numpy.

- binary classification: 0/1, 1 for the project's `positive_label`;
- multiclass classification: the index of the row's class in the class list (the project's
  declared `classes`, else the sorted classes of the training data, recorded on the model);
- regression: the value as a float, which must be a finite number.

A value a task cannot learn from is refused with a `TargetError` naming the column, how many
rows and an example, never turned into a wrong label.
"""

from collections.abc import Sequence
from typing import TYPE_CHECKING

from unified_ai.ml.columns import binary_target, target_classes
from unified_ai.projects.tasks import BINARY, MULTICLASS, REGRESSION, class_key

__all__ = ["MULTICLASS", "TargetError", "class_key", "class_list", "encode_target", "stratify_on"]

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from unified_ai.projects.schema import ProjectConfig

#: The fewest classes a multiclass project may have (two is a binary project).
MIN_CLASSES = 3


class TargetError(ValueError):
    """The target column holds values the project's task cannot learn from."""


def class_list(project: "ProjectConfig", frame: "pd.DataFrame | None" = None) -> list:
    """The project's classes in index order: declared, else the sorted values of `frame`.

    Raises:
        TargetError: Fewer than three classes were declared or found.
    """
    declared = getattr(project, "classes", None)
    if declared:
        classes = list(declared)
    elif frame is None:
        raise TargetError(f"{project.name}: no class list declared and no data to infer it from")
    else:
        classes = target_classes(project, frame)
    if len(classes) < MIN_CLASSES:
        raise TargetError(
            f"{project.name}: target {project.target!r} has {len(classes)} classes "
            f"{classes[:5]}; a multiclass project needs at least {MIN_CLASSES} (two: use "
            "task: binary_classification)"
        )
    return classes


def _example(values: "pd.Series", bad: "np.ndarray") -> str:
    return repr(values[bad].tolist()[0]) if bad.any() else ""


def encode_target(
    project: "ProjectConfig", frame: "pd.DataFrame", classes: Sequence | None = None
) -> "np.ndarray":
    """The target of each row of `frame` as the task's models learn it (see the module doc).

    Args:
        project: The project (its task, target column and positive label).
        frame: Rows with the target column.
        classes: For multiclass projects, the class list to index into (a model's recorded
            list); default: `class_list(project, frame)`.

    Raises:
        TargetError: A missing value, a non-numeric or non-finite regression target, or a
            class that is not in the class list.
    """
    import numpy as np
    import pandas as pd

    values = frame[project.target]
    where = f"{project.name}: target {project.target!r}"
    if project.task == BINARY:
        return binary_target(project, frame).to_numpy()
    missing = values.isna().to_numpy()
    if missing.any():
        raise TargetError(f"{where}: {int(missing.sum())} rows have no value")
    if project.task == REGRESSION:
        numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype="float64")
        bad = ~np.isfinite(numbers)
        if bad.any():
            example = _example(values, bad)
            count = int(bad.sum())
            raise TargetError(f"{where}: {count} rows are not finite numbers, e.g. {example}")
        return numbers
    if project.task == MULTICLASS:
        known = list(classes) if classes is not None else class_list(project, frame)
        index = {class_key(c): i for i, c in enumerate(known)}
        codes = np.array([index.get(class_key(v), -1) for v in values.tolist()], dtype="int64")
        bad = codes < 0
        if bad.any():
            raise TargetError(
                f"{where}: {int(bad.sum())} rows hold a class not in the class list "
                f"{known}, e.g. {_example(values, bad)}"
            )
        return codes
    raise TargetError(f"{where}: unknown task {project.task!r}")


def stratify_on(project: "ProjectConfig", frame: "pd.DataFrame") -> "np.ndarray | None":
    """What a train/holdout split keeps in proportion: the class, or none for regression.

    Multiclass classes with a single row cannot be split in proportion; the split is then
    not stratified (scikit-learn would refuse it).
    """
    import numpy as np

    if project.task == REGRESSION:
        return None
    codes = encode_target(project, frame)
    if project.task == MULTICLASS:
        counts = np.bincount(codes)
        if counts[counts > 0].min(initial=2) < 2:
            return None
    return codes
