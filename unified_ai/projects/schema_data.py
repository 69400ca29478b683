"""The project schema's data models: where training data comes from, features, column rules.

Also the checks of a project's local paths (`leaves_folder`), which the loader applies to every
path a project file names.
"""

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from unified_ai.names import BUNDLED_DATASET_NAMES
from unified_ai.projects.schema_base import _Strict


class DataSource(_Strict):
    """Where the training data comes from.

    `source` is either `bundled:<name>` (a real data set shipped inside an installed package)
    or a CSV/Parquet path or fsspec URL. A relative path is resolved against the project file.
    """

    source: str = Field(min_length=1)
    format: Literal["csv", "parquet"] | None = None
    allow_outside_paths: bool = Field(
        default=False,
        description="let data.source, monitoring.inbox and training.script name local paths "
        "outside the project file's folder (absolute paths, `~`, `..`, file:// URLs); "
        "without it they are refused",
    )

    @field_validator("source")
    @classmethod
    def _known_bundled(cls, value: str) -> str:
        if value.startswith("bundled:"):
            name = value.removeprefix("bundled:")
            if name not in BUNDLED_DATASET_NAMES:
                known = ", ".join(sorted(BUNDLED_DATASET_NAMES))
                raise ValueError(f"unknown bundled data set {name!r} (known: {known})")
        elif not (value.endswith((".csv", ".parquet", ".pq"))):
            raise ValueError("a path source must end in .csv or .parquet")
        return value


#: fsspec protocols that name the local disk (a chained URL's last part is where data lives).
_LOCAL_PROTOCOLS = ("file", "local")


def local_path(value: str) -> str | None:
    """The local path `value` names (a plain path or a file:// URL), None for a remote URL."""
    if value.startswith("bundled:"):
        return None
    target = value.split("::")[-1]  # `simplecache::file:///x.csv` reads /x.csv
    scheme, sep, rest = target.partition("://")
    if not sep:
        return target
    if scheme.lower() not in _LOCAL_PROTOCOLS:
        return None
    from urllib.parse import unquote, urlsplit

    return unquote(urlsplit(target).path) if scheme.lower() == "file" else rest


def leaves_folder(value: str, folder: str | Path) -> str | None:
    """Where a project's path `value` leads when that is outside `folder`, else None.

    Relative paths are taken from `folder` (the project file's), `~` is expanded and links are
    followed, so `../../etc/passwd.csv`, `/etc/passwd.csv`, `~/x.csv` and `file:///etc/x.csv`
    all leave it; `data/x.csv` and remote URLs (s3://, gs://, https://…) do not.
    """
    path = local_path(value)
    if path is None:
        return None
    base = Path(folder).resolve()
    resolved = (base / Path(path).expanduser()).resolve()
    return None if resolved.is_relative_to(base) else str(resolved)


class Features(_Strict):
    """Which columns are model inputs.

    Either list `numeric` and `categorical` columns, or give `all_but` (every column except the
    target, the segments and these), in which case types are inferred from the data.
    """

    numeric: list[str] = Field(default_factory=list)
    categorical: list[str] = Field(default_factory=list)
    all_but: list[str] | None = None

    @model_validator(mode="after")
    def _one_style(self) -> "Features":
        listed = self.numeric or self.categorical
        if self.all_but is not None and listed:
            raise ValueError("give either numeric/categorical lists or all_but, not both")
        if self.all_but is None and not listed:
            raise ValueError("declare at least one numeric or categorical feature, or all_but")
        both = set(self.numeric) & set(self.categorical)
        if both:
            raise ValueError(f"columns listed as numeric and categorical: {sorted(both)}")
        return self


class ColumnRule(_Strict):
    """Validation of one column of the training data (becomes Great Expectations checks)."""

    min: float | None = None
    max: float | None = None
    categories: list[str | int] | None = None
    allow_null: bool = True

    @model_validator(mode="after")
    def _range(self) -> "ColumnRule":
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is greater than max ({self.max})")
        return self
