"""The observation writer: what reaches the OS when, and what is fsync'd."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from harness.records import Observation, ObservationWriter
from harness.rundir import read_observations


def _obs(i: int) -> Observation:
    return Observation(
        run_id="r",
        scenario="s",
        prompt_id="p",
        arm="chat",
        api="chat",
        turn=1,
        repeat=i,
        conversation=f"c{i}",
        cold=True,
        model="m",
        stream=True,
        order=i,
        started_at=0.0,
        ok=True,
    )


def _lines(path: Path) -> int:
    return len(path.read_bytes().splitlines())


def test_each_group_reaches_the_os_and_is_fsynced_in_the_background(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd))[1])
    path = tmp_path / "observations.jsonl"
    writer = ObservationWriter(path, group=4, fsync_interval_s=0.05)
    for i in range(3):
        writer.write(_obs(i))
    assert _lines(path) == 0  # the group is not complete: still in this process's buffer
    writer.write(_obs(3))
    assert _lines(path) == 4  # handed to the OS: another process (a resume) sees it
    deadline = time.monotonic() + 5
    while not synced and time.monotonic() < deadline:
        time.sleep(0.01)
    assert synced, "the background thread never fsync'd the group"
    for i in range(4, 6):
        writer.write(_obs(i))
    writer.close()  # the partial group is written and fsync'd before close returns
    assert _lines(path) == 6
    assert [o.repeat for o in read_observations(path)] == list(range(6))
    assert not any(t.name == "harness-fsync" for t in threading.enumerate())


def test_fsyncs_are_coalesced_at_high_rates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """100 groups written in a burst cost a few fsyncs, not 100; close syncs the rest."""
    calls: list[float] = []
    monkeypatch.setattr(os, "fsync", lambda fd: calls.append(time.monotonic()))
    path = tmp_path / "observations.jsonl"
    with ObservationWriter(path, group=1, fsync_interval_s=10.0) as writer:
        for i in range(100):
            writer.write(_obs(i))
        assert _lines(path) == 100
    assert 1 <= len(calls) <= 3  # the first group's, maybe one racing it, and close's


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("{", "cannot read run meta.json"),
        ("[1]", "not a run meta.json file"),
        ('{"schema_version": 99}', "run meta.json schema_version 99 is not supported"),
        ('{"schema_version": 1, "run_id": 5}', "malformed run meta.json (run_id: "),
    ],
)
def test_bad_meta_files_are_one_line_errors(tmp_path: Path, content: str, words: str) -> None:
    from harness.errors import HarnessError
    from harness.rundir import read_meta

    (tmp_path / "meta.json").write_text(content, encoding="utf-8")
    with pytest.raises(HarnessError) as info:
        read_meta(tmp_path)
    assert words in str(info.value) and "\n" not in str(info.value)
    assert str(tmp_path / "meta.json") in str(info.value)
