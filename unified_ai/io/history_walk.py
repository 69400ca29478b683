"""Reading the history chain of a lineage store without listing it.

Each history entry records the hash (`prev_entry`) and, since entries named it, the file name
(`prev_entry_name`) of the entry before it, and CURRENT holds the newest entry. So the newest
k moves are k reads, whatever the history's length: the walk starts at the pointer and follows
the names back, checking each entry against the hash the entry after it recorded. History is
listed only where the walk cannot go on (a damaged or replayed pointer, entries written before
they named their predecessor) and to read it oldest first. The guarantees are described in
`unified_ai.io.store`.
"""

from collections.abc import Iterator, Sequence

from unified_ai.io.records import (
    CURRENT,
    ENTRY,
    HISTORY,
    IntegrityError,
    LineageStoreError,
    PointerMove,
    StoreDamageError,
    asset_label,
    checked_move,
    sha256_bytes,
    successor_entry,
)
from unified_ai.io.version_reader import VersionReader


class HistoryWalk(VersionReader):
    """Reads the pointer's history entries (see `LineageStore`)."""

    def pointer_head(self, asset_path: Sequence[str]) -> tuple[str, bytes] | None:
        """(entry name, entry bytes) CURRENT holds, if it is a readable chained pointer."""
        label = asset_label(asset_path)
        pointer = self.asset_dir(asset_path) / CURRENT
        try:
            data = self._read_optional(pointer, what="pointer", asset=label)
            if data is None:
                return None
            record = self._codec.decode(data, what="pointer", path=pointer, asset=label)
        except LineageStoreError:
            return None
        entry, head, text = record.get("entry"), record.get("head"), record.get("record")
        if not (isinstance(entry, str) and ENTRY.fullmatch(entry) and isinstance(text, str)):
            return None
        if head != sha256_bytes(text.encode()):
            return None
        return entry, text.encode()

    def history(self, asset_path: Sequence[str]) -> list[PointerMove]:
        """Every pointer move of an asset, oldest first."""
        return list(reversed(list(self.history_newest_first(asset_path))))

    def history_newest_first(self, asset_path: Sequence[str]) -> Iterator[PointerMove]:
        """Pointer moves, newest first, read lazily (callers usually need only a few).

        Each link of the hash chain is checked as it is read: an entry deleted, edited or
        inserted between two chained entries is an IntegrityError. Reading the newest k moves
        reads k entries, whatever the history's length (see `history_entries`).
        """
        for _, move in self.history_entries(asset_path):
            yield move

    def history_entries(
        self, asset_path: Sequence[str], *, before: str | None = None
    ) -> Iterator[tuple[str, PointerMove]]:
        """(entry name, move) of each pointer move, newest first, read lazily.

        The walk starts at the entry the pointer holds and follows each entry's
        `prev_entry_name` back, checking every entry's hash against the `prev_entry` of the
        entry after it: no listing. History is listed only where the walk cannot go on: the
        pointer is missing, damaged or older than the newest entry (replayed), or an entry was
        written before entries named their predecessor.

        Args:
            asset_path: The asset.
            before: An entry name (as yielded): start with the entry before it (the next page).

        Raises:
            IntegrityError: the chain is broken (an entry deleted, edited or inserted).
        """
        label = asset_label(asset_path)
        folder = self.asset_dir(asset_path) / HISTORY
        if before is not None:
            name, move = before, self.history_entry(asset_path, before)
        else:
            head = self._chain_head(asset_path)
            if head is None:
                yield from self._listed_entries(asset_path, below=None, expected=None)
                return
            name = head[0]
            # Its copy in history, when there is one, is what is read (as a listing would).
            copy = self._read_optional(folder / name, what="history entry", asset=label)
            move = self._move_of(asset_path, head[1] if copy is None else copy, folder / name)
            yield name, move
        while move.prev_entry != "":
            link = move.prev_entry_name
            if link is None:  # written before entries named their predecessor
                yield from self._listed_entries(asset_path, below=name, expected=move.prev_entry)
                return
            path = folder / link
            if link >= name:  # names sort by sequence: a link forward could loop
                raise IntegrityError(
                    f"{label}: history chain broken at {folder / name}: it names {link}, which "
                    "does not come before it; refusing it",
                    asset=label,
                    path=folder / name,
                )
            data = self._read_optional(path, what="history entry", asset=label)
            if data is None:
                raise IntegrityError(
                    f"{label}: history chain broken at {path}: the entry after it names it but "
                    "it is missing (an entry was deleted); refusing it",
                    asset=label,
                    path=path,
                )
            if move.prev_entry is not None and sha256_bytes(data) != move.prev_entry:
                raise self._broken_at(label, path)
            name, move = link, self._move_of(asset_path, data, path)
            yield name, move

    def history_entry(self, asset_path: Sequence[str], name: str) -> PointerMove:
        """The history entry called `name`, verified (from the pointer if its copy is missing)."""
        label = asset_label(asset_path)
        if not ENTRY.fullmatch(name):
            raise LineageStoreError(f"{label}: {name!r} names no history entry", asset=label)
        path = self.asset_dir(asset_path) / HISTORY / name
        data = self._read_optional(path, what="history entry", asset=label)
        if data is None:
            head = self.pointer_head(asset_path)
            if head is not None and head[0] == name:  # a move stopped before copying it
                data = head[1]
            else:
                raise StoreDamageError(
                    f"{label}: history entry {path} does not exist", asset=label, path=path
                )
        return self._move_of(asset_path, data, path)

    def _listed_entries(
        self, asset_path: Sequence[str], *, below: str | None, expected: str | None
    ) -> Iterator[tuple[str, PointerMove]]:
        """Entries listed from history, newest first (those before `below`, if given).

        `expected` is the hash the first of them must have (the `prev_entry` of the entry
        after it), None if unknown.
        """
        label = asset_label(asset_path)
        folder = self.asset_dir(asset_path) / HISTORY
        try:
            names = sorted((n for n in self.names(folder) if ENTRY.fullmatch(n)), reverse=True)
        except FileNotFoundError:
            names = []
        if below is not None:
            names = [n for n in names if n < below]
        else:
            head = self.pointer_head(asset_path)
            if head is not None and (not names or head[0] > names[0]):
                # A move stopped before copying its entry into history: CURRENT holds it.
                move = self._move_of(asset_path, head[1], folder / head[0])
                expected = move.prev_entry
                yield head[0], move
        for name in names:
            path = folder / name
            data, move = self.read_entry(asset_path, path)
            if expected is not None and (expected == "" or sha256_bytes(data) != expected):
                raise self._broken_at(label, path)
            expected = move.prev_entry
            yield name, move

    @staticmethod
    def _broken_at(label: str, path) -> IntegrityError:
        return IntegrityError(
            f"{label}: history chain broken at {path}: the entry after it records another hash "
            "(an entry was deleted, edited or inserted); refusing it",
            asset=label,
            path=path,
        )

    def _chain_head(self, asset_path: Sequence[str]) -> tuple[str, bytes] | None:
        """(name, bytes) of the newest history entry, from the pointer; None to list instead.

        The pointer holds the newest entry unless it is damaged, from before the chain, or an
        older pointer put back: one lookup (the entry that would follow it) tells.
        """
        head = self.pointer_head(asset_path)
        if head is None:
            return None
        name, data = head
        history = self.asset_dir(asset_path) / HISTORY
        if (history / successor_entry(name, sha256_bytes(data))).exists():
            return None
        return head

    def read_move(self, asset_path: Sequence[str], path) -> PointerMove:
        """One history entry, verified (signature, versions, owner)."""
        return self.read_entry(asset_path, path)[1]

    def read_entry(self, asset_path: Sequence[str], path) -> tuple[bytes, PointerMove]:
        """A history entry's stored bytes (what the chain hashes) and the verified entry."""
        label = asset_label(asset_path)
        data = self._read_optional(path, what="history entry", asset=label)
        if data is None:
            raise StoreDamageError(
                f"{label}: history entry {path} disappeared", asset=label, path=path
            )
        return data, self._move_of(asset_path, data, path)

    def _move_of(self, asset_path: Sequence[str], data: bytes, path) -> PointerMove:
        label = asset_label(asset_path)
        record = self._codec.decode(data, what="history entry", path=path, asset=label)
        return checked_move(record, asset_path, path)

    def history_entries_oldest_first(
        self, asset_path: Sequence[str], *, after: str | None = None
    ) -> Iterator[tuple[str, PointerMove]]:
        """(entry name, move) of each pointer move, oldest first, read lazily.

        History is listed (names only); entries are read as they are yielded, each checked
        against the hash the entry after it records. An entry the pointer holds whose copy is
        not in history yet comes last.

        Args:
            asset_path: The asset.
            after: An entry name (as yielded): start with the entry after it (the next page).

        Raises:
            IntegrityError: the chain is broken (an entry deleted, edited or inserted).
        """
        label = asset_label(asset_path)
        folder = self.asset_dir(asset_path) / HISTORY
        if after is not None and not ENTRY.fullmatch(after):
            raise LineageStoreError(f"{label}: {after!r} names no history entry", asset=label)
        try:
            names = sorted(n for n in self.names(folder) if ENTRY.fullmatch(n))
        except FileNotFoundError:
            names = []
        head = self.pointer_head(asset_path)
        if head is not None and (not names or head[0] > names[-1]):
            names.append(head[0])  # a move stopped before copying its entry into history
        start = 0
        if after is not None:
            start = next((i for i, n in enumerate(names) if n > after), len(names))
            start = max(start - 1, 0)  # re-read `after` to check the link to its successor
        older: bytes | None = None
        for index in range(start, len(names)):
            name = names[index]
            path = folder / name
            if head is not None and name == head[0]:
                data, move = head[1], self._move_of(asset_path, head[1], path)
            else:
                data, move = self.read_entry(asset_path, path)
            expected = move.prev_entry
            if expected == "" and index > 0:  # the first entry, yet one comes before it
                raise self._broken_at(label, folder / names[index - 1])
            if older is not None and expected is not None and sha256_bytes(older) != expected:
                raise self._broken_at(label, folder / names[index - 1])
            older = data
            if after is None or name > after:
                yield name, move
