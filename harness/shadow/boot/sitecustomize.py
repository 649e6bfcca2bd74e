"""``harness record``'s hook: Python imports this at start-up when its directory is on
``PYTHONPATH`` (which ``harness record`` arranges for the command it runs).

When ``HARNESS_RECORD_OUT`` names a file, each SDK module defining a ``create`` to record
(Chat Completions, Responses) has its classes patched right after the application imports it —
not before: a process that never uses the SDK pays for this file only, and one that uses only
Chat Completions never loads the Responses module. Then the ``sitecustomize`` this one hides,
if any (a virtualenv's or a distribution's), runs as it would have. Anything that goes wrong
here is one line on stderr; the application runs regardless.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import Any

_HERE = os.path.dirname(os.path.abspath(__file__))
#: the directory holding the ``harness`` package this file belongs to
_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(_HERE)))
#: harness.shadow.recorder.RESOURCE_MODULES's names (spelt here so that start-up imports
#: nothing of harness; a test keeps the two equal)
WATCHED = frozenset(
    {"openai.resources.chat.completions.completions", "openai.resources.responses.responses"}
)


def _warn(message: str) -> None:
    print(f"harness record: {message}", file=sys.stderr)


def _patch(module: ModuleType, out: str) -> None:
    # The harness that started the command records, even when the application's environment
    # has another one (or none): its directory is on the path only for this import.
    added = "harness" not in sys.modules and _ROOT not in sys.path
    if added:
        sys.path.insert(0, _ROOT)
    try:
        from harness.shadow.recorder import patch_module

        patch_module(module, out)
    except Exception as exc:  # never the application's problem
        _warn(f"not recording {module.__name__} ({type(exc).__name__}: {exc})")
    finally:
        if added and _ROOT in sys.path:
            sys.path.remove(_ROOT)


class _OnImport(importlib.abc.MetaPathFinder):
    """Lets a watched module load as usual, then patches it; leaves once all have loaded."""

    def __init__(self, out: str, pending: set[str]) -> None:
        self.out = out
        self.pending = pending

    def find_spec(
        self, name: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if name not in self.pending:
            return None
        self.pending.discard(name)
        if not self.pending:
            sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        loader: Any = spec.loader if spec is not None else None
        if loader is None or not hasattr(loader, "exec_module"):
            _warn(f"cannot watch {name} (not loaded from files); its calls are not recorded")
            return None
        exec_module = loader.exec_module
        out = self.out

        def exec_then_patch(module: ModuleType) -> None:
            exec_module(module)
            _patch(module, out)

        loader.exec_module = exec_then_patch
        return spec


def _install() -> None:
    out = os.environ.get("HARNESS_RECORD_OUT")
    if not out:
        return
    pending = set(WATCHED)
    for name in WATCHED & sys.modules.keys():
        pending.discard(name)
        _patch(sys.modules[name], out)
    if pending:
        sys.meta_path.insert(0, _OnImport(out, pending))


def _chain() -> None:
    """Run the ``sitecustomize`` that would have run without this one."""
    others = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", others)
    if spec is None or spec.loader is None:
        return
    module = importlib.util.module_from_spec(spec)
    sys.modules["sitecustomize"] = module
    spec.loader.exec_module(module)


_install()
_chain()
