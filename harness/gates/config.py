"""Gate specifications: keys such as ``responses_vs_chat.ttft_p50_ratio_max`` with their
threshold and where they were written — from a scenario's ``gates:`` or a gates file.

The key grammar and the metric list are the scenario's (:data:`GATE_METRICS`,
:data:`GATE_KEY_RE`); a gates file (``harness gate --config``) is::

    version: 1
    regression_pct: 10          # default tolerance vs --baseline, in %
    gates: {KEY: NUMBER}        # every scenario
    scenarios: {NAME: {KEY: NUMBER}}
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from harness.errors import HarnessError, invalid_file
from harness.scenario.models import GATE_KEY_RE, GATE_METRICS

Bound = Literal["max", "min"]


@dataclass(frozen=True)
class GateSpec:
    """One configured gate: ``key`` split into its parts, with where it was written."""

    key: str
    arms: tuple[str, ...]
    metric: str
    bound: Bound
    threshold: float
    source: str
    line: int | None = None

    @property
    def subject(self) -> str:
        return "_vs_".join(self.arms)


def parse_gate(key: str, threshold: float, source: str, line: int | None = None) -> GateSpec:
    """Check a gate key (same grammar as the scenario's ``gates:``) and its value."""
    where = f"{source}: gate {key!r}"
    match = GATE_KEY_RE.match(key)
    if match is None:
        raise HarnessError(
            f"{where} is not <arm>_vs_<arm>.<metric>_max|_min or "
            "<arm>.<metric>_max|_min — e.g. responses_vs_chat.ttft_p50_ratio_max"
        )
    arms = tuple(match["subject"].split("_vs_"))
    metric, bound = match["metric"], match["bound"]
    if metric not in GATE_METRICS:
        known = ", ".join(sorted(GATE_METRICS))
        raise HarnessError(f"{where}: unknown metric {metric!r} — use one of: {known}")
    scope = "pair" if len(arms) == 2 else "arm"
    if len(arms) > 2 or GATE_METRICS[metric] != scope:
        right = "<arm>" if GATE_METRICS[metric] == "arm" else "<arm>_vs_<arm>"
        raise HarnessError(f"{where}: {metric} is written {right}.{metric}_{bound}")
    if (
        isinstance(threshold, bool)
        or not isinstance(threshold, int | float)
        or not math.isfinite(threshold)
    ):
        raise HarnessError(f"{where}: the threshold must be a number, not {threshold!r}")
    if metric == "regression_pct" and (bound != "max" or threshold < 0):
        raise HarnessError(
            f"{where}: write <arm>.regression_pct_max with a tolerance ≥ 0 in %, "
            "e.g. responses.regression_pct_max: 10"
        )
    if metric.endswith("_ratio") and threshold <= 0:
        raise HarnessError(f"{where}: a ratio threshold must be above 0, e.g. 1.5")
    return GateSpec(
        key, arms, metric, "max" if bound == "max" else "min", float(threshold), source, line
    )


class GatesFile(BaseModel):
    """``--config gates.yaml``. Replaces the scenarios' own ``gates:`` when given."""

    model_config = ConfigDict(extra="forbid", strict=True)

    version: Literal[1] = 1
    regression_pct: float | None = Field(None, ge=0, description="default tolerance vs baseline")
    gates: dict[str, float] = Field(default_factory=dict, description="for every scenario")
    scenarios: dict[str, dict[str, float]] = Field(
        default_factory=dict, description="per scenario name; override `gates` key by key"
    )


@dataclass
class GateConfig:
    """Gates per scenario name, and the default regression tolerance."""

    by_scenario: dict[str, list[GateSpec]] = field(default_factory=dict)
    for_all: list[GateSpec] = field(default_factory=list)
    regression_pct: float | None = None
    warnings: list[str] = field(default_factory=list)

    def for_scenario(self, name: str) -> list[GateSpec]:
        own = self.by_scenario.get(name, [])
        keys = {g.key for g in own}
        return [g for g in self.for_all if g.key not in keys] + own

    def overridden(self, gates: Sequence[GateSpec]) -> GateConfig:
        """This config with ``gates`` added to every scenario, replacing same-key gates."""
        keys = {g.key for g in gates}
        return GateConfig(
            by_scenario={
                name: [g for g in specs if g.key not in keys]
                for name, specs in self.by_scenario.items()
            },
            for_all=[g for g in self.for_all if g.key not in keys] + list(gates),
            regression_pct=self.regression_pct,
            warnings=list(self.warnings),
        )


def load_gates_file(path: Path) -> GateConfig:
    """Read and check a gates file (YAML or JSON)."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise HarnessError(f"{path}: cannot read gates file ({exc})") from exc
    try:
        parsed = GatesFile.model_validate(data if data is not None else {})
    except ValidationError as exc:
        raise invalid_file(
            path,
            exc,
            "write {version: 1, gates: {KEY: NUMBER}, scenarios: {NAME: {KEY: NUMBER}}, "
            "regression_pct: NUMBER} (see docs/ci.md)",
        ) from exc
    src = str(path)
    return GateConfig(
        by_scenario={
            name: [parse_gate(k, v, src) for k, v in gates.items()]
            for name, gates in parsed.scenarios.items()
        },
        for_all=[parse_gate(k, v, src) for k, v in parsed.gates.items()],
        regression_pct=parsed.regression_pct,
    )


def scenario_gates(run_dir: Path) -> GateConfig:
    """The ``gates:`` of each scenario file a run used (paths as recorded in meta.json)."""
    from harness.rundir import META_FILE, read_meta, scenario_changed
    from harness.scenario.load import load_scenario

    meta = read_meta(run_dir)
    config = GateConfig()
    for entry in meta.scenarios:
        path = Path(str(entry.get("path", "")))
        if not path.is_file():
            raise HarnessError(
                f"scenario file {path} (recorded in {run_dir}/{META_FILE}) not "
                "found — run `harness gate` from the directory the run started "
                "in, or pass --config gates.yaml"
            )
        sc = load_scenario(path)
        if scenario_changed(entry.get("sha256"), sc, unrecorded=False):
            config.warnings.append(
                f"{path} changed since run {meta.run_id}; using the gates it has now"
            )
        config.by_scenario[str(entry.get("name", sc.name))] = [
            parse_gate(key, value, str(path), sc.location(("gates", key)).line)
            for key, value in sc.gates.items()
        ]
    return config
