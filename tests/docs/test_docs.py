"""Every code block of README.md and docs/*.md runs as pasted, against the emulator.

Each section (``## …``) of a markdown file is read as a reader would go through it, in a
temporary directory of its own holding a copy of ``scenarios/``, ``cassettes/`` and ``docs/``
(sections run side by side): its shell blocks run in bash (``set -e``),
its Python blocks with ``python`` — or with ``pytest`` when they define a ``test_`` function,
as the reader would paste them into a test file. The environment points them at one shared
emulator (``zero`` profile): ``OPENAI_BASE_URL`` and a fake ``OPENAI_API_KEY`` for code that
builds ``openai.OpenAI()``, ``HARNESS_EMULATOR_PROFILE=zero`` for the emulator ``harness run``
starts. What the reader pastes is changed only by these rules:

- install commands (``pip install``) are left out: ``.ci/run`` runs them;
- ``<run-id>`` is what the reader fills in: the newest run in ``runs/``;
- a YAML block whose first line names a file (``# gates.yaml — …``) is saved as that file, as
  the text around it asks;
- ``harness emulator`` serves until stopped: it runs until it answers, then is stopped.

A block that cannot run here says why in the markdown, right before it
(``<!-- not-run: needs a real OpenAI key -->``); at most five do.

A tier, like ``tests/ray``: collected only with ``HARNESS_DOCS=1`` (``.ci/run`` sets it). Running
every documented command is ~40 harness processes — about 100 s of CPU, a third of the unit
suite's — so a plain ``pytest`` leaves it to CI.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from harness.emulator.server import EmulatorThread

REPO = Path(__file__).resolve().parents[2]
#: docs/distributed.md drives Ray: run in the Ray tier (HARNESS_RAY=1, which .ci/run sets) only,
#: like tests/ray itself — a Ray start costs minutes on a loaded 2-core machine
DOCS = [
    doc
    for doc in (REPO / "README.md", *sorted((REPO / "docs").glob("*.md")))
    if doc.name != "distributed.md" or os.environ.get("HARNESS_RAY") == "1"
]
MAX_NOT_RUN = 5
SHELL = {"bash", "sh", "shell", "console"}
#: the reader's copy of the repository: what the documented commands read
COPIED = ("scenarios", "cassettes", "docs")

_FENCE = re.compile(r"^(?P<indent> *)```(?P<lang>[\w-]*)\s*$")
_NOT_RUN = re.compile(r"^<!-- not-run: (?P<why>\S.*?) -->$")
_FILE_BLOCK = re.compile(r"^# (?P<name>[\w.-]+\.ya?ml)\b")
_INSTALL = re.compile(r"(?:python -m )?pip install [^&\n]*(?:&&\s*|$)")

#: Shell prelude: a `harness emulator` line serves until stopped — wait until it answers on the
#: port it was given, then stop it (SIGINT, as Ctrl-C would).
_PRELUDE = r"""set -eo pipefail
harness() {
    if [ "$1" != emulator ]; then command harness "$@"; return; fi
    local port=8787 prev=""
    for a in "$@"; do [ "$prev" = --port ] && port="$a"; prev="$a"; done
    command harness "$@" & local pid=$!
    python - "$port" <<'PY'
import sys, time, urllib.request
url = f"http://127.0.0.1:{sys.argv[1]}/v1/models"
for _ in range(1200):  # two minutes: a loaded machine starts it slowly
    try:
        urllib.request.urlopen(url, timeout=1).read()
        break
    except OSError:
        time.sleep(0.1)
else:
    sys.exit(f"harness emulator did not answer on {url}")
PY
    kill -INT "$pid"; wait "$pid" || true
}
"""


@dataclass(frozen=True)
class Block:
    doc: Path
    line: int  # of the opening fence
    lang: str
    text: str
    not_run: str | None
    section: str

    @property
    def where(self) -> str:
        return f"{self.doc.relative_to(REPO)}:{self.line}"


def blocks(doc: Path) -> Iterator[Block]:
    """The fenced code blocks of ``doc``, with the not-run reason written before each."""
    lines = doc.read_text(encoding="utf-8").splitlines()
    i = 0
    section = ""
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if m is None:
            if lines[i].startswith("## "):
                section = lines[i]
            i += 1
            continue
        indent, start = len(m["indent"]), i
        i += 1
        body = []
        while not re.match(r"^ *```\s*$", lines[i]):
            body.append(lines[i][indent:])
            i += 1
        before = next((x for x in reversed(lines[:start]) if x.strip()), "")
        why = _NOT_RUN.match(before.strip())
        text = "\n".join(body) + "\n"
        yield Block(doc, start + 1, m["lang"], text, why["why"] if why else None, section)
        i += 1


ALL = [b for doc in DOCS for b in blocks(doc)]


def _kind(b: Block) -> str | None:
    if b.lang in SHELL:
        return "shell"
    if b.lang == "python":
        return "python"
    return None


def _shell_script(b: Block) -> str | None:
    """The block as run: install commands left out (``.ci/run`` runs them), ``<run-id>`` filled
    in; None when nothing is left."""
    text = _INSTALL.sub("", b.text)
    if not any(x.strip() and not x.lstrip().startswith("#") for x in text.splitlines()):
        return None
    return _PRELUDE + text.replace("<run-id>", '"$(ls -t runs | head -n 1)"')


@dataclass(frozen=True)
class Outcome:
    block: Block
    returncode: int
    output: str
    seconds: float


def _run_section(doc: Path, section: str, work: Path, env: dict[str, str]) -> list[Outcome]:
    for name in COPIED:
        shutil.copytree(REPO / name, work / name)
    for b in ALL:  # files the document asks the reader to save, wherever it shows them
        m = _FILE_BLOCK.match(b.text)
        if b.doc == doc and b.lang in ("yaml", "yml") and m:
            (work / m["name"]).write_text(b.text, encoding="utf-8")
    mine = [b for b in ALL if b.doc == doc and b.section == section]
    out = []
    for n, b in enumerate(mine):
        if b.not_run is not None:
            continue
        kind = _kind(b)
        if kind == "shell":
            script = _shell_script(b)
            if script is None:
                continue
            argv = ["bash", "-c", script]
        elif kind == "python":
            path = work / f"test_doc_{n}.py"
            path.write_text(b.text, encoding="utf-8")
            argv = (
                [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", path.name]
                if re.search(r"^def test_", b.text, re.M)
                else [sys.executable, path.name]
            )
        else:
            continue
        began = time.perf_counter()
        try:
            done = subprocess.run(
                argv, cwd=work, env=env, capture_output=True, text=True, timeout=900, check=False
            )
        except subprocess.TimeoutExpired as exc:  # a hang is this block's failure, not the run's
            output = f"{exc.output or ''}{exc.stderr or ''}\ntimed out after {exc.timeout} s"
            out.append(Outcome(b, -1, output, time.perf_counter() - began))
            continue
        seconds = time.perf_counter() - began
        out.append(Outcome(b, done.returncode, done.stdout + done.stderr, seconds))
    return out


@pytest.fixture(scope="module")
def outcomes(
    emulator: EmulatorThread,
    tmp_path_factory: pytest.TempPathFactory,
    request: pytest.FixtureRequest,
) -> dict[Path, list[Outcome]]:
    """Every runnable block's outcome, by markdown file (those of the tests selected); each
    section in its own directory, side by side."""
    selected = {
        item.callspec.params["doc"]
        for item in request.session.items
        if "doc" in getattr(getattr(item, "callspec", None), "params", {})
    }
    bin_dir = str(Path(sys.executable).parent)
    env = {
        **os.environ,
        "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""),
        "PYTHONPATH": str(REPO),
        "OPENAI_BASE_URL": emulator.base_url,
        "OPENAI_API_KEY": "sk-emulator-not-openai",
        "HARNESS_EMULATOR_PROFILE": "zero",
        "NO_COLOR": "1",
    }
    units = sorted({(b.doc, b.section) for b in ALL if b.doc in selected})
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = [
            (doc, pool.submit(_run_section, doc, section, tmp_path_factory.mktemp(doc.stem), env))
            for doc, section in units
        ]
        out: dict[Path, list[Outcome]] = {doc: [] for doc in selected}
        for doc, f in futures:
            out[doc] += f.result()
        return out


@pytest.mark.slow
@pytest.mark.parametrize("doc", DOCS, ids=lambda d: str(d.relative_to(REPO)))
def test_every_block_runs_as_pasted(doc: Path, outcomes: dict[Path, list[Outcome]]) -> None:
    for o in outcomes[doc]:  # shown with -s / -rP: where the time goes
        print(f"{o.block.where}: {o.seconds:.1f} s")
    failed = [o for o in outcomes[doc] if o.returncode != 0]
    assert not failed, "\n\n".join(
        f"{o.block.where} exited {o.returncode}:\n{o.block.text}\n{o.output[-3000:]}"
        for o in failed
    )


def test_few_blocks_are_marked_not_runnable_and_each_says_why() -> None:
    marked = [b for b in ALL if b.not_run is not None]
    assert len(marked) <= MAX_NOT_RUN, [b.where for b in marked]
    assert all(len(b.not_run or "") >= 10 for b in marked)


def test_every_command_block_is_labelled_so_it_is_run() -> None:
    """An unlabelled block of commands would escape this test."""
    commands = re.compile(r"^(harness|python|pip|pytest) ", re.M)
    unlabelled = [b.where for b in ALL if not b.lang and commands.search(b.text)]
    assert not unlabelled, f"label these blocks ```bash: {unlabelled}"


def test_the_quickstart_and_the_shadow_examples_are_run() -> None:
    """The README's main command, and the ShadowClient examples with their ``__main__``
    guard (the sidecar's spawn imports the script: without it, a multiprocessing traceback)."""
    run = [b for b in ALL if b.not_run is None and _kind(b) is not None]
    assert any(
        "harness run scenarios/quickstart.yaml" in (_shell_script(b) or "")
        for b in run
        if b.doc.name == "README.md"
    )
    shadow = [b for b in run if "ShadowClient(" in b.text]
    assert {b.doc.name for b in shadow} == {"README.md", "shadow.md"}
    assert all('if __name__ == "__main__":' in b.text for b in shadow)
