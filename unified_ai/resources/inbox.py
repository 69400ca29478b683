"""Where production batches and their ground-truth labels arrive, per project."""

import re
from typing import NamedTuple

import dagster as dg

from unified_ai.projects.schema import ProjectConfig

LABELS = "labels"
PROCESSED = "processed"
QUARANTINE = "quarantine"
#: Where labels files that waited too long for their batch are moved (with a reason file).
EXPIRED = "expired"
#: The suffix of the reason file written beside an expired labels file.
REASON_SUFFIX = ".reason.txt"
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


class LabelFile(NamedTuple):
    """A file waiting directly in a labels folder, and when it arrived there.

    Attributes:
        name: The file name.
        mtime: Its modification time (kept from the source by `mv`, `cp -p` and rsync).
        size: Its size in bytes.
        arrived: When it was put in the folder: the inode change time of a local file (set by
            the rename that delivers it, and by every write), the time of an object store's
            object (set when it is written).
    """

    name: str
    mtime: float
    size: int
    arrived: float


def _local_path(folder) -> str | None:
    """The folder's path on this machine's file system, or None for an object store."""
    from fsspec.implementations.local import LocalFileSystem

    return folder.path if isinstance(folder.fs, LocalFileSystem) else None


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

    @staticmethod
    def label_files(folder) -> list[LabelFile]:
        """The files directly in a labels folder with when each arrived, oldest arrival first.

        One listing: on a local disk a directory scan and one `stat` per file (no fsspec
        bookkeeping per entry: a folder can hold 10,000 labels files waiting for batches that
        never come, and the labels sensor lists it every tick); elsewhere the store's listing.
        """
        import os

        local = _local_path(folder)
        if local is None:
            return [LabelFile(f.name, f.mtime, f.size, f.mtime) for f in Inbox.files(folder)]
        found = []
        try:
            with os.scandir(local) as entries:
                for entry in entries:
                    try:
                        if not entry.is_file(follow_symlinks=False):
                            continue
                        stat = entry.stat(follow_symlinks=False)
                    except FileNotFoundError:
                        continue  # moved away (archived by its run) while listed
                    found.append(LabelFile(entry.name, stat.st_mtime, stat.st_size, stat.st_ctime))
        except FileNotFoundError:
            return []
        return sorted(found, key=lambda f: (f.arrived, f.name))

    @staticmethod
    def expire(folder, name: str, reason: str) -> str | None:
        """Move a labels file that waited too long into `expired/`, a reason file beside it.

        Never deleted: moving the file back into the labels folder delivers it again. An
        earlier file of the same name already there is kept; this one becomes `<name>.1`, ...

        Returns:
            The name it has in `expired/`; None if it had left the folder meanwhile.
        """
        target = folder / EXPIRED
        target.mkdir(parents=True, exist_ok=True)
        stored, number = name, 0
        while (target / stored).exists():
            number += 1
            stored = f"{name}.{number}"
        try:
            (folder / name).rename(target / stored)
        except FileNotFoundError:
            return None
        (target / f"{stored}{REASON_SUFFIX}").write_text(reason.rstrip("\n") + "\n")
        return stored

    def read(self, folder, name: str, limits=None):
        """Read one CSV/Parquet file within `limits` (default: the batch limits).

        The file is streamed through its checks, never read whole first: a file past a limit is
        refused in bounded memory (see `unified_ai.ml.data.FileLimits`).

        Raises:
            InboxError: the file is missing, unreadable, empty, past a limit (size, line, cell,
                columns), holds a NUL byte, names a column twice, or has rows longer than its
                header (a trailing comma would shift every column).
        """
        from unified_ai.ml.data import (
            BATCH_LIMITS,
            FileRuleError,
            read_csv_checked,
            read_parquet_checked,
        )

        path = self.locate(folder, name)
        reader = read_parquet_checked if name.endswith(".parquet") else read_csv_checked
        try:
            frame = reader(path, limits or BATCH_LIMITS)
        except FileNotFoundError:
            raise InboxError(f"{path} does not exist") from None
        except FileRuleError as exc:  # a limit, a NUL byte, a repeated column, a shifted row
            raise InboxError(f"{path}: {exc}") from None
        except Exception as exc:  # any decoding problem is the file's, reported in one line
            first = (str(exc).splitlines() or [type(exc).__name__])[0]
            raise InboxError(f"{path} cannot be read: {first}") from None
        if len(frame) == 0:
            raise InboxError(f"{path} has no rows")
        return frame
