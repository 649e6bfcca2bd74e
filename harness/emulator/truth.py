"""The truth log: one JSON line per request with the delays applied and server-observed times.

Only tests and benchmarks read it; nothing in it is ever put in a reply, so a harness cannot
copy ground truth instead of measuring. Lines are flushed one by one.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TextIO

from harness.errors import HarnessError


class TruthLog:
    """Appends records to a JSONL file (``None``: records are dropped)."""

    def __init__(self, path: Path | None) -> None:
        self._fh: TextIO | None = None
        if path is not None:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                self._fh = path.open("a", encoding="utf-8")
            except OSError as exc:
                raise HarnessError(f"cannot write the truth log {path}: {exc.strerror}") from None

    @property
    def enabled(self) -> bool:
        """Whether records are kept."""
        return self._fh is not None

    def write(self, record: dict[str, Any]) -> None:
        """Append one record and flush it."""
        if self._fh is not None:
            self._fh.write(json.dumps(record, separators=(",", ":")) + "\n")
            self._fh.flush()

    def close(self) -> None:
        """Close the file."""
        if self._fh is not None:
            self._fh.close()
            self._fh = None


def read_truth(path: Path) -> list[dict[str, Any]]:
    """All records of a truth log (for tests and benchmarks)."""
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]
