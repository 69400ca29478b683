"""Loading training data and resolving a project's columns. Pure functions over pandas."""

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from unified_ai.ml.datasets import BUNDLED_DATASETS
from unified_ai.names import INTERNAL_COLUMNS

if TYPE_CHECKING:
    from collections.abc import Iterable

    import pandas as pd

    from unified_ai.projects.schema import ProjectConfig


class DataSourceError(RuntimeError):
    """The data source is missing, unreadable or empty."""


class CsvShapeError(ValueError):
    """A CSV row has more fields than the header."""


def resolve_source(source: str, base_dir: str | None) -> str:
    """Return `source` with a relative local path made absolute against `base_dir`."""
    if source.startswith("bundled:") or "://" in source or base_dir is None:
        return source
    path = Path(source).expanduser()
    return str(path if path.is_absolute() else Path(base_dir) / path)


def load_source(source: str, fmt: str | None = None) -> "pd.DataFrame":
    """Read a bundled data set, or a CSV/Parquet file from a path or fsspec URL."""
    import pandas as pd

    if source.startswith("bundled:"):
        return BUNDLED_DATASETS[source.removeprefix("bundled:")]()
    fmt = fmt or ("csv" if source.endswith(".csv") else "parquet")
    try:
        if fmt == "csv":
            return read_csv_checked(source)
        return pd.read_parquet(source)
    except FileNotFoundError:
        raise DataSourceError(f"data source {source} does not exist") from None
    except CsvShapeError as exc:
        raise DataSourceError(f"data source {source}: {exc}") from None
    except (pd.errors.EmptyDataError, pd.errors.ParserError, OSError, ValueError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataSourceError(f"data source {source} cannot be read as {fmt}: {first}") from None


def _too_many_fields(text: "Iterable[str]") -> str | None:
    """`line N has M fields, header has K` for the first row longer than the header."""
    import csv

    reader = csv.reader(text)
    header = next(reader, None)
    if header is None:
        return None
    for row in reader:
        if len(row) > len(header):
            return f"line {reader.line_num} has {len(row)} fields, header has {len(header)}"
    return None


def read_csv_checked(source: "str | bytes") -> "pd.DataFrame":
    """Read a CSV (a path or URL, or its bytes); a row with more fields than the header is an error.

    When the first rows carry one field too many (a trailing comma), pandas silently takes the
    first column as the index and shifts every value under the wrong name; with
    `index_col=False` it silently drops the extra field instead. Neither is acceptable, so the
    file is refused with the first offending line. A longer row further down already makes
    pandas fail; an implicit index is the sign of the first case. Only then is the file scanned
    a second time: a well-formed file is read once.

    Raises:
        CsvShapeError: a row is longer than the header.
    """
    import io

    import pandas as pd

    def longer_row() -> str | None:
        if isinstance(source, bytes):
            opened = io.StringIO(source.decode("utf-8-sig", errors="replace"), newline="")
        else:
            import fsspec

            opened = fsspec.open(source, "rt", encoding="utf-8-sig", errors="replace", newline="")
        with opened as text:
            return _too_many_fields(text)

    try:
        frame = pd.read_csv(io.BytesIO(source) if isinstance(source, bytes) else source)
    except pd.errors.ParserError:
        problem = longer_row()
        if problem is None:
            raise  # another tokenizing problem: pandas' own words
        raise CsvShapeError(problem) from None
    if not isinstance(frame.index, pd.RangeIndex):
        raise CsvShapeError(longer_row() or "rows have more fields than the header")
    return frame


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
        if pd.api.types.is_numeric_dtype(frame[column]) and not pd.api.types.is_bool_dtype(
            frame[column]
        ):
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
