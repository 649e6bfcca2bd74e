"""``harness record``'s hook: Python imports this at start-up when its directory is on
``PYTHONPATH`` (which ``harness record`` arranges for the command it runs).

When ``HARNESS_RECORD_OUT`` names a file, the SDK's ``create`` methods start recording into it
as soon as the application imports ``openai`` (not before: a process that never uses the SDK
pays nothing but this file). Then the ``sitecustomize`` this one hides, if any (a virtualenv's
or a distribution's), runs as it would have. Anything that goes wrong here is one line on
stderr; the application runs regardless.
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


def _warn(message: str) -> None:
    print(f"harness record: {message}", file=sys.stderr)


def _start(out: str) -> None:
    # The harness that started the command records, even when the application's environment
    # has another one (or none): its directory is on the path only for this import.
    added = "harness" not in sys.modules and _ROOT not in sys.path
    if added:
        sys.path.insert(0, _ROOT)
    try:
        from harness.shadow.recorder import enable_recording

        enable_recording(out)
    except Exception as exc:  # never the application's problem
        _warn(f"not recording in process {os.getpid()} ({type(exc).__name__}: {exc})")
    finally:
        if added and _ROOT in sys.path:
            sys.path.remove(_ROOT)


class _OnOpenAIImport(importlib.abc.MetaPathFinder):
    """Lets ``openai`` load as usual, then starts recording."""

    def __init__(self, out: str) -> None:
        self.out = out

    def find_spec(
        self, name: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if name != "openai":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        loader: Any = spec.loader if spec is not None else None
        if loader is None or not hasattr(loader, "exec_module"):
            return spec
        exec_module = loader.exec_module
        out = self.out

        def exec_then_record(module: ModuleType) -> None:
            exec_module(module)
            _start(out)

        loader.exec_module = exec_then_record
        return spec


def _install() -> None:
    out = os.environ.get("HARNESS_RECORD_OUT")
    if not out:
        return
    if "openai" in sys.modules:
        _start(out)
    else:
        sys.meta_path.insert(0, _OnOpenAIImport(out))


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
