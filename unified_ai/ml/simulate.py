"""Realistic production batches for demos and tests.

Rows drawn from the source's holdout split (which the first model never trained on), with
optional drift, and their labels written later, as they arrive in life. The pool is fixed: once
labeled batches join training, later batches repeat rows a retrained model has seen.
"""

import math
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from unified_ai.names import INTERNAL_COLUMNS, ROW_ID

if TYPE_CHECKING:
    from collections.abc import Collection

    import numpy as np
    import pandas as pd

    from unified_ai.projects.schema import ProjectConfig

_SPEC = re.compile(
    r"^(shift|scale):([A-Za-z0-9_]+)=(-?[0-9.]+)$|^mix:([A-Za-z0-9_]+)=(.+)$"
    r"|^flip:([0-9.]+)$|^concept:([A-Za-z0-9_]+)$"
)


#: Largest `--batches` and `--rows` of one call: a demo or test never needs more, and a typo
#: (an extra zero or three) must not fill a disk.
MAX_BATCHES = 10_000
MAX_ROWS = 10_000_000
#: Seeds numpy and pandas both accept (pandas' `random_state` is a 32-bit unsigned integer).
MAX_SEED = 2**32 - 1


class DriftSpecError(ValueError):
    """A drift spec that cannot be parsed."""


def _number(text: str, part: str) -> float:
    """A finite number from a drift spec (the pattern lets `1.2.3` or `.` through)."""
    try:
        value = float(text)
    except ValueError:
        raise DriftSpecError(f"--drift {part!r}: {text!r} is not a number") from None
    if not math.isfinite(value):
        raise DriftSpecError(f"--drift {part!r}: {text!r} is not a finite number")
    return value


@dataclass
class DriftSpec:
    """What to change in simulated batches.

    `shift:col=2.0` adds 2 standard deviations to a numeric column; `scale:col=1.5` multiplies
    it; `mix:col=value` makes half of the rows take that category; `flip:0.3` flips 30 % of the
    labels (noise: the inputs look the same, a share of the truth is random). `concept:col` is
    a concept drift a model can learn: for rows whose `col` is above its median in the rows
    batches are drawn from, the outcome is reversed (the label's dependence on the inputs
    changes sign there); the inputs look the same. How an outcome is reversed depends on the
    task (`reversed_outcome`): the other class, a regression value reflected about the mean
    target, or the next class of a multiclass project.
    """

    shift: dict[str, float] = field(default_factory=dict)
    scale: dict[str, float] = field(default_factory=dict)
    mix: dict[str, str] = field(default_factory=dict)
    flip: float = 0.0
    concept: list[str] = field(default_factory=list)


def parse_drift(
    specs: list[str], project: "ProjectConfig", numeric: "Collection[str] | None" = None
) -> DriftSpec:
    """Parse `--drift` values; columns must be features of the project.

    Args:
        specs: The `--drift` values (each may hold several, separated by commas).
        project: The project.
        numeric: The numeric features (resolved from data for an `all_but` project); default:
            the project's declared ones.
    """
    numeric = list(project.features.numeric) if numeric is None else list(numeric)
    spec = DriftSpec()
    for text in specs:
        for part in filter(None, (p.strip() for p in text.split(","))):
            match = _SPEC.match(part)
            if not match:
                raise DriftSpecError(
                    f"--drift {part!r}: expected shift:COL=N, scale:COL=N, mix:COL=VALUE, "
                    "flip:P or concept:COL"
                )
            kind, column, number, mix_column, mix_value, flip, concept = match.groups()
            if concept:
                if concept not in numeric:
                    known = ", ".join(numeric) or "none"
                    raise DriftSpecError(
                        f"--drift {part!r}: {concept} is not a numeric feature (numeric "
                        f"features: {known})"
                    )
                if concept not in spec.concept:
                    spec.concept.append(concept)
            elif kind in ("shift", "scale"):
                if column not in numeric:
                    raise DriftSpecError(f"--drift {part!r}: {column} is not a numeric feature")
                getattr(spec, kind)[column] = _number(number, part)
            elif mix_column:
                if mix_column not in [*project.features.categorical, *project.segments]:
                    raise DriftSpecError(
                        f"--drift {part!r}: {mix_column} is not a categorical column"
                    )
                spec.mix[mix_column] = mix_value
            else:
                spec.flip = _number(flip, part)
                if not 0 <= spec.flip <= 1:
                    raise DriftSpecError(f"--drift {part!r}: flip must be between 0 and 1")
    return spec


def make_batch(
    project: "ProjectConfig",
    pool: "pd.DataFrame",
    rows: int,
    drift: DriftSpec,
    seed: int,
    batch: str,
) -> tuple["pd.DataFrame", "pd.DataFrame"]:
    """(features without the target, labels) for one batch, sampled from `pool`."""
    import numpy as np

    rng = np.random.default_rng(seed)
    sample = pool.sample(n=rows, replace=len(pool) < rows, random_state=seed).reset_index(drop=True)
    # Production rows carry inputs only: where the pool's rows came from is not sent.
    sample = sample.drop(columns=[c for c in INTERNAL_COLUMNS if c in sample.columns])
    # Decided on the inputs as drawn, before any shift: the rule concerns the world, not the
    # measurement.
    reversed_rows = np.zeros(rows, dtype=bool)
    for column in drift.concept:
        median = float(pool[column].median())
        reversed_rows ^= (sample[column] > median).to_numpy()
    for column, sigmas in drift.shift.items():
        sample[column] = sample[column] + sigmas * float(pool[column].std() or 1.0)
    for column, factor in drift.scale.items():
        sample[column] = sample[column] * factor
    for column, value in drift.mix.items():
        chosen = rng.random(rows) < 0.5
        sample[column] = sample[column].astype(object)
        sample.loc[chosen, column] = value
    sample[ROW_ID] = [f"{batch}:{i}" for i in range(rows)]
    labels = sample[[ROW_ID, project.target]].copy()
    flipped = rng.random(rows) < drift.flip if drift.flip else np.zeros(rows, dtype=bool)
    # Noise and the concept change each reverse the outcome of their rows (both: unchanged).
    reverse = flipped ^ reversed_rows
    if reverse.any():
        labels[project.target] = reversed_outcome(project, pool, labels[project.target], reverse)
    features = sample.drop(columns=[project.target])
    return features, labels


def reversed_outcome(
    project: "ProjectConfig", pool: "pd.DataFrame", values: "pd.Series", reverse: "np.ndarray"
) -> "np.ndarray":
    """The labels with the outcome of the `reverse` rows changed, as the task has it.

    Binary: the other class. Regression: the value reflected about the pool's mean target (its
    dependence on the inputs changes sign). Multiclass: the next class in the project's class
    order (a permutation of the classes: the model's answer is then systematically wrong).
    """
    import numpy as np

    from unified_ai.projects.tasks import MULTICLASS, REGRESSION, class_key

    out = values.to_numpy().copy()
    if project.task == REGRESSION:
        numbers = out.astype("float64")
        centre = float(pool[project.target].astype("float64").mean())
        numbers[reverse] = 2 * centre - numbers[reverse]
        return numbers
    if project.task == MULTICLASS:
        classes = list(project.classes or sorted(pool[project.target].dropna().unique().tolist()))
        keys = [class_key(c) for c in classes]
        following = {k: classes[(i + 1) % len(classes)] for i, k in enumerate(keys)}
        out = out.astype(object)
        out[reverse] = [following.get(class_key(v), v) for v in out[reverse]]
        return out
    distinct = sorted(pool[project.target].dropna().unique().tolist())
    if len(distinct) == 2:
        out[reverse] = np.where(out[reverse] == distinct[0], distinct[1], distinct[0])
    return out


#: Where simulated labels wait (in the project's inbox) until `deliver_labels` hands them over.
PENDING_LABELS = ".pending_labels"


def _write_atomic(frame: "pd.DataFrame", folder, name: str) -> None:
    """Write a CSV under a hidden temporary name, then rename: sensors never see half a file."""
    folder.mkdir(parents=True, exist_ok=True)
    temporary = folder / f".{name}.tmp"
    with temporary.open("w") as handle:
        frame.to_csv(handle, index=False)
    temporary.rename(folder / name)


def write_batches(
    project: "ProjectConfig",
    pool: "pd.DataFrame",
    inbox,
    *,
    batches: int,
    rows: int,
    drift: DriftSpec,
    seed: int,
) -> list[str]:
    """Write `batches` batch files into `inbox` (their labels wait aside); return their names.

    Raises:
        ValueError: `batches`, `rows` or `seed` is out of range (see `MAX_BATCHES`, `MAX_ROWS`,
            `MAX_SEED`).
    """
    import time

    for name, value, low, high in (
        ("batches", batches, 0, MAX_BATCHES),
        ("rows", rows, 1, MAX_ROWS),
        ("seed", seed, 0, MAX_SEED),
    ):
        if not low <= value <= high:
            raise ValueError(f"{name} must be between {low} and {high}, got {value}")

    written = []
    for index in range(batches):
        name = batch_name(time.time_ns(), index)
        # Consecutive seeds per batch, wrapping at the largest seed pandas accepts.
        features, truth = make_batch(
            project, pool, rows, drift, (seed + index) % (MAX_SEED + 1), name
        )
        _write_atomic(truth, inbox / PENDING_LABELS, name)
        _write_atomic(features, inbox, name)
        written.append(name)
    return written


def deliver_labels(inbox, labels, *, keep: "Collection[str]" = ()) -> list[str]:
    """Move the waiting labels of earlier batches (not those in `keep`) into `labels`."""
    pending = inbox / PENDING_LABELS
    names = sorted(p.name for p in pending.iterdir()) if pending.exists() else []
    names = [n for n in names if n not in keep and not n.startswith(".")]
    labels.mkdir(parents=True, exist_ok=True)
    for name in names:
        (pending / name).rename(labels / name)
    return names


def batch_name(now_ns: int, index: int) -> str:
    """The file name of a simulated batch made at `now_ns` (ns since the epoch).

    `batch-<UTC second>-<nanoseconds>-<index>.csv`: both parts from the one reading, so names
    sort in the order batches were made (two readings could straddle a second).
    """
    import time

    seconds, nanos = divmod(now_ns, 10**9)
    stamp = time.strftime("%Y%m%d%H%M%S", time.gmtime(seconds))
    return f"batch-{stamp}-{nanos:09d}-{index:03d}.csv"
