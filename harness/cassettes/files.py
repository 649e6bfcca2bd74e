"""Cassette files: readable YAML (literal blocks for SSE bodies, decoded text) and metadata.

Metadata comes first, then each request/response pair in vcrpy's layout (so plain vcrpy reads
them too); a response may carry the harness's ``timing`` and ``shared`` keys beside
``status``/``headers``/``body``. libyaml is used when PyYAML has it (10,000 interactions load in
seconds, not minutes).
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field
from vcr.request import Request

from harness.errors import HarnessError
from harness.records import ReplayedCassette
from harness.rundir import scenario_changed, scenario_digest

CASSETTE_FORMAT = 1

_BaseDumper: type[yaml.SafeDumper] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
_BaseLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Dumper(_BaseDumper):  # type: ignore[misc,valid-type]
    pass


def _represent_str(dumper: yaml.SafeDumper, data: str) -> yaml.Node:
    # multi-line text (SSE streams) as a literal block; PyYAML falls back to quoting when a
    # block cannot hold the string exactly (trailing spaces, control characters)
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


def _represent_list(dumper: yaml.SafeDumper, data: list[Any]) -> yaml.Node:
    numbers = bool(data) and all(
        isinstance(x, int | float) and not isinstance(x, bool) for x in data
    )
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=numbers)


_Dumper.add_representer(str, _represent_str)
_Dumper.add_representer(list, _represent_list)


def _text(value: bytes | str | None) -> str | None:
    if value is None or isinstance(value, str):
        return value
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise HarnessError(
            f"a body is not UTF-8 text ({exc}); cassettes store text bodies only"
        ) from None


def dump_cassette(
    metadata: dict[str, Any] | None, interactions: Iterable[tuple[Request, dict[str, Any]]]
) -> str:
    """YAML text of a cassette: metadata first, then each request/response pair."""
    items = []
    for request, response in interactions:
        req = request._to_dict()
        req["body"] = _text(req["body"])
        resp = dict(response)
        resp["body"] = {"string": _text(response["body"]["string"])}
        items.append({"request": req, "response": resp})
    data: dict[str, Any] = {"version": 1}
    if metadata:
        data["metadata"] = metadata
    data["interactions"] = items
    return str(yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=120))


def load_cassette(path: Path) -> tuple[dict[str, Any], list[tuple[Request, dict[str, Any]]]]:
    """Metadata and interactions of a cassette file (bodies as bytes, as vcrpy expects)."""
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_BaseLoader)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise HarnessError(f"{path}: cannot read cassette ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("interactions"), list):
        raise HarnessError(f"{path}: not a cassette (no 'interactions' list)")
    out = []
    for item in data["interactions"]:
        req, resp = item["request"], item["response"]
        request = Request(req["method"], req["uri"], req.get("body"), req.get("headers") or {})
        body = resp.get("body") or {}
        string = body.get("string")
        resp["body"] = {"string": string.encode() if isinstance(string, str) else (string or b"")}
        out.append((request, resp))
    return data.get("metadata") or {}, out


class HarnessPersister:
    """vcrpy persister writing :func:`dump_cassette`'s readable YAML (for ``vcr_config``)."""

    @classmethod
    def load_cassette(
        cls, cassette_path: str | os.PathLike[str], serializer: Any
    ) -> tuple[Any, ...]:
        from vcr.persisters.filesystem import CassetteNotFoundError

        path = Path(cassette_path)
        if not path.is_file() or not path.read_text(encoding="utf-8").strip():
            raise CassetteNotFoundError()
        metadata, interactions = load_cassette(path)
        requests = [r for r, _ in interactions]
        responses = [r for _, r in interactions]
        return (requests, responses, metadata) if metadata else (requests, responses)

    @staticmethod
    def save_cassette(
        cassette_path: str | os.PathLike[str], cassette_dict: dict[str, Any], serializer: Any
    ) -> None:
        path = Path(cassette_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        pairs = zip(cassette_dict["requests"], cassette_dict["responses"], strict=True)
        write_atomic(path, dump_cassette(cassette_dict.get("metadata"), pairs))


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


# --- metadata ----------------------------------------------------------------------------------


class CassetteMeta(BaseModel):
    """What a cassette says about how it was recorded (its ``metadata`` mapping)."""

    model_config = ConfigDict(extra="allow")

    format: int = CASSETTE_FORMAT
    recorded_from: str = Field(description="'emulator (not OpenAI)', 'openai' or the URL")
    label: str
    target: str
    is_emulator: bool
    emulator_profile: str | None = None
    emulator_seed: int | None = None
    emulator_time_scale: float | None = Field(
        default=None,
        description="the built-in emulator's --emulator-time-scale (its delays × this); "
        "null: not the built-in emulator, or recorded before it was kept",
    )
    base_url: str | None = Field(
        default=None,
        description="recorded base URL (an emulator's port changes "
        "every run: replay matches on the path only)",
    )
    seed: int
    repeats: int | None = Field(default=None, description="--repeats of the recording run")
    client: str = "sdk"
    harness_version: str
    recorded_at: str
    run_id: str
    scenario: str
    scenario_path: str
    scenario_sha256: str
    cache_nonces: dict[str, str] = Field(default_factory=dict)
    interactions: int = 0


def cassette_path(directory: Path, scenario_name: str) -> Path:
    """``<DIR>/<scenario name>.yaml`` (unsafe characters replaced by ``_``)."""
    return directory / (re.sub(r"[^A-Za-z0-9._-]+", "_", scenario_name) + ".yaml")


def read_meta(path: Path, metadata: dict[str, Any]) -> CassetteMeta:
    if not metadata:
        raise HarnessError(
            f"{path}: the cassette has no harness metadata (seed, scenario) — "
            "record it with harness run --record"
        )
    try:
        return CassetteMeta.model_validate(metadata)
    except ValueError as exc:
        first = str(exc).splitlines()[:3]
        raise HarnessError(f"{path}: bad cassette metadata ({' '.join(first)})") from None


def stale_reason(meta: CassetteMeta, scenario: BaseModel) -> str | None:
    """Why the cassette is stale (the scenario changed since recording), or None."""
    if scenario_changed(meta.scenario_sha256, scenario, unrecorded=True):
        return (
            f"scenario changed since recording (sha256 {meta.scenario_sha256[:12]} "
            f"recorded, {scenario_digest(scenario)[:12]} now)"
        )
    return None


def rerecord_command(directory: Path, meta: CassetteMeta, scenario_path: Path | None = None) -> str:
    """The command that records ``meta``'s cassette again as it was recorded: the directory's
    own ``record.sh`` when it has one (the shipped cassettes do), else ``harness run --record``."""
    script = directory / "record.sh"
    if script.is_file():
        return f"bash {shlex.quote(str(script))}"
    args = ["harness", "run", str(scenario_path or meta.scenario_path), "--record", str(directory)]
    args += ["--seed", str(meta.seed)]
    if meta.repeats is not None:
        args += ["--repeats", str(meta.repeats)]
    if meta.is_emulator and meta.target == "emulator":
        if meta.emulator_profile:
            args += ["--emulator-profile", meta.emulator_profile]
        if meta.emulator_seed:
            args += ["--emulator-seed", str(meta.emulator_seed)]
        if meta.emulator_time_scale is not None and meta.emulator_time_scale != 1:
            args += ["--emulator-time-scale", f"{meta.emulator_time_scale:g}"]
    else:
        args += ["--target", meta.target]
    if meta.client != "sdk":
        args += ["--client", meta.client]
    return shlex.join(args)


def replayed_cassette(
    path: Path, meta: CassetteMeta, scenario_path: Path | None = None, *, repeats: int | None = None
) -> ReplayedCassette:
    """What a replay's outputs say about the cassette ``path`` it plays (``repeats``: per
    prompt, when the cassette's metadata has none — recorded at the scenario's own)."""
    return ReplayedCassette(
        scenario=meta.scenario,
        cassette=str(path),
        recorded_at=meta.recorded_at,
        target=meta.target,
        is_emulator=meta.is_emulator,
        emulator_profile=meta.emulator_profile,
        emulator_time_scale=meta.emulator_time_scale,
        repeats=meta.repeats if meta.repeats is not None else repeats,
        seed=meta.seed,
        rerecord=rerecord_command(path.parent, meta, scenario_path),
    )
