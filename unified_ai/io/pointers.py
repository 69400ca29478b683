"""Pointer moves and the history chain of a lineage store.

CURRENT names the current version (and holds the newest history entry with its hash); each
move appends an immutable history entry linked to the one before it (by hash and by name).
Moves of one asset are serialised by a lock; a move reads the newest entry from the pointer, so
its cost does not grow with the history. The guarantees are described in `unified_ai.io.store`.
"""

import enum
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from unified_ai.io.history_walk import HistoryWalk
from unified_ai.io.locks import LOCK, file_lock, object_lock
from unified_ai.io.records import (
    CURRENT,
    DIGEST,
    ENTRY,
    HISTORY,
    VERSION,
    IntegrityError,
    LineageStoreError,
    PointerConflict,
    PointerMove,
    StoreDamageError,
    asset_label,
    sha256_bytes,
    successor_entry,
    utc_now,
    validate_asset_path,
    validate_version,
)

_S3_PROTOCOLS = {"s3", "s3a"}


class AnyPrevious(enum.Enum):
    """`set_current(only_if_previous=ANY_PREVIOUS)`: the move replaces whatever is current."""

    ANY = "any"


ANY_PREVIOUS = AnyPrevious.ANY


class PointerHistory(HistoryWalk):
    """Moves the pointers of a store and reads their history (see `LineageStore`)."""

    def set_current(
        self,
        asset_path: Sequence[str],
        version: str,
        *,
        action: str,
        run_id: str | None = None,
        actor: str | None = None,
        reason: str | None = None,
        policy_version: str | None = None,
        only_if_previous: str | AnyPrevious | None = ANY_PREVIOUS,
    ) -> PointerMove:
        """Point `asset_path` at an existing `version` and append the move to its history.

        Moves of one asset are serialised, so `previous` is always the version the newest
        history entry moved to. A damaged pointer does not block the move (a rollback or
        re-materialization is how it gets repaired); the damage is noted in the entry's reason.

        Compare and set: with `only_if_previous` the move is made only if the pointer still
        names that version (None: it was never set). A writer that read the value, changed it
        and writes it back passes the version it read, so no concurrent writer's change is lost.

        Raises:
            PointerConflict: `only_if_previous` is not what the pointer names.
        """
        label = asset_label(validate_asset_path(asset_path))
        validate_version(version)
        self.read_manifest(asset_path, version)  # exists, and is intact
        folder = self.asset_dir(asset_path)
        history = folder / HISTORY
        with self._pointer_lock(asset_path):
            newest_name, newest_data, newest, notes = self._newest_move(asset_path)
            restored = self._restore_head_copy(asset_path, newest_name, newest_data)
            if restored is not None:
                newest_name, newest_data, newest = restored
            previous, pointer_notes = self._previous_for_move(asset_path, newest)
            if only_if_previous is not ANY_PREVIOUS and previous != only_if_previous:
                raise PointerConflict(
                    f"{label}: moved to {previous} since it was read at {only_if_previous}",
                    asset=label,
                    version=version,
                )
            notes += pointer_notes
            # (Without notes, `previous` is None only when there is no history at all.)
            if (
                not pointer_notes
                and newest is not None
                and previous is not None
                and previous != newest.version
            ):
                newest_name, newest_data = self._record_repair(
                    asset_path, history, previous, newest, newest_name, newest_data
                )
            if notes:
                reason = "; ".join([reason, *notes] if reason else notes)
            move = PointerMove(
                asset_key=list(asset_path),
                version=version,
                previous=previous,
                action=action,
                at=utc_now(),
                run_id=run_id,
                actor=actor,
                reason=reason,
                policy_version=policy_version,
                prev_entry=self._link(newest_name, newest_data),
                prev_entry_name=newest_name,
            )
            data = self._codec.encode(move.__dict__)
            entry = self._entry_name(newest_name, newest_data)
            pointer = {
                "asset": label,
                "version": version,
                "at": move.at,
                "entry": entry,
                "head": sha256_bytes(data),
                "record": data.decode(),
            }
            # The pointer (holding the entry) is the commit; the history copy follows it.
            self._replace(folder / CURRENT, self._codec.encode(pointer))
            self._write_entry(history, entry, data)
        return move

    def _record_repair(
        self,
        asset_path: Sequence[str],
        history: Any,
        previous: str,
        newest: PointerMove,
        newest_name: str | None,
        newest_data: bytes | None,
    ) -> tuple[str, bytes]:
        """Append the `repair` entry of a move CURRENT names but history does not end with.

        Returns:
            The name and data of the appended entry (the newest one from now on).
        """
        # The last move was interrupted between its history entry and the pointer
        # (or CURRENT was replaced by hand): record that, so the chain stays whole.
        repair = PointerMove(
            asset_key=list(asset_path),
            version=previous,
            previous=newest.version,
            action="repair",
            at=utc_now(),
            reason=f"CURRENT named {previous} while the newest history entry "
            f"moved to {newest.version}; recorded before the next move",
            prev_entry=self._link(newest_name, newest_data),
            prev_entry_name=newest_name,
        )
        data = self._codec.encode(repair.__dict__)
        name = self._entry_name(newest_name, newest_data)
        self._write_entry(history, name, data)
        return name, data

    @staticmethod
    def _link(newest_name: str | None, newest_data: bytes | None) -> str | None:
        """`prev_entry` of the entry after the newest: its hash, "" if there is none."""
        if newest_name is None:
            return ""
        return sha256_bytes(newest_data) if newest_data is not None else None

    @staticmethod
    def _entry_name(newest_name: str | None, newest_data: bytes | None) -> str:
        """The name of the entry after the newest (fixed by it; see `successor_entry`)."""
        if newest_name is not None and newest_data is not None:
            return successor_entry(newest_name, sha256_bytes(newest_data))
        stamp = time.time_ns()
        if newest_name is not None:  # unreadable newest entry: still sort after it
            stamp = max(stamp, int(newest_name[:20]) + 1)
        return f"{stamp:020d}-{uuid.uuid4().hex[:8]}.json"

    def _write_entry(self, history, name: str, data: bytes) -> None:
        if self._local:
            Path(history.path).mkdir(parents=True, exist_ok=True)
        self._replace(history / name, data)

    def _restore_head_copy(
        self, asset_path: Sequence[str], newest_name: str | None, newest_data: bytes | None
    ) -> tuple[str, bytes, PointerMove] | None:
        """Copy into history the entry CURRENT holds when a move stopped before copying it."""
        head = self.pointer_head(asset_path)
        if head is None:
            return None
        name, data = head
        expected = (
            successor_entry(newest_name, sha256_bytes(newest_data))
            if newest_name is not None and newest_data is not None
            else None
        )
        if newest_name is not None and name != expected:
            return None  # not the missing successor: `current_version` reports the state
        history = self.asset_dir(asset_path) / HISTORY
        try:
            move = self._move_of(asset_path, data, history / name)
        except LineageStoreError:
            return None
        if move.prev_entry != self._link(newest_name, newest_data):
            return None
        self._write_entry(history, name, data)
        return name, data, move

    def _previous_for_move(
        self, asset_path: Sequence[str], newest: PointerMove | None
    ) -> tuple[str | None, list[str]]:
        """The version a move replaces, and notes on damage found while deciding it."""
        try:
            current = self.current_version(asset_path)
        except LineageStoreError as exc:
            fallback = newest.version if newest is not None else None
            source = "the newest history entry" if fallback else "nothing (no readable history)"
            return fallback, [f"CURRENT was unreadable ({exc}); previous taken from {source}"]
        if current is None and newest is not None:
            return newest.version, [
                "CURRENT was missing; previous taken from the newest history entry"
            ]
        return current, []

    def _newest_move(
        self, asset_path: Sequence[str]
    ) -> tuple[str | None, bytes | None, PointerMove | None, list[str]]:
        """(name, bytes, entry, notes) of the newest history entry; None parts if unreadable.

        Read from the pointer when it holds the newest entry and its copy in history is intact
        (a few lookups, whatever the history's length); otherwise history is listed.
        """
        history = self.asset_dir(asset_path) / HISTORY
        head = self._chain_head(asset_path)
        if head is not None:
            head_name, head_data = head
            try:
                copy = self._read_optional(
                    history / head_name, what="history entry", asset=asset_label(asset_path)
                )
                if copy == head_data:
                    move = self._move_of(asset_path, head_data, history / head_name)
                    return head_name, head_data, move, []
            except LineageStoreError:
                pass  # listing below decides, and notes what it finds
        try:
            names = self.names(history)
        except FileNotFoundError:
            return None, None, None, []
        # Entry names sort by time; temporary files start with "." and sort first. Only a
        # stray name of another shape makes the (slower) full filter necessary.
        newest = max(names, default=None)
        if newest is not None and not ENTRY.fullmatch(newest):
            newest = max((n for n in names if ENTRY.fullmatch(n)), default=None)
        if newest is None:
            return None, None, None, []
        data: bytes | None = None
        try:
            data, move = self.read_entry(asset_path, history / newest)
            return newest, data, move, []
        except LineageStoreError as exc:
            return newest, data, None, [f"newest history entry was unreadable ({exc})"]

    @contextmanager
    def _pointer_lock(self, asset_path: Sequence[str]) -> Iterator[None]:
        folder = self.asset_dir(asset_path)
        label = asset_label(asset_path)
        if self._local:
            with file_lock(Path(folder.path) / LOCK, label):
                yield
        else:
            # S3 can overwrite a stale lock conditionally (If-Match), other stores cannot.
            overwrite = self.root.protocol in _S3_PROTOCOLS
            with object_lock(folder / LOCK, label, conditional_overwrite=overwrite):
                yield

    # -- reading ---------------------------------------------------------------------------
    def current_version(self, asset_path: Sequence[str]) -> str | None:
        """The version CURRENT names, None if the asset was never made current.

        The history entry CURRENT holds is checked (its hash, signature and version), and one
        lookup checks that no entry follows it: an older pointer put back is an IntegrityError.
        History is not listed.
        """
        label = asset_label(validate_asset_path(asset_path))
        pointer = self.asset_dir(asset_path) / CURRENT
        for _ in range(3):
            try:
                data = self._read_optional(pointer, what="pointer", asset=label)
                if data is None:
                    return None
                record = self._codec.decode(data, what="pointer", path=pointer, asset=label)
            except StoreDamageError as exc:
                raise StoreDamageError(
                    f"{exc}; a rollback or re-materialization repairs it", asset=label, path=pointer
                ) from None
            version = record.get("version")
            if not isinstance(version, str) or not VERSION.fullmatch(version):
                raise StoreDamageError(
                    f"{label}: pointer {pointer} names no valid version ({version!r}); a "
                    "rollback or re-materialization repairs it",
                    asset=label,
                    path=pointer,
                )
            owner = record.get("asset")
            if owner is not None and owner != label:
                raise IntegrityError(
                    f"{label}: pointer {pointer} belongs to {owner}; refusing it",
                    asset=label,
                    path=pointer,
                )
            successor = self._check_head(asset_path, record, version, pointer)
            if successor is None:
                return version
            # A move replaces CURRENT before it writes the next entry: a pointer that changed
            # since it was read was moved concurrently; read it again.
            if self._read_optional(pointer, what="pointer", asset=label) == data:
                raise IntegrityError(
                    f"{label}: pointer {pointer} names history entry {record.get('entry')}, but "
                    f"{successor} follows it: an older pointer was put back (replayed); refusing "
                    "it (a rollback or re-materialization repairs it)",
                    asset=label,
                    path=pointer,
                )
        raise StoreDamageError(
            f"{label}: pointer {pointer} kept changing while it was read", asset=label, path=pointer
        )

    def _check_head(
        self, asset_path: Sequence[str], record: dict[str, Any], version: str, pointer
    ) -> str | None:
        """Check the history entry a pointer names; the name of an entry after it, if one exists.

        Raises:
            IntegrityError: the entry the pointer holds does not hash to its head, moved to
                another version, or differs from its copy in history.
        """
        label = asset_label(asset_path)
        history = self.asset_dir(asset_path) / HISTORY
        entry, head = record.get("entry"), record.get("head")
        if entry is None and head is None:
            return None  # a pointer from before pointers named their history entry
        if not isinstance(entry, str) or not ENTRY.fullmatch(entry):
            raise StoreDamageError(
                f"{label}: pointer {pointer} names no valid history entry ({entry!r}); a "
                "rollback or re-materialization repairs it",
                asset=label,
                path=pointer,
            )
        if head is None:
            # A pointer from before the chain: nothing chained may follow the entry it names.
            data = self._read_optional(history / entry, what="history entry", asset=label)
            if data is None:
                return None
        else:
            text = record.get("record")
            if not isinstance(head, str) or not DIGEST.fullmatch(head) or not isinstance(text, str):
                raise StoreDamageError(
                    f"{label}: pointer {pointer} has a malformed head; a rollback or "
                    "re-materialization repairs it",
                    asset=label,
                    path=pointer,
                )
            data = text.encode()
            if sha256_bytes(data) != head:
                raise IntegrityError(
                    f"{label}: pointer {pointer} holds a history entry that does not hash to its "
                    "head (edited); refusing it",
                    asset=label,
                    path=pointer,
                )
            move = self._move_of(asset_path, data, history / entry)
            if move.version != version:
                raise IntegrityError(
                    f"{label}: pointer {pointer} names {version} but its history entry {entry} "
                    f"moved to {move.version} (edited); refusing it",
                    asset=label,
                    path=pointer,
                )
            copy = self._read_optional(history / entry, what="history entry", asset=label)
            if copy is not None and copy != data:
                raise IntegrityError(
                    f"{label}: history entry {history / entry} differs from the entry pointer "
                    f"{pointer} holds (edited); refusing it",
                    asset=label,
                    path=history / entry,
                )
        successor = successor_entry(entry, sha256_bytes(data))
        return successor if (history / successor).exists() else None

    def current_or_recorded(self, asset_path: Sequence[str]) -> str | None:
        """CURRENT's version; if CURRENT is damaged, the version its newest history entry set.

        For repairs only (a rollback away from a damaged pointer): readers of values use
        `current_version`, which refuses a damaged pointer.
        """
        try:
            return self.current_version(asset_path)
        except LineageStoreError:
            _, _, newest, _ = self._newest_move(asset_path)
            if newest is None:
                raise
            return newest.version

    def require_current(self, asset_path: Sequence[str]) -> str:
        version = self.current_version(asset_path)
        if version is None:
            raise LineageStoreError(
                f"{'/'.join(asset_path)} has no stored version yet; materialize it first"
            )
        return version
