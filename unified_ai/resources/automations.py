"""Switches that pause a project's automations (set by `unified-ai impact --pause`)."""

import json
from pathlib import Path

import dagster as dg

from unified_ai.io.store import utc_now


class Automations(dg.ConfigurableResource):
    """Pause flags, one small file per paused sensor under `root`.

    Attributes:
        root: Local folder for the flags (under `UNIFIED_AI_HOME`).
    """

    root: str

    def _flag(self, sensor: str) -> Path:
        return Path(self.root) / f"{sensor}.json"

    def paused(self, sensor: str) -> dict | None:
        """The pause record of `sensor`, or None when it runs."""
        flag = self._flag(sensor)
        return json.loads(flag.read_text()) if flag.exists() else None

    def pause(self, sensor: str, reason: str) -> None:
        flag = self._flag(sensor)
        flag.parent.mkdir(parents=True, exist_ok=True)
        flag.write_text(json.dumps({"reason": reason, "at": utc_now()}))

    def resume(self, sensor: str) -> bool:
        flag = self._flag(sensor)
        if flag.exists():
            flag.unlink()
            return True
        return False
