"""Shadow Harness: shadow-test a Chat Completions → Responses migration.

The supported API, importable from here (loaded on first use, so ``import harness`` loads
neither the openai SDK nor httpx2)::

    from harness import load_scenario, run, RunOptions, analyze_run, render_report, gate_run
    from harness import ShadowClient, AsyncShadowClient, HarnessError

Each name also lives in its subpackage (``from harness.shadow import ShadowClient``); the
package map is ``docs/architecture.md``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: Label every output carries when the target is not OpenAI itself.
NOT_OPENAI_LABEL = "emulator — not OpenAI"

#: Public name → the module that defines it.
_EXPORTS = {
    "HarnessError": "harness.errors",
    "load_scenario": "harness.scenario.load",
    "Scenario": "harness.scenario.models",
    "RunOptions": "harness.runner.execute",
    "RunResult": "harness.runner.execute",
    "run": "harness.runner.execute",
    "analyze_run": "harness.analysis.analyze",
    "compare_runs": "harness.analysis.analyze",
    "render_report": "harness.report",
    "render_compare": "harness.report",
    "gate_run": "harness.gates.evaluate",
    "ShadowClient": "harness.shadow.client",
    "AsyncShadowClient": "harness.shadow.client",
    "ShadowConfig": "harness.shadow.config",
    "EmulatorProcess": "harness.emulator.server",
}

__all__ = [
    "NOT_OPENAI_LABEL",
    "AsyncShadowClient",
    "EmulatorProcess",
    "HarnessError",
    "RunOptions",
    "RunResult",
    "Scenario",
    "ShadowClient",
    "ShadowConfig",
    "__version__",
    "analyze_run",
    "compare_runs",
    "gate_run",
    "load_scenario",
    "render_compare",
    "render_report",
    "run",
]

if TYPE_CHECKING:
    from harness.analysis.analyze import analyze_run, compare_runs
    from harness.emulator.server import EmulatorProcess
    from harness.errors import HarnessError
    from harness.gates.evaluate import gate_run
    from harness.report import render_compare, render_report
    from harness.runner.execute import RunOptions, RunResult, run
    from harness.scenario.load import load_scenario
    from harness.scenario.models import Scenario
    from harness.shadow.client import AsyncShadowClient, ShadowClient
    from harness.shadow.config import ShadowConfig


def lazy_exports(
    module: str, exports: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for a package whose re-exports load when used (PEP 562)."""

    def getattr_(name: str) -> Any:
        where = exports.get(name)
        if where is None:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(where), name)
        globals_ = importlib.import_module(module).__dict__
        globals_[name] = value  # later look-ups skip __getattr__
        return value

    def dir_() -> list[str]:
        return sorted({*importlib.import_module(module).__dict__, *exports})

    return getattr_, dir_


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
