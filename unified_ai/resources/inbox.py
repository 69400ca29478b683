"""Where production batches and their ground-truth labels arrive, per project."""

import re
from typing import NamedTuple

import dagster as dg

from unified_ai.projects.schema import ProjectConfig

LABELS = "labels"
PROCESSED = "processed"
QUARANTINE = "quarantine"
_BATCH_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,120}\.(csv|parquet)")


class InboxError(RuntimeError):
    """A batch or label file is missing, unreadable or empty."""


def is_batch_name(name: str) -> bool:
    """Whether a file name can be a batch (it becomes a partition key and a store path).

    Matched whole: `$` alone would let a trailing newline through. A hidden name (a file still
    being written, then renamed into place, as `simulate` and rsync do) never matches.
    """
    return _BATCH_NAME.fullmatch(name) is not None


class InboxFile(NamedTuple):
    """A file waiting directly in an inbox folder."""

    name: str
    mtime: float
    size: int


class Inbox(dg.ConfigurableResource):
    """Batch files in `<root>/<project>/`, their labels in `<root>/<project>/labels/`.

    A file stays where it arrived until its content is safely in the lineage store; then the
    run moves it to `processed/` (or `quarantine/` if it was unreadable or invalid) beside it.
    Nothing is deleted, and sensors only ever list files that still wait.

    Attributes:
        root: Folder or fsspec URL holding one inbox per project (a project may set its own).
    """

    root: str

    def folder(self, project: ProjectConfig):
        from upath import UPath

        return UPath(project.monitoring.inbox or f"{self.root.rstrip('/')}/{project.name}")

    def labels_folder(self, project: ProjectConfig):
        return self.folder(project) / LABELS

    @staticmethod
    def files(folder) -> list[InboxFile]:
        """The files directly in `folder` (not in its subfolders), oldest first.

        Listed afresh every time: a cached listing of an object store would hide new files.
        """
        folder.fs.invalidate_cache(folder.path)
        if not folder.exists():
            return []
        entries = []
        for info in folder.fs.ls(folder.path, detail=True):
            if info.get("type") != "file":
                continue
            name = info["name"].rstrip("/").rsplit("/", 1)[-1]
            mtime = info.get("mtime") or info.get("LastModified") or info.get("created") or 0
            if hasattr(mtime, "timestamp"):
                mtime = mtime.timestamp()
            entries.append(InboxFile(name, float(mtime), int(info.get("size") or 0)))
        return sorted(entries, key=lambda e: (e.mtime, e.name))

    def locate(self, folder, name: str):
        """The file `name` in `folder`, or in its processed/quarantine archive if moved."""
        for candidate in (folder / name, folder / PROCESSED / name, folder / QUARANTINE / name):
            if candidate.exists():
                return candidate
        return folder / name

    def archive(self, folder, name: str, where: str) -> None:
        """Move a handled file out of the waiting list (into `processed` or `quarantine`).

        The latest delivery keeps its name there (a re-run reads it); an earlier one with the
        same name is renamed `<name>.1`, `<name>.2`, ... rather than overwritten.
        """
        source = folder / name
        if not source.exists():
            return
        target = folder / where
        target.mkdir(parents=True, exist_ok=True)
        if (target / name).exists():
            number = 1
            while (target / f"{name}.{number}").exists():
                number += 1
            (target / name).rename(target / f"{name}.{number}")
        source.rename(target / name)

    def read(self, folder, name: str):
        """Read one CSV/Parquet file.

        Raises:
            InboxError: the file is missing, unreadable, empty, or has rows longer than its
                header (a trailing comma would shift every column).
        """
        import pandas as pd

        from unified_ai.ml.data import CsvShapeError, read_csv_checked

        path = self.locate(folder, name)
        try:
            with path.open("rb") as handle:
                frame = (
                    pd.read_parquet(handle)
                    if name.endswith(".parquet")
                    else read_csv_checked(handle.read())
                )
        except FileNotFoundError:
            raise InboxError(f"{path} does not exist") from None
        except CsvShapeError as exc:  # a trailing comma would shift every column
            raise InboxError(f"{path}: {exc}") from None
        except Exception as exc:  # any decoding problem is the file's, reported in one line
            first = (str(exc).splitlines() or [type(exc).__name__])[0]
            raise InboxError(f"{path} cannot be read: {first}") from None
        if len(frame) == 0:
            raise InboxError(f"{path} has no rows")
        return frame
