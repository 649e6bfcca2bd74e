"""The source formats ``harness import`` reads, and the ``--defaults`` file."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.importers.source import SourceItem

__all__ = ["FORMATS", "load_defaults", "open_source"]

#: the file formats (``stored`` reads a server, not a file: :mod:`harness.importers.stored`)
FORMATS = ("batch", "finetune", "otel")


def load_defaults(path: Path) -> dict[str, Any]:
    """A ``--defaults`` file: a YAML/JSON mapping of chat parameters (one-line HarnessError)."""
    from harness.scenario.yaml_safe import read_settings

    example = "write a mapping such as 'model: gpt-4.1-mini'"
    data = read_settings(path, f"--defaults {path}", example)
    if not isinstance(data, dict) or not all(isinstance(k, str) for k in data):
        raise HarnessError(
            f"--defaults {path}: expected a mapping of chat parameters, such as "
            "'model: gpt-4.1-mini'"
        )
    if "messages" in data:
        raise HarnessError(f"--defaults {path}: messages: defaults hold parameters, not messages")
    model = data.get("model")
    if model is not None and not (isinstance(model, str) and model):
        raise HarnessError(f"--defaults {path}: model: expected a model name such as gpt-4.1-mini")
    return data


def open_source(
    fmt: str, path: Path, defaults: dict[str, Any]
) -> tuple[Iterable[SourceItem], dict[str, str]]:
    """The items of ``path`` read as ``fmt``, and the fields the format cannot carry (for the
    otel format the mapping fills as spans are read: it depends on the dialects met)."""
    if not path.is_file():
        raise HarnessError(f"{path}: no such file — give a {fmt} file to import")
    if fmt == "finetune":
        from harness.importers.finetune import NOT_CARRIED, read_finetune

        if "model" not in defaults:
            raise HarnessError(
                f"{path}: fine-tuning examples name no model — pass --defaults FILE "
                "holding 'model: NAME'"
            )
        return read_finetune(path), dict(NOT_CARRIED)
    if fmt == "otel":
        from harness.importers.otel import read_otel

        not_carried: dict[str, str] = {}
        return read_otel(path, not_carried), not_carried
    if fmt == "batch":
        from harness.importers.batch import read_batch

        carried: dict[str, str] = {}
        return read_batch(path, carried), carried
    raise HarnessError(f"import {fmt}: unknown format — use one of {', '.join(FORMATS)}")
