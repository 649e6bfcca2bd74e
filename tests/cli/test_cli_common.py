"""What the command modules share: options passed to library calls by name."""

from __future__ import annotations

import argparse
import inspect
from collections.abc import Callable

import pytest

from harness.cli.app import build_parser
from harness.cli.common import call_with_options
from harness.cli.gate import gate
from harness.cli.plan import print_plan


def _takes(a: int, *, b: int = 0) -> tuple[int, int]:
    return a, b


def test_options_reach_the_call_by_name() -> None:
    args = argparse.Namespace(a=1, b=2, command="x", handler=None)
    assert call_with_options(_takes, args) == (1, 2)


def test_an_option_the_call_does_not_take_is_a_bug_not_a_silent_drop() -> None:
    with pytest.raises(TypeError, match="_takes takes no c"):
        call_with_options(_takes, argparse.Namespace(a=1, c=3))


@pytest.mark.parametrize(
    ("argv", "call"),
    [
        (["plan", "s.yaml", "--json", "--sigma", "0.2", "--power", "25%"], print_plan),
        (["gate", "runs/x", "--json", "--baselines", "b", "--prices", "p.yaml"], gate),
    ],
)
def test_every_option_of_plan_and_gate_is_a_parameter_of_its_call(
    argv: list[str], call: Callable[..., object]
) -> None:
    args = vars(build_parser().parse_args(argv))
    params = inspect.signature(call).parameters
    assert set(args) - {"command", "handler"} <= set(params)


def test_the_emulator_profile_defaults_to_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert build_parser().parse_args(["run", "s.yaml"]).emulator_profile == "parity"
    monkeypatch.setenv("HARNESS_EMULATOR_PROFILE", "zero")
    assert build_parser().parse_args(["run", "s.yaml"]).emulator_profile == "zero"
    assert build_parser().parse_args(["emulator"]).profile == "zero"
    given = ["run", "s.yaml", "--emulator-profile", "guide-claims"]
    assert build_parser().parse_args(given).emulator_profile == "guide-claims"
