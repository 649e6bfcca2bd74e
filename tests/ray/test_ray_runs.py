"""harness run --engine ray on a real 2-node Ray cluster against the process-based emulator:
the same planned = observed, cold/warm labels and summary structure as a single-process run;
a worker killed mid-run loses and duplicates nothing; --resume; a Ray version mismatch."""

from __future__ import annotations

import json
import os
import shutil
import signal
import threading
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from harness.analysis.analyze import analyze_run
from harness.cli.app import main
from harness.errors import HarnessError
from harness.records import Observation
from harness.rundir import OBSERVATIONS_FILE, read_meta, read_observations
from harness.runner.distributed import ABANDONED_FILE, DistributedInfo, RayEngine, _Driver
from harness.runner.execute import RunOptions, RunResult, run
from harness.runner.plan import build_plan
from harness.scenario.load import load_scenario

if TYPE_CHECKING:
    from conftest import RayCluster  # tests/ray/conftest.py

REPO = Path(__file__).resolve().parents[2]
QUICK = REPO / "scenarios" / "quickstart.yaml"
REPEATS = 4
SEED = 11


def _options(out: Path, **extra: Any) -> RunOptions:
    return RunOptions(
        out=out, repeats=REPEATS, seed=SEED, progress=False, emulator_profile="zero", **extra
    )


def _planned() -> set[tuple[str, str, str, int, int]]:
    plan = build_plan(load_scenario(QUICK), repeats=REPEATS, seed=SEED)
    return {
        (c.scenario, c.prompt_id, c.arm, c.repeat, turn + 1)
        for c in plan.conversations
        for turn in range(len(c.steps))
    }


def _observed(run_dir: Path) -> list[Observation]:
    return list(read_observations(run_dir / OBSERVATIONS_FILE))


def _keys_once(obs: list[Observation]) -> set[tuple[str, str, str, int, int]]:
    counts = Counter(o.key for o in obs)
    assert max(counts.values()) == 1, [k for k, n in counts.items() if n > 1]
    return set(counts)


def _shape(value: Any) -> Any:
    """A summary's structure: its keys and list lengths, without the figures."""
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items() if k not in ("warnings", "run_id")}
    if isinstance(value, list):
        return [_shape(v) for v in value]
    return None


@pytest.fixture(scope="module")
def single(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return run([QUICK], _options(tmp_path_factory.mktemp("single"))).run_dir


@pytest.fixture(scope="module")
def distributed(ray_cluster: RayCluster, tmp_path_factory: pytest.TempPathFactory) -> Path:
    with RayEngine(ray_cluster.address, workers=2) as engine:
        result = run([QUICK], _options(tmp_path_factory.mktemp("ray")), engine=engine)
    assert result.fatal is None and not result.interrupted
    return result.run_dir


def test_a_distributed_run_observes_the_plan_like_a_single_process_run(
    single: Path, distributed: Path
) -> None:
    one, many = _observed(single), _observed(distributed)
    assert _keys_once(many) == _keys_once(one) == _planned()
    assert {o.key: o.cold for o in many} == {o.key: o.cold for o in one}
    assert all(o.ok for o in many)
    assert sorted(o.order for o in many) == list(range(len(many)))
    assert _shape(analyze_run(distributed).model_dump(mode="json")) == _shape(
        analyze_run(single).model_dump(mode="json")
    )


def test_workers_on_both_nodes_each_keep_whole_conversations(distributed: Path) -> None:
    meta = read_meta(distributed)
    assert meta.distributed is not None
    info = DistributedInfo.model_validate(meta.distributed)
    assert len({w.node_id for w in info.workers}) == 2  # one worker on each node
    assert not info.redone and not (distributed / ABANDONED_FILE).exists()
    obs = _observed(distributed)
    assert {o.worker for o in obs} == {"ray-0", "ray-1"}
    assert all(o.host for o in obs)
    by_conv: dict[str, set[str | None]] = {}
    for o in obs:
        by_conv.setdefault(o.conversation, set()).add(o.worker)
    assert all(len(workers) == 1 for workers in by_conv.values())
    assert {w.id: w.observations for w in info.workers} == dict(Counter(o.worker for o in obs))
    assert info.driver_cpu_ms_per_observation is not None


def _kill_when_mid_conversation(
    worker: str, after: int, killed: dict[str, Any], sig: int = signal.SIGKILL
) -> None:
    """Send ``sig`` to ``worker``'s process once it has recorded an odd number ≥ ``after`` of
    requests: the first turn of a conversation is out, its second not yet."""
    import ray

    deadline = time.monotonic() + 120
    handle = None
    while handle is None and time.monotonic() < deadline:
        try:
            names = ray.util.list_named_actors() if ray.is_initialized() else []
            name = next((n for n in names if n.endswith(f"-{worker}")), None)
            handle = ray.get_actor(name) if name else None
        except Exception:  # the driver is still connecting
            handle = None
        time.sleep(0.01)
    assert handle is not None, f"{worker} never started"
    pid = ray.get(handle.hello.remote())["pid"]
    while time.monotonic() < deadline:
        sent = ray.get(handle.sent.remote())
        if sent >= after and sent % 2 == 1:
            os.kill(pid, sig)
            killed["sent"] = sent
            return
        time.sleep(0.005)


def _kill_holding_a_half_conversation(worker: str, killed: dict[str, Any]) -> Any:
    """A ``_Driver._arrive`` that SIGKILLs ``worker`` the moment the driver holds turn 1 of one
    of its conversations (turn 2 not yet in), once it has finished one: its dead attempt then
    has records to set apart, whatever the machine's timing."""
    real_arrive = _Driver._arrive

    def arrive(self: Any, arrived: list[Any]) -> None:
        real_arrive(self, arrived)
        if "sent" in killed:
            return
        slot = next(s for s in self.slots if s.info.id == worker)
        held = [c for c in slot.assigned if self.buffers.get(c)]
        if slot.alive and held and self.written[worker] >= 2:
            sent = self.ray.get(slot.handle.sent.remote())  # the worker's own count
            os.kill(slot.info.pid, signal.SIGKILL)
            killed["sent"] = sent

    return arrive


@pytest.fixture(scope="module")
def killed(
    ray_cluster: RayCluster, tmp_path_factory: pytest.TempPathFactory
) -> tuple[RunResult, dict[str, Any]]:
    facts: dict[str, Any] = {}
    # paced (5 requests/s a worker) so turn 1 of a conversation reaches the driver alone
    with (
        pytest.MonkeyPatch.context() as mp,
        RayEngine(ray_cluster.address, workers=2) as engine,
    ):
        mp.setattr(_Driver, "_arrive", _kill_holding_a_half_conversation("ray-1", facts))
        result = run([QUICK], _options(tmp_path_factory.mktemp("kill"), rps=10), engine=engine)
    assert "sent" in facts, "the worker was not killed mid-run"
    return result, facts


def test_a_killed_worker_loses_and_duplicates_nothing(
    killed: tuple[RunResult, dict[str, Any]],
) -> None:
    result, facts = killed
    run_dir = result.run_dir
    obs = _observed(run_dir)
    assert _keys_once(obs) == _planned()
    assert all(o.ok for o in obs) and result.fatal is None
    meta = read_meta(run_dir)
    assert meta.finished_at is not None
    info = DistributedInfo.model_validate(meta.distributed)
    dead = [w for w in info.workers if w.died]
    assert [w.id for w in dead] == ["ray-1"]
    # what it finished before dying stays; what it left is redone elsewhere, whole
    redone = {r.conversation for r in info.redone}
    assert redone and all(r.dead_worker == "ray-1" and r.worker != "ray-1" for r in info.redone)
    finished_by_dead = {o.conversation for o in obs if o.worker == "ray-1"}
    assert finished_by_dead and not finished_by_dead & redone
    assert 2 * len(finished_by_dead) < facts["sent"] + 1
    for o in obs:
        if o.conversation in redone:
            assert o.worker != "ray-1"
    # a fresh nonce per redone conversation, recorded, and its turn 1 truly cold
    for r in info.redone:
        assert r.nonce != r.nonce_before and meta.cache_nonces[r.conversation] == r.nonce
    redone_first = [o for o in obs if o.conversation in redone and o.turn == 1]
    assert redone_first and all(
        o.cold and o.usage and o.usage.cached_tokens == 0 for o in redone_first
    )


def test_the_dead_attempt_is_kept_apart_and_never_analysed(
    killed: tuple[RunResult, dict[str, Any]],
) -> None:
    result, _ = killed
    run_dir = result.run_dir
    info = DistributedInfo.model_validate(read_meta(run_dir).distributed)
    redone = {r.conversation for r in info.redone}
    # the worker died holding a half conversation: its turn 1 is set apart, never analysed
    abandoned = [json.loads(line) for line in (run_dir / ABANDONED_FILE).read_text().splitlines()]
    assert abandoned and sum(r.abandoned_observations for r in info.redone) == len(abandoned)
    assert all(a["worker"] == "ray-1" and a["conversation"] in redone for a in abandoned)
    kept = {(o.conversation, o.turn): o.worker for o in _observed(run_dir)}
    assert all(kept[(a["conversation"], a["turn"])] != "ray-1" for a in abandoned)
    summary = analyze_run(run_dir)
    assert summary.observations == len(_planned())


def test_a_silent_worker_is_killed_and_its_work_redone(
    ray_cluster: RayCluster, tmp_path: Path
) -> None:
    """A stopped (SIGSTOP) worker is alive to Ray but answers no poll: after ``silent_s`` the
    driver kills it and redoes its unfinished conversations."""
    facts: dict[str, Any] = {}
    stopper = threading.Thread(
        target=_kill_when_mid_conversation, args=("ray-0", 3, facts, signal.SIGSTOP)
    )
    stopper.start()
    with RayEngine(ray_cluster.address, workers=2, silent_s=2.0) as engine:
        result = run([QUICK], _options(tmp_path, rps=10), engine=engine)
    stopper.join(timeout=5)
    assert "sent" in facts, "the worker was not stopped mid-run"
    obs = _observed(result.run_dir)
    assert _keys_once(obs) == _planned() and all(o.ok for o in obs)
    info = DistributedInfo.model_validate(read_meta(result.run_dir).distributed)
    (dead,) = [w for w in info.workers if w.died]
    assert dead.id == "ray-0" and dead.death == "silent for 2 s: killed"
    assert info.redone and all(r.worker == "ray-1" for r in info.redone)


def test_resume_completes_a_torn_distributed_run_keeping_redone_nonces(
    ray_cluster: RayCluster, killed: tuple[RunResult, dict[str, Any]], tmp_path: Path
) -> None:
    source = killed[0].run_dir
    run_dir = tmp_path / source.name
    shutil.copytree(source, run_dir)
    before = read_meta(run_dir)
    redone = {r.conversation for r in DistributedInfo.model_validate(before.distributed).redone}
    path = run_dir / OBSERVATIONS_FILE
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    torn = {json.loads(line)["conversation"] for line in lines[-5:]}
    assert torn & redone  # the redone conversations were written last: the tear hits them
    path.write_text("".join(lines[:-5]), encoding="utf-8")  # a crash mid-write
    # through Ray Client (ray://), as from a laptop outside the cluster
    with RayEngine(ray_cluster.client, workers=2) as engine:
        result = run([], RunOptions(resume=run_dir, progress=False), engine=engine)
    assert result.run_dir == run_dir and result.fatal is None
    obs = _observed(run_dir)
    assert _keys_once(obs) == _planned()
    assert len({o.order for o in obs}) == len(obs)
    assert DistributedInfo.model_validate(read_meta(run_dir).distributed).address == (
        ray_cluster.client
    )
    after = read_meta(run_dir)
    # the nonces a redo recorded stay the conversations' nonces (what their requests carried)
    assert all(after.cache_nonces[c] == before.cache_nonces[c] for c in redone)
    assert {r.conversation for r in DistributedInfo.model_validate(after.distributed).redone} == (
        redone
    )


def test_the_built_in_emulator_refuses_a_worker_on_another_host(
    ray_cluster: RayCluster,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import harness.runner.distributed as distributed

    # the driver now believes it runs elsewhere than its workers
    monkeypatch.setattr(distributed.socket, "gethostname", lambda: "driver-host")
    with (
        RayEngine(ray_cluster.address, workers=1) as engine,
        pytest.raises(HarnessError, match="emulator listens on this machine's loopback"),
    ):
        run([QUICK], _options(tmp_path), engine=engine)


def test_a_ray_version_mismatch_is_one_line(
    ray_cluster: RayCluster,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import ray

    assert not ray.is_initialized()
    installed = ray.__version__  # what the cluster, started from this install, runs
    assert installed != "2.0.0"
    monkeypatch.setattr(ray, "__version__", "2.0.0")  # this process now claims another Ray
    args = [
        "--engine",
        "ray",
        "--ray-address",
        ray_cluster.address,
        "--out",
        str(tmp_path),
        "--quiet",
    ]
    code = main(["run", str(QUICK), *args])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    # which side runs which: the fix installs the cluster's version here
    assert f"version mismatch — the cluster runs Ray {installed} on Python " in err[0]
    assert ", this process Ray 2.0.0 on Python " in err[0]
    assert f"pip install 'ray=={installed}'" in err[0]
    assert list(tmp_path.iterdir()) == []
    assert not ray.is_initialized()


STORED = """\
version: 1
name: stored
model: gpt-4.1-mini
defaults: {store: true, max_output_tokens: 16}
arms: [chat, responses]
repeats: 2
system: You are terse.
prompts:
  - id: t
    turns: [Hello there, And again?]
"""


def test_each_worker_deletes_what_it_stored_and_the_driver_counts_it(
    ray_cluster: RayCluster, tmp_path: Path, emulators: Any
) -> None:
    """Chat completions and responses stored by workers on both nodes are deleted by the
    worker that stored them; meta.json sums the confirmations."""
    server = emulators.start("zero", mode="process")
    scenario = tmp_path / "stored.yaml"
    scenario.write_text(STORED, encoding="utf-8")
    with RayEngine(ray_cluster.address, workers=2) as engine:
        result = run(
            [scenario],
            RunOptions(target=server.base_url, out=tmp_path, seed=SEED, progress=False),
            engine=engine,
        )
    assert result.fatal is None
    obs = _observed(result.run_dir)
    assert len(obs) == 8 and all(o.ok for o in obs)
    meta = read_meta(result.run_dir)
    assert (meta.stored_chat_completions_deleted, meta.stored_responses_deleted) == (4, 4)
    assert list(emulators.client(server).chat.completions.list(limit=100)) == []
