"""The documentation's ShadowClient examples run as pasted (issue 19): the sidecar is spawned,
so an example without the ``if __name__ == "__main__":`` guard crashes it."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
_BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def _examples() -> list[tuple[str, str]]:
    found = []
    for doc in DOCS:
        for n, code in enumerate(_BLOCK.findall(doc.read_text(encoding="utf-8"))):
            if re.search(r"\bShadowClient\(", code):
                found.append((f"{doc.relative_to(REPO)}#{n}", code))
    return found


EXAMPLES = _examples()


def test_the_docs_have_shadow_examples() -> None:
    assert {name.split("#")[0] for name, _ in EXAMPLES} >= {"README.md", "docs/shadow.md"}


@pytest.mark.parametrize(("name", "code"), EXAMPLES, ids=[name for name, _ in EXAMPLES])
def test_a_shadow_example_runs_as_pasted(
    name: str, code: str, tmp_path: Path, emulator_url: str
) -> None:
    script = tmp_path / "app.py"
    script.write_text(code, encoding="utf-8")
    env = {**os.environ, "OPENAI_BASE_URL": emulator_url, "OPENAI_API_KEY": "sk-test"}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr and "did not" not in done.stderr, done.stderr
    assert done.stdout.strip(), "the example prints the reply"
    (stats,) = (tmp_path / "runs" / "stage-10pct").glob("shadow-stats-*.json")
    counters = json.loads(stats.read_text(encoding="utf-8"))
    # the examples send their traffic in a loop (`for user in range(40)`): every call counted
    loop = re.search(r"for \w+ in range\((\d+)\)", code)
    assert counters["calls"] == (int(loop[1]) if loop else 1), counters
    assert counters["sidecar_crashes"] == counters["dropped_sidecar_down"] == 0, counters
