"""Small learnable regression and multiclass problems, and project files for them.

The binary ones are `conftest.make_frame` / `conftest.write_project`; these mirror them (same
inputs: numeric x1 and x2 within the declared bounds, categorical colour, segment region) so
batches, labels and simulations written for one task fit the others.
"""

import textwrap
from pathlib import Path

import numpy as np
import pandas as pd

#: The classes of the multiclass project, in its declared order.
CLASSES = ["billing", "tech", "sales", "returns", "other"]


def _inputs(rows: int, seed: int) -> tuple[np.random.Generator, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "x1": rng.normal(size=rows),
            "x2": rng.normal(size=rows),
            "colour": rng.choice(["red", "green", "blue"], size=rows),
            "region": rng.choice(["north", "south"], size=rows),
        }
    )
    return rng, frame


def make_regression_frame(rows: int = 800, seed: int = 0) -> pd.DataFrame:
    """A price-like target (always positive) learnable from x1, x2 and colour."""
    rng, frame = _inputs(rows, seed)
    price = (
        50
        + 12 * frame["x1"]
        - 6 * frame["x2"]
        + np.where(frame["colour"] == "red", 8.0, 0.0)
        + rng.normal(0, 4, rows)
    )
    frame["price"] = np.round(np.clip(price, 1.0, None), 2)
    return frame


def make_multiclass_frame(rows: int = 800, seed: int = 0) -> pd.DataFrame:
    """Five classes, each favoured by a different region of (x1, x2, colour)."""
    rng, frame = _inputs(rows, seed)
    logits = np.stack(
        [
            2.0 * frame["x1"],
            -2.0 * frame["x1"],
            2.0 * frame["x2"],
            -2.0 * frame["x2"],
            np.where(frame["colour"] == "red", 2.0, -1.0),
        ],
        axis=1,
    ) + rng.gumbel(size=(rows, 5))
    frame["queue"] = np.asarray(CLASSES)[np.argmax(logits, axis=1)]
    return frame


REGRESSION_PROJECT = """\
name: {name}
description: Synthetic regression test project.
task: regression
data:
  source: {source}
target: price
features:
  numeric: [x1, x2]
  categorical: [colour]
segments: [region]
columns:
  colour: {{categories: [red, green, blue]}}
  x1: {{min: -10, max: 10}}
estimator:
  class: Ridge
split: {{holdout_fraction: 0.3, seed: 3}}
evaluation: {{bootstrap_samples: 60}}
policy:
  quality_floor: {{rmse: {rmse_ceiling}}}
  beats_champion: {{metric: rmse, tolerance: 0.5}}
  fairness: {{metric: mae, max_gap: 5.0, min_segment_size: 20}}
{policy_extra}"""

MULTICLASS_PROJECT = """\
name: {name}
description: Synthetic multiclass test project.
task: multiclass_classification
data:
  source: {source}
target: queue
classes: [billing, tech, sales, returns, other]
features:
  numeric: [x1, x2]
  categorical: [colour]
segments: [region]
columns:
  colour: {{categories: [red, green, blue]}}
  x1: {{min: -10, max: 10}}
estimator:
  class: LogisticRegression
  params: {{max_iter: 300}}
split: {{holdout_fraction: 0.3, seed: 3}}
evaluation: {{bootstrap_samples: 60}}
policy:
  quality_floor: {{macro_f1: {macro_f1_floor}, per_class_recall: 0.2}}
  beats_champion: {{metric: macro_f1, tolerance: 0.02}}
  fairness: {{metric: macro_recall, max_gap: 0.3, min_segment_size: 20}}
{policy_extra}"""


def write_regression_project(
    folder: Path,
    name: str = "prices",
    rmse_ceiling: float = 12.0,
    policy_extra: str = "",
    rows: int = 800,
) -> Path:
    """Write a regression project and its CSV into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    make_regression_frame(rows=rows).to_csv(folder / f"{name}.csv", index=False)
    text = REGRESSION_PROJECT.format(
        name=name, source=f"{name}.csv", rmse_ceiling=rmse_ceiling, policy_extra=policy_extra
    )
    path = folder / f"{name}.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def write_multiclass_project(
    folder: Path,
    name: str = "queues",
    macro_f1_floor: float = 0.4,
    policy_extra: str = "",
    rows: int = 800,
) -> Path:
    """Write a five-class project and its CSV into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    make_multiclass_frame(rows=rows).to_csv(folder / f"{name}.csv", index=False)
    text = MULTICLASS_PROJECT.format(
        name=name, source=f"{name}.csv", macro_f1_floor=macro_f1_floor, policy_extra=policy_extra
    )
    path = folder / f"{name}.yaml"
    path.write_text(textwrap.dedent(text))
    return path
