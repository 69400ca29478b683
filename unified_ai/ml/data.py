"""Loading a project's training data, and the data-file API in one place.

Loading a source is here; the checked readers, the file rules and the column handling live in
their own modules and are re-exported, so `unified_ai.ml.data` stays the import path for them.
"""

from typing import TYPE_CHECKING

from unified_ai.ml.columns import (
    FeatureColumns,
    binary_target,
    project_columns,
    resolve_features,
    select_project_columns,
    target_classes,
)
from unified_ai.ml.csv_reader import read_csv_checked
from unified_ai.ml.datasets import BUNDLED_DATASETS
from unified_ai.ml.file_rules import (
    BATCH_LIMITS,
    CSV_MISSING,
    MAX_PARQUET_FOOTER_BYTES,
    MISSING_WORDS,
    SOURCE_LIMITS,
    CsvShapeError,
    FileLimitError,
    FileLimits,
    FileRuleError,
    numeric_with_missing_words,
)
from unified_ai.ml.parquet_reader import read_parquet_checked

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "BATCH_LIMITS",
    "CSV_MISSING",
    "MAX_PARQUET_FOOTER_BYTES",
    "MISSING_WORDS",
    "SOURCE_LIMITS",
    "CsvShapeError",
    "DataSourceError",
    "FeatureColumns",
    "FileLimitError",
    "FileLimits",
    "FileRuleError",
    "binary_target",
    "load_source",
    "numeric_with_missing_words",
    "project_columns",
    "read_csv_checked",
    "read_parquet_checked",
    "resolve_features",
    "select_project_columns",
    "target_classes",
]


class DataSourceError(RuntimeError):
    """The data source is missing, unreadable or empty."""


def load_source(
    source: str, fmt: str | None = None, limits: FileLimits = SOURCE_LIMITS
) -> "pd.DataFrame":
    """Read a bundled data set, or a CSV/Parquet file from a path or fsspec URL."""
    import pandas as pd

    if source.startswith("bundled:"):
        return BUNDLED_DATASETS[source.removeprefix("bundled:")]()
    fmt = fmt or ("csv" if source.endswith(".csv") else "parquet")
    try:
        if fmt == "csv":
            return read_csv_checked(source, limits)
        return pd.read_parquet(source)
    except FileNotFoundError:
        raise DataSourceError(f"data source {source} does not exist") from None
    except FileRuleError as exc:
        raise DataSourceError(f"data source {source}: {exc}") from None
    except (pd.errors.EmptyDataError, pd.errors.ParserError, OSError, ValueError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataSourceError(f"data source {source} cannot be read as {fmt}: {first}") from None
