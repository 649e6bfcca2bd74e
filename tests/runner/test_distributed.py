"""harness run --engine ray, without a cluster: sharding, shares, nonces, and the one-line errors
that must come before anything is written. The runs on a real cluster are in tests/ray."""

from __future__ import annotations

import shutil
import socket
import sys
from pathlib import Path

import pytest

from harness.cli.app import main
from harness.errors import TargetError
from harness.runner.distributed import INSTALL_HINT, shard, share, with_nonce
from harness.runner.plan import build_plan, nonce_prefix
from harness.scenario.load import load_scenario

REPO = Path(__file__).resolve().parents[2]
QUICK = REPO / "scenarios" / "quickstart.yaml"


def _plan(repeats: int = 5, seed: int = 1) -> list:  # type: ignore[type-arg]
    return build_plan(load_scenario(QUICK), repeats=repeats, seed=seed).conversations


@pytest.mark.parametrize("workers", [1, 2, 3, 7])
def test_shards_hold_every_conversation_once_in_plan_order(workers: int) -> None:
    plan = _plan()
    shards = shard(plan, workers)
    assert len(shards) == workers
    flat = [c.conversation for s in shards for c in s]
    assert sorted(flat) == sorted(c.conversation for c in plan)
    position = {c.conversation: i for i, c in enumerate(plan)}
    for part in shards:
        assert [position[c.conversation] for c in part] == sorted(
            position[c.conversation] for c in part
        )


def test_a_prompt_repeat_block_stays_on_one_worker_with_its_planned_arm_order() -> None:
    plan = _plan()
    shards = shard(plan, 2)
    where = {c.conversation: i for i, s in enumerate(shards) for c in s}
    blocks: dict[tuple[str, int], list[str]] = {}
    for conv in plan:
        blocks.setdefault((conv.prompt_id, conv.repeat), []).append(conv.conversation)
    for convs in blocks.values():
        assert len({where[c] for c in convs}) == 1
        part = [c.conversation for c in shards[where[convs[0]]]]
        start = part.index(convs[0])
        assert part[start : start + len(convs)] == convs  # interleaving as planned


def test_shards_are_balanced_by_requests() -> None:
    shards = shard(_plan(repeats=6), 2)
    loads = [sum(len(c.steps) for c in s) for s in shards]
    # 2 prompts x 6 repeats, each block 3 arms x 2 turns: 36 requests a side
    assert loads == [36, 36]


@pytest.mark.parametrize(
    ("total", "workers", "parts"),
    [(8, 2, [4, 4]), (5, 2, [3, 2]), (1, 2, [1, 1]), (7, 3, [3, 2, 2])],
)
def test_concurrency_shares_add_up_and_none_is_zero(
    total: int, workers: int, parts: list[int]
) -> None:
    assert [share(total, workers, i) for i in range(workers)] == parts


def test_a_fresh_nonce_replaces_the_planned_one_everywhere() -> None:
    conv = _plan(repeats=1)[0]
    assert conv.nonce is not None
    old = nonce_prefix(conv.nonce)
    assert old in conv.model_dump_json()
    redone = with_nonce(conv, "0badc0de")
    text = redone.model_dump_json()
    assert old not in text and text.count(nonce_prefix("0badc0de")) == conv.model_dump_json().count(
        old
    )
    assert redone.nonce == "0badc0de" and redone.steps[1:] == conv.steps[1:]
    assert with_nonce(conv, None) is conv


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _one_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def test_without_ray_engine_ray_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray → ImportError
    code = main(["run", str(QUICK), "--engine", "ray", "--out", str(tmp_path), "--quiet"])
    assert code == 2
    assert _one_line(capsys) == f"harness: error: {INSTALL_HINT}"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("form", ["127.0.0.1:{port}", "ray://127.0.0.1:{port}"])
def test_an_unreachable_ray_address_is_one_line_and_starts_nothing(
    form: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    address = form.format(port=_closed_port())
    code = main(
        [
            "run",
            str(QUICK),
            "--engine",
            "ray",
            "--ray-address",
            address,
            "--out",
            str(tmp_path),
            "--quiet",
        ]
    )
    assert code == 2
    line = _one_line(capsys)
    assert f"--ray-address {address}: cannot reach" in line and "ray start --head" in line
    assert list(tmp_path.iterdir()) == []


def test_a_malformed_ray_address_names_the_forms(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "run",
            str(QUICK),
            "--engine",
            "ray",
            "--ray-address",
            "head-node",
            "--out",
            str(tmp_path),
            "--quiet",
        ]
    )
    assert code == 2
    assert "not auto, HOST:PORT or ray://HOST:PORT" in _one_line(capsys)


def test_resume_on_an_unreachable_cluster_leaves_the_run_as_it_was(
    quickstart_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = tmp_path / quickstart_run.name
    shutil.copytree(quickstart_run, run_dir)
    # an unfinished run: its last conversation torn, as after a crash
    obs = run_dir / "observations.jsonl"
    lines = obs.read_text(encoding="utf-8").splitlines(keepends=True)
    obs.write_text("".join(lines[:-1]), encoding="utf-8")
    before = {p.name: p.read_bytes() for p in run_dir.iterdir()}
    code = main(
        [
            "run",
            "--resume",
            str(run_dir),
            "--engine",
            "ray",
            "--ray-address",
            f"127.0.0.1:{_closed_port()}",
            "--quiet",
        ]
    )
    assert code == 2 and "cannot reach" in _one_line(capsys)
    assert {p.name: p.read_bytes() for p in run_dir.iterdir()} == before


@pytest.mark.parametrize("flag", [["--workers", "2"], ["--ray-address", "auto"]])
def test_ray_flags_without_engine_ray_are_refused(
    flag: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", str(QUICK), *flag, "--out", str(tmp_path), "--quiet"]) == 2
    assert "need --engine ray" in _one_line(capsys)
    assert list(tmp_path.iterdir()) == []


def test_engine_ray_cannot_record_cassettes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "run",
            str(QUICK),
            "--engine",
            "ray",
            "--record",
            str(tmp_path / "c"),
            "--out",
            str(tmp_path / "runs"),
            "--quiet",
        ]
    )
    assert code == 2 and "cannot record or replay" in _one_line(capsys)
    assert not (tmp_path / "runs").exists()


class _FlakyRay:
    """A stand-in ``ray`` whose Ray Client server fails to start ``failures`` times."""

    def __init__(self, failures: int) -> None:
        self.failures, self.inits, self.shutdowns = failures, 0, 0

    def is_initialized(self) -> bool:
        return False

    def init(self, **kwargs: object) -> None:
        self.inits += 1
        if self.inits <= self.failures:
            raise ConnectionAbortedError("Initialization failure from server:\nTraceback …")

    def shutdown(self) -> None:
        self.shutdowns += 1


@pytest.mark.parametrize(("failures", "connects"), [(0, True), (2, True), (3, False)])
def test_a_ray_client_server_that_fails_to_start_is_retried_then_one_line(
    failures: int, connects: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    import harness.runner.distributed as distributed

    fake = _FlakyRay(failures)
    monkeypatch.setattr(distributed, "_ray", lambda: fake)
    monkeypatch.setattr(distributed, "_check_reachable", lambda address: None)
    monkeypatch.setattr(distributed.time, "sleep", lambda s: None)
    if connects:
        assert distributed.connect("ray://127.0.0.1:10001", 2) is True
        assert (fake.inits, fake.shutdowns) == (failures + 1, failures)
    else:
        with pytest.raises(TargetError, match=r"^--ray-address ray://127\.0\.0\.1:10001: cannot "):
            distributed.connect("ray://127.0.0.1:10001", 2)
        assert fake.inits == distributed.CLIENT_ATTEMPTS == 3
