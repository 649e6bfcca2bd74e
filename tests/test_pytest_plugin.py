"""The pytest plugin: a ``shadow`` fixture and ``@pytest.mark.shadow`` marker, ``--harness-*``
options; gate failures become test failures. Runs use the emulator's ``zero`` profile."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

# The inner pytest runs are in-process; pytester forgets modules first imported inside them, and
# numpy cannot be imported twice in one process, so the harness is imported here first.
import harness.analysis.analyze
import harness.gates.output
import harness.report.render
import harness.runner.execute  # noqa: F401

pytest_plugins = ["pytester"]

SCENARIO = """\
version: 1
name: equivalence
model: gpt-4.1-mini
defaults: {temperature: 0, max_output_tokens: 64}
arms: [chat, responses]
repeats: 3
system: You are a helpful support agent.
prompts:
  - id: hours
    input: "What are your support hours?"
  - id: refund
    input: "Briefly: how do I get a refund for a cancelled train?"
gates:
  responses_vs_chat.similarity_mean_min: 0.9
  chat.error_rate_max: 0.5
"""
# The migration guide's test_api_equivalence, as a three-line test.
GUIDE_TEST = """\
import pytest

@pytest.mark.shadow(scenario="equivalence.yaml")
def test_api_equivalence(shadow):
    shadow.check()
"""


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makefile(
        ".yaml", equivalence=SCENARIO, divergent="extends: zero\nname: divergent\ndivergence: 0.5\n"
    )
    return pytester


def test_passing_and_failing_scenario_tests(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_guide=GUIDE_TEST,
        test_more="""
import pytest

@pytest.mark.shadow(scenario="equivalence.yaml", profile="divergent.yaml")
def test_divergent_replies(shadow):
    # the body passes; the failed similarity gate fails the test afterwards
    assert shadow.summary.scenarios[0].name == "equivalence"

@pytest.mark.shadow(scenario="equivalence.yaml", profile="divergent.yaml",
                    gates={"responses_vs_chat.similarity_mean_min": 0.01})
def test_marker_gates_replace_the_scenarios_same_keys(shadow):
    (gate,) = [r for r in shadow.report.results if r.key.endswith("similarity_mean_min")]
    assert gate.threshold == 0.01 and gate.status == "pass"

@pytest.mark.shadow(scenario="equivalence.yaml", profile="divergent.yaml", check=False)
def test_reads_the_numbers(shadow):
    assert not shadow.passed
    text = shadow.comparison("responses_vs_chat").similarity.text
    assert text is not None and text.mean < 0.9
    assert shadow.arm("chat").requests == 6
""",
    )
    result = project.runpytest("--harness-emulator-profile", "zero", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*test_divergent_replies*",
            "*FAIL equivalence: responses_vs_chat.similarity_mean_min ≥ 0.9",
            "*    measured: 0.* (mean over pairs, no interval)",
            "*    rule: the value is below 0.9 (decided on the point value)",
            "*    set in: *equivalence.yaml:*",
            "*FAILED: 1 gate(s) failed*",
        ]
    )
    # terminal summary: two runs (the divergent one is shared by three tests)
    result.stdout.fnmatch_lines(["*shadow harness*", "*emulator*", "*emulator*"])
    summary = result.stdout.str().split("shadow harness")[-1]
    # one line per run (pytest may repeat a path in its short summary, e.g. under CI=true)
    runs = {
        line.split("harness-runs/")[1].split()[0]
        for line in summary.splitlines()
        if line.startswith("emulator — not OpenAI") and "harness-runs/" in line
    }
    assert len(runs) == 2
    assert "Traceback" not in result.stdout.str()


def test_inconclusive_gates_are_warnings_in_the_terminal_summary(project: pytest.Pytester) -> None:
    """Issue 16: with an inconclusive gate `pytest -rA` printed "1 passed" and the warning
    existed only in junit.xml. 0 failures in 6 requests cannot show an error rate of at most 0
    (the Wilson interval reaches 39 %): inconclusive, so the test passes with a warning line
    — with and without -rA — and the JUnit case carries it too.

    The first inner run also shows what ``--harness-report DIR`` gets: the run, its report,
    and the gate cases appended to the report's junit.xml."""
    project.makepyfile(
        test_inc="""
import pytest

@pytest.mark.shadow(scenario="equivalence.yaml", gates={"chat.error_rate_max": 0.0})
def test_unsure(shadow):
    shadow.check()
"""
    )
    # (-W: matplotlib may warn about tight layouts of tiny charts; that is the report's business)
    for extra in ([], ["-rA"]):
        result = project.runpytest(
            "--harness-emulator-profile",
            "zero",
            "--harness-report",
            "out",
            "-p",
            "no:cacheprovider",
            "-W",
            "default::UserWarning",
            *extra,
        )
        result.assert_outcomes(passed=1)
        result.stdout.fnmatch_lines(
            [
                "*shadow harness*",
                "*1 inconclusive gate(s) — passed, with a warning:",
                "warning: test_inc.py::test_unsure: equivalence: chat.error_rate_max is "
                "inconclusive (0.0 % (0.0–39.* %) vs limit ≤ 0 %) — passes; more repeats "
                "would decide it",
            ]
        )
        if not extra:
            (run_dir,) = (project.path / "out" / "runs").iterdir()
            assert (run_dir / "summary.json").is_file()
            reports = project.path / "out" / "reports" / run_dir.name
            assert (reports / "report.html").is_file()
            suites = {s.get("name"): s for s in ET.parse(reports / "junit.xml").getroot()}
            assert "harness gates" in suites  # gate cases appended after the report's own
            assert suites["harness gates"].get("failures") == "0"
    runs = sorted((project.path / "out" / "runs").iterdir())
    junit = project.path / "out" / "reports" / runs[-1].name / "junit.xml"
    suite = ET.parse(junit).getroot().find("testsuite[@name='harness gates']")
    assert suite is not None
    (case,) = [c for c in suite if "chat.error_rate_max" in (c.get("name") or "")]
    prop = case.find("properties/property[@name='warning']")
    assert prop is not None and "is inconclusive" in (prop.get("value") or "")
    err = case.find("system-err")
    assert err is not None and (err.text or "").startswith("warning: equivalence: ")


def test_bad_input_is_one_clean_error(project: pytest.Pytester) -> None:
    project.makepyfile("""
import pytest

@pytest.mark.shadow(scenario="equivalence.yaml", baseline="nightly")
def test_missing_baseline(shadow):
    pass

def test_fixture_without_marker(shadow):
    pass
""")
    result = project.runpytest("--harness-emulator-profile", "zero", "-p", "no:cacheprovider")
    result.assert_outcomes(errors=2)
    assert "Traceback" not in result.stdout.str() and "raise " not in result.stdout.str()
    assert "shadow harness" not in result.stdout.str()  # nothing ran: the baseline is checked first
    result.stdout.fnmatch_lines(
        [
            "*harness: baseline 'nightly' not found: no */baselines/nightly.json*",
            "*the shadow fixture needs @pytest.mark.shadow(scenario=PATH)*",
        ]
    )


def test_a_mistyped_emulator_profile_is_one_clean_error(project: pytest.Pytester) -> None:
    project.makepyfile(test_guide=GUIDE_TEST)
    result = project.runpytest("--harness-emulator-profile", "regresed", "-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    assert "Traceback" not in result.stdout.str()
    assert "During handling" not in result.stdout.str()  # the one line, once
    result.stdout.fnmatch_lines(
        ["*harness: profile 'regresed': no such profile — did you mean regressed?*"]
    )


def test_options_have_their_own_group_in_help(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    text = result.stdout.str()
    start = text.index("Shadow Harness (Chat Completions vs Responses):")
    group = text[start : text.index("\n\n", start)]
    for option in (
        "--harness-target",
        "--harness-mode={live,replay,record}",
        "--harness-report=DIR",
        "--harness-cassettes",
        "--harness-baseline",
    ):
        assert option in group
    markers = pytester.runpytest("--markers").stdout.str()
    assert "@pytest.mark.shadow(scenario, *, baseline=None" in markers


def test_no_clash_with_pytest_recording(project: pytest.Pytester) -> None:
    pytest.importorskip("pytest_recording")
    help_text = project.runpytest("-p", "pytest_recording", "--help").stdout.str()
    assert "--record-mode" in help_text and "--harness-mode" in help_text
    project.makepyfile(test_guide=GUIDE_TEST)
    result = project.runpytest(
        "-p",
        "pytest_recording",
        "--record-mode",
        "none",
        "--harness-emulator-profile",
        "zero",
        "-p",
        "no:cacheprovider",
    )
    result.assert_outcomes(passed=1)


def test_replay_mode_uses_cassettes(project: pytest.Pytester) -> None:
    project.makepyfile(test_guide=GUIDE_TEST)
    record = project.runpytest(
        "--harness-mode",
        "record",
        "--harness-cassettes",
        "tapes",
        "--harness-emulator-profile",
        "zero",
        "-p",
        "no:cacheprovider",
    )
    record.assert_outcomes(passed=1)
    assert (project.path / "tapes" / "equivalence.yaml").is_file()
    replay = project.runpytest(
        "--harness-mode",
        "replay",
        "--harness-cassettes",
        "tapes",
        "--harness-target",
        "http://127.0.0.1:9/v1",
        "-p",
        "no:cacheprovider",
    )
    replay.assert_outcomes(passed=1)  # nothing listens on port 9: every answer came from tape
    # the terminal says what was replayed, when and against what it was recorded
    replay.stdout.fnmatch_lines(
        [
            f"*replay of {project.path / 'tapes' / 'equivalence.yaml'}, recorded * UTC against "
            "emulator — not OpenAI (profile zero, time scale 1, 3 repeats)*"
        ]
    )

    # an edited prompt: the cassette lacks its requests, and the test errors before replaying
    scenario = project.path / "equivalence.yaml"
    edited = scenario.read_text().replace("support hours", "opening hours")
    scenario.write_text(edited.replace("refund for", "refund on"))
    replay_args = ["--harness-mode", "replay", "--harness-cassettes", "tapes"]
    stale = project.runpytest(*replay_args, "-p", "no:cacheprovider")
    stale.assert_outcomes(errors=1)
    stale.stdout.fnmatch_lines(
        [
            "*harness: cassettes lack requests of the plan: *equivalence.yaml: stale: *"
            "12 request(s) have no recorded interaction (equivalence/*"
            "re-record with: harness run *--harness-allow-stale*"
        ]
    )
    allowed = project.runpytest(*replay_args, "--harness-allow-stale", "-p", "no:cacheprovider")
    allowed.assert_outcomes(failed=1)  # replayed: the misses fail the chat error-rate gate
    allowed.stdout.fnmatch_lines(
        [
            "*next: 6 request(s) had no recorded interaction*re-record*",
            "*warning: cassettes lack requests of the plan, replaying anyway "
            "(--harness-allow-stale)*",
        ]
    )


def test_unknown_marker_option(project: pytest.Pytester) -> None:
    project.makepyfile("""
import pytest

@pytest.mark.shadow(scenario="equivalence.yaml", repeat=3)
def test_typo(shadow):
    pass
""")
    result = project.runpytest("-p", "no:cacheprovider")
    assert result.ret != 0
    result.stdout.fnmatch_lines(["*unknown option(s) repeat*"])


def test_guide_example_is_three_lines() -> None:
    body = [ln for ln in GUIDE_TEST.splitlines() if ln and not ln.startswith("import")]
    assert len(body) == 3


def test_plugin_is_registered_by_entry_point() -> None:
    from importlib.metadata import entry_points

    names = {ep.name: ep.value for ep in entry_points(group="pytest11")}
    assert names.get("harness") == "harness.pytest_plugin"


def test_module_imports_no_harness_at_startup() -> None:
    text = (Path(__file__).parents[1] / "harness" / "pytest_plugin.py").read_text("utf-8")
    top = text[: text.index("def pytest_addoption")]
    assert "from harness" not in top.replace("    from harness", "")


def test_a_stopped_arm_fails_the_shadow_test(project: pytest.Pytester) -> None:
    # a target without /v1/responses: the run stops that arm; the test must not gate the chat
    # arm alone and pass (this scenario's one gate is on chat)
    project.makefile(
        ".yaml",
        chatgated=SCENARIO.replace("name: equivalence", "name: chatgated").replace(
            "  responses_vs_chat.similarity_mean_min: 0.9\n", ""
        ),
    )
    project.makeconftest("""
import pytest

from harness.transport.client import CallResult, Transport


@pytest.fixture(autouse=True)
def no_responses_route(monkeypatch):
    real = Transport.send

    async def send(self, api, kwargs, body=None):
        if api == "responses":
            return CallResult(
                status=404, error_type="invalid_request_error", error_message="Invalid URL"
            )
        return await real(self, api, kwargs, body)

    monkeypatch.setattr(Transport, "send", send)
""")
    project.makepyfile("""
import pytest

@pytest.mark.shadow(scenario="chatgated.yaml")
def test_endpoint(shadow):
    pass
""")
    result = project.runpytest("--harness-emulator-profile", "zero", "-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    assert "Traceback" not in result.stdout.str()
    result.stdout.fnmatch_lines(
        [
            "*harness: arm stopped at its first error (the target lacks its endpoint): "
            "chatgated/responses: chatgated/*/responses/r* turn 1: 404 invalid_request_error*"
        ]
    )
