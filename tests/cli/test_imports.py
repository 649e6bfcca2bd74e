"""Commands that never send must never load the SDK: ``harness analyze``, ``report``, ``gate``
and ``compare`` run in a subprocess on a small run directory, which then lists the modules it
loaded. Building the parser must stay light too (it imports every command module)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness.analysis.analyze import (
    SyntheticProfile,
    analyze_run,
    synthetic_observations,
    write_summary,
    write_synthetic_run,
)

#: runs the command, then writes the loaded modules of interest, and which module first
#: imported each SDK package, to the file $LOADED_TO
PROBE = """\
import json, os, sys

importers = {}

class Watch:
    def find_spec(self, name, path=None, target=None):
        if name in ("openai", "httpx2") and name not in importers:
            f = sys._getframe(1)
            while f and f.f_code.co_filename.startswith(("<frozen", "<string>")):
                f = f.f_back
            importers[name] = f.f_globals.get("__name__") if f else None
        return None

sys.meta_path.insert(0, Watch())
if sys.argv[1] == "--import-only":  # the probe's own check: import one module, run nothing
    __import__(sys.argv[2])
    code = 0
else:
    from harness.cli.app import main
    code = main(sys.argv[1:])
watched = ("openai", "httpx2", "harness.runner", "genai_prices")
loaded = sorted(m for m in sys.modules if m.startswith(watched))
with open(os.environ["LOADED_TO"], "w") as fh:
    json.dump({"code": code, "loaded": loaded, "importers": importers}, fh)
"""

SDK = ("openai", "httpx2", "genai_prices")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small analysed run (summary.json written, so report and gate do not analyse)."""
    root = tmp_path_factory.mktemp("imports")
    run = write_synthetic_run(
        root / "runs" / "small",
        synthetic_observations(SyntheticProfile(), repeats=3, run_id="small"),
    )
    write_summary(run, analyze_run(run, resamples=50))
    return run


def _loaded(args: list[str], cwd: Path) -> tuple[list[str], dict[str, str]]:
    out = cwd / "loaded.json"
    env = {**os.environ, "LOADED_TO": str(out)}
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(out.read_text(encoding="utf-8"))
    assert result["code"] == 0, proc.stderr
    return result["loaded"], result["importers"]


def _sdk(args: list[str], cwd: Path) -> dict[str, str]:
    """SDK packages the command loaded, with the module that imported each.

    genai-prices imports httpx2 (for its price updater) at its top level, so analysis must
    price from what the run recorded in meta.json and never import genai-prices."""
    loaded, importers = _loaded(args, cwd)
    assert "harness.runner.execute" not in loaded
    return {pkg: importers.get(pkg, "?") for pkg in SDK if pkg in {m.split(".")[0] for m in loaded}}


def test_analyze_loads_no_sdk(run_dir: Path, tmp_path: Path) -> None:
    copy = shutil.copytree(run_dir, tmp_path / "run")
    (copy / "summary.json").unlink()
    assert _sdk(["analyze", str(copy), "--quiet", "--resamples", "50"], tmp_path) == {}


def test_report_loads_no_sdk(run_dir: Path, tmp_path: Path) -> None:
    loaded, _ = _loaded(["report", str(run_dir), "--out", str(tmp_path / "r")], tmp_path)
    assert loaded == []  # with summary.json present: no SDK, no httpx2, not even the runner


def test_report_that_analyses_first_loads_no_sdk(run_dir: Path, tmp_path: Path) -> None:
    copy = shutil.copytree(run_dir, tmp_path / "run")
    (copy / "summary.json").unlink()
    assert _sdk(["report", str(copy), "--out", str(tmp_path / "r")], tmp_path) == {}


def test_gate_loads_no_sdk(run_dir: Path, tmp_path: Path) -> None:
    assert _sdk(["gate", str(run_dir), "--reports", str(tmp_path / "r")], tmp_path) == {}


def test_compare_loads_no_sdk(run_dir: Path, tmp_path: Path) -> None:
    args = ["compare", str(run_dir), str(run_dir), "--out", str(tmp_path / "c")]
    assert _sdk(args, tmp_path) == {}


def test_history_loads_no_sdk(run_dir: Path, tmp_path: Path) -> None:
    runs = shutil.copytree(run_dir.parent, tmp_path / "runs")
    assert _sdk(["analyze", str(runs / "small"), "--quiet", "--resamples", "50"], tmp_path) == {}
    assert (tmp_path / "history" / "runs" / "small.parquet").is_file()
    assert _sdk(["history", "--runs", str(runs)], tmp_path) == {}


def test_the_probe_names_the_harness_module_that_imported_the_sdk(tmp_path: Path) -> None:
    """The checks above can fail: a module that sends is caught with its name."""
    found = _sdk(["--import-only", "harness.transport.client"], tmp_path)
    assert found == {"openai": "harness.transport.client", "httpx2": "harness.transport.client"}


def test_building_the_parser_loads_no_command_work() -> None:
    """Every command module is imported to build the parser: none may load its work then."""
    code = (
        "import sys\n"
        "from harness.cli.app import build_parser\n"
        "build_parser()\n"
        "heavy = ('openai', 'httpx2', 'rich', 'numpy', 'pydantic', 'yaml', 'harness.runner',\n"
        "         'harness.analysis', 'harness.report', 'harness.gates.evaluate')\n"
        "print(sorted({m for m in sys.modules if m.startswith(heavy)}))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert proc.stdout == "[]\n"
