"""harness.report: report.html / summary.md / junit.xml / compare.html from runs.

One real emulator run (two scenarios, divergent answers, injected faults) is shared by the
integration tests; the rest use synthetic runs or pure functions.
"""

from __future__ import annotations

import json
import re
import socket
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import pytest

from harness.analysis.analyze import (
    SyntheticProfile,
    analyze_run,
    synthetic_observations,
    write_summary,
    write_synthetic_run,
)
from harness.cli.app import main
from harness.fmt import effect, interval, ms, ratio, usd
from harness.records import ToolCallRecord
from harness.report import JUnitCase, ReportPaths, append_cases, render_compare, render_report
from harness.report.diff import tokens, tool_calls_text, word_diff
from harness.report.junit import SUITE_NAME
from harness.report.markdown import cell, summary_markdown
from harness.report.verdict import judge_ratio, output_finding
from harness.summary import Effect

HOSTILE = (
    '<script>alert("x")</script> and <img src=x onerror=alert(1)> and '
    '<a href="javascript:alert(2)">click</a> "quotes" & ampersands'
)


@pytest.fixture(scope="module")
def default_report(real_run: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The real run's report rendered without ``--out``, from another working directory:
    (its directory, that working directory)."""
    cwd = tmp_path_factory.mktemp("elsewhere")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(cwd)
        paths = render_report(real_run)
    return paths.out_dir, cwd


@pytest.fixture(scope="module")
def real_report(default_report: tuple[Path, Path]) -> tuple[Path, str]:
    out_dir, _ = default_report
    return out_dir, (out_dir / "report.html").read_text(encoding="utf-8")


class _Tags(HTMLParser):
    """Every start tag and its attributes, as a browser's tokenizer sees them."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def _tags(html: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = _Tags()
    parser.feed(html)
    return parser.tags


def _assert_offline(html: str) -> None:
    tags = _tags(html)
    for tag, attrs in tags:
        for name, value in attrs.items():
            assert not name.startswith("on"), f"event handler attribute on <{tag}>"
            if name in ("src", "href", "xlink:href", "action", "poster", "data") and value:
                assert value.startswith(("#", "data:")), f"<{tag} {name}={value!r}>"
    assert sum(1 for tag, _ in tags if tag == "script") == 1
    assert not {tag for tag, _ in tags} & {"img", "iframe", "object", "embed", "link"} - {"link"}
    assert [a.get("rel") for t, a in tags if t == "link"] == ["icon"]
    assert "@import" not in html and "url(http" not in html
    csp = next(
        a["content"]
        for t, a in tags
        if t == "meta" and a.get("http-equiv") == "Content-Security-Policy"
    )
    assert csp is not None and "default-src 'none'" in csp and "script-src 'sha256-" in csp


# --- the real emulator run ----------------------------------------------------------------------


def test_report_files_from_real_run(real_run: Path, real_report: tuple[Path, str]) -> None:
    out, html = real_report
    assert {p.name for p in out.iterdir()} >= {"report.html", "summary.md", "junit.xml"}
    for anchor in (
        "verdict",
        "run",
        "sc-quickstart-arms",
        "sc-quickstart-charts",
        "sc-quickstart-claims",
        "sc-quickstart-prompts",
        "sc-quickstart-errors",
        "sc-function-calling-prompts",
    ):
        assert f'id="{anchor}"' in html
    assert "Emulator — not OpenAI." in html and "emulator — not OpenAI" in html
    assert html.count("<svg") >= 8  # 2 scenarios × (TTFT, total, cost, similarity, …)
    assert "<ins>" in html and "<del>" in html  # divergence 0.25 shows in the diffs
    assert "get_order_status(" in html  # tool calls side by side
    assert "Compared with Chat Completions, Responses" in html
    assert "Errors and retries" in html
    _assert_offline(html)
    assert len(html) < 2_000_000


def test_summary_markdown_and_junit_from_real_run(
    real_run: Path, real_report: tuple[Path, str]
) -> None:
    out, _ = real_report
    md = (out / "summary.md").read_text(encoding="utf-8")
    assert md.startswith("## Shadow Harness")
    assert "emulator — not OpenAI" in md and "[!WARNING]" in md
    assert "### quickstart" in md and "### function-calling" in md
    assert "Migration-guide claims" in md and "| first request slower |" in md
    assert "| cost | < 0.98 (cheaper beyond the ±2 % margin) |" in md
    assert "&lt;" not in md  # plain text, not an entity
    # issue 19: said once, possessive spelt right, the emulator named once
    assert "too close to call: Too close to call" not in md
    assert "Completions's" not in md and "Chat Completions'" in md
    assert "emulator (emulator" not in md
    assert re.search(r"<[A-Za-z/!?]", md) is None  # nothing that opens an HTML tag
    root = ET.parse(out / "junit.xml").getroot()
    suite = root.find(f"testsuite[@name='{SUITE_NAME}']")
    assert suite is not None
    summary = json.loads((real_run / "summary.json").read_text(encoding="utf-8"))
    expected = {(s["name"], k) for s in summary["scenarios"] for k in s["comparisons"]}
    got = {(c.get("classname"), c.get("name")) for c in suite.findall("testcase")}
    assert got == expected
    assert ("quickstart", "responses_vs_chat") in got
    assert suite.get("tests") == str(len(expected)) == root.get("tests")
    case = suite.find("testcase[@name='responses_vs_chat']")
    assert case is not None
    text = case.findtext("system-out") or (case.find("failure").text or "")  # type: ignore[union-attr]
    assert "TTFT p50" in text and "text similarity" in text


def test_rerender_sends_no_request(
    real_run: Path,
    real_report: tuple[Path, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("rendering tried to open a connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    _, first = real_report
    second = render_report(real_run, tmp_path / "b").html.read_text(encoding="utf-8")
    assert first == second  # deterministic: same charts, same ids


@pytest.fixture(scope="module")
def altered_report(
    real_run: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, ReportPaths]:
    """One render of a copy of the real run (without its summary) that carries hostile model
    output and errors, and the probe's findings and skipped arms in meta.json: (run, paths)."""
    tmp_path = tmp_path_factory.mktemp("altered")
    run_dir = tmp_path / "hostile"
    run_dir.mkdir()
    meta = json.loads((real_run / "meta.json").read_text(encoding="utf-8"))
    meta["capabilities"] = {
        "target": "http://127.0.0.1:8089/v1",
        "model": "m",
        "probed_at": 0.0,
        "source": "probe",
        "features": {
            "chat": {"supported": True, "detail": ""},
            "store": {"supported": False, "detail": "HTTP 404: File Not Found"},
            "cached_tokens": {"supported": None, "detail": "timed out"},
        },
    }
    meta["skipped"] = {"quickstart: arm responses_chained": "store unsupported (HTTP 404)"}
    (run_dir / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
    lines = []
    for line in (real_run / "observations.jsonl").read_text(encoding="utf-8").splitlines():
        obs = json.loads(line)
        if obs["arm"] == "responses" and obs["ok"]:
            obs["output_text"] = HOSTILE + " " + (obs["output_text"] or "")
            for call in obs["tool_calls"]:
                call["arguments"] = json.dumps({"q": HOSTILE})
        if not obs["ok"]:
            obs["error_message"] = HOSTILE
        lines.append(json.dumps(obs))
    (run_dir / "observations.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return run_dir, render_report(run_dir, tmp_path / "out")


def test_untrusted_output_is_escaped(altered_report: tuple[Path, ReportPaths]) -> None:
    run_dir, paths = altered_report
    html = paths.html.read_text(encoding="utf-8")
    assert "&lt;script&gt;alert(" in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "<script>alert" not in html and "<img" not in html
    assert 'href="javascript:' not in html
    assert all((a.get("href") or "").startswith("#") for t, a in _tags(html) if t == "a")
    _assert_offline(html)
    assert (run_dir / "summary.json").is_file()  # analysed on the way, and saved
    md = paths.markdown.read_text(encoding="utf-8")
    assert "<script" not in md and "javascript:" not in md


def test_cli_report_and_compare(
    real_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", str(real_run), "--out", str(tmp_path / "r")]) == 0
    out = capsys.readouterr().out.split()
    assert out == [str(tmp_path / "r" / n) for n in ("report.html", "summary.md", "junit.xml")]
    assert main(["compare", str(real_run), str(real_run), "--out", str(tmp_path / "c")]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "c" / "compare.html")
    html = (tmp_path / "c" / "compare.html").read_text(encoding="utf-8")
    assert "Run comparison" in html and "Emulator — not OpenAI." in html
    _assert_offline(html)
    assert main(["report", str(tmp_path / "missing")]) == 2
    assert "no such run directory" in capsys.readouterr().err


def test_default_out_dir_is_reports_beside_the_runs_dir(
    real_run: Path, default_report: tuple[Path, Path]
) -> None:
    """runs/<id> → reports/<id> (DESIGN §1), whatever the working directory."""
    out_dir, cwd = default_report
    expected = real_run.resolve().parent.parent / "reports" / real_run.name
    assert out_dir == expected
    assert (expected / "report.html").is_file()
    assert not (cwd / "reports").exists()


# --- synthetic runs -----------------------------------------------------------------------------


def _synthetic(tmp_path: Path, name: str, profile: SyntheticProfile, **kw: int) -> Path:
    obs = synthetic_observations(profile, run_id=name, **kw)  # type: ignore[arg-type]
    run_dir = write_synthetic_run(tmp_path / name, obs, emulator_profile="synthetic")
    write_summary(run_dir, analyze_run(run_dir, resamples=300))
    return run_dir


def test_large_run_detail_and_size_stay_bounded(tmp_path: Path) -> None:
    run_dir = _synthetic(
        tmp_path,
        "many",
        SyntheticProfile(divergence=0.1, error_rate=0.02),
        prompts=120,
        turns=2,
        repeats=2,
    )
    paths = render_report(run_dir, tmp_path / "out", divergent=4, slowest=2, max_rows=50)
    html = paths.html.read_text(encoding="utf-8")
    assert html.count('<details class="prompt"') <= 6
    table = html.split('id="sc-synthetic-ptable"')[1].split("</table>")[0]
    assert table.count("<tr>") == 1 + 50  # header + capped rows
    assert "more prompts are not listed" in html
    assert "most divergent" in html and "slowest" in html


def test_of_two_prompts_one_is_the_slowest(tmp_path: Path) -> None:
    run_dir = _synthetic(tmp_path, "two", SyntheticProfile(), prompts=2, turns=1, repeats=3)
    html = render_report(run_dir, tmp_path / "out").html.read_text(encoding="utf-8")
    assert html.count('<span class="badge b-warn">slowest</span>') == 1


def test_markdown_says_each_verdict_once() -> None:
    from harness.report.markdown import _verdict

    assert _verdict("unclear", "Too close to call") == "❔ too close to call"
    assert _verdict("unclear", "Too close to call: Responses failed 3, Chat Completions 0") == (
        "❔ too close to call: Responses failed 3, Chat Completions 0"
    )
    assert _verdict("better", "Responses is 20 % faster") == "✅ better: Responses is 20 % faster"


def test_compare_flags_a_regression(tmp_path: Path) -> None:
    base = _synthetic(tmp_path, "base", SyntheticProfile(), prompts=3, turns=2, repeats=20)
    slow = _synthetic(
        tmp_path, "slow", SyntheticProfile(ttft_ms=450.0, sigma=0.1), prompts=3, turns=2, repeats=20
    )
    html = render_compare(slow, base, tmp_path / "cmp").read_text(encoding="utf-8")
    assert "TTFT p50 1.5" in html and "worse" in html
    md = (tmp_path / "cmp" / "compare.md").read_text(encoding="utf-8")
    assert "| `chat` |" in md and "*" in md
    _assert_offline(html)


# --- pure functions -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("the cat sat", "the cat sat"),
        ("the cat sat on the mat", "the dog sat on a mat"),
        ("", "all new"),
        ("all gone", ""),
        ("a  b\n\nc", "a b c d"),
    ],
)
def test_word_diff_rebuilds_both_texts(old: str, new: str) -> None:
    d = word_diff(old, new)
    assert "".join(t for _, t in d.left) == old
    assert "".join(t for _, t in d.right) == new
    assert {op for op, _ in d.left} <= {"", "del"} and {op for op, _ in d.right} <= {"", "ins"}
    assert d.changed == (old.split() != new.split())
    # a marked change never carries the space after it
    assert all(not t[-1].isspace() for op, t in d.left + d.right if op)


def test_word_diff_marks_the_changed_words() -> None:
    d = word_diff("the cat sat on the mat", "the dog sat on a mat")
    assert [t for op, t in d.left if op] == ["cat", "the"]
    assert [t for op, t in d.right if op] == ["dog", "a"]
    assert "".join(tokens("a b  c")) == "a b  c"


def test_tool_calls_text_sorts_argument_keys() -> None:
    calls = [
        ToolCallRecord(id="c1", name="f", arguments='{"b": 1, "a": 2}'),
        ToolCallRecord(id="c2", name="g", arguments="not json"),
    ]
    assert tool_calls_text(calls) == 'f({"a": 2, "b": 1})\ng(not json)'


def _e(value: float, lo: float, hi: float) -> Effect:
    return Effect(value=value, ci95=(lo, hi), significant=hi < 1 or lo > 1, n_pairs=10)


@pytest.mark.parametrize(
    ("effect_", "kind"),
    [
        (_e(0.8, 0.7, 0.89), "better"),
        (_e(0.85, 0.7, 0.9), "unclear"),  # touches the margin: not beyond it
        (_e(1.3, 1.11, 1.5), "worse"),
        (_e(1.1, 1.05, 1.2), "unclear"),  # significant, not beyond the margin
        (_e(0.8, 0.7, 0.89).model_copy(update={"n_pairs": 9}), "unclear"),  # too few
        (_e(1.0, 0.95, 1.08), "same"),
        (_e(1.04, 1.02, 1.06), "same"),  # significant, but inside the ±10 % margin
        (_e(1.0, 0.6, 1.4), "unclear"),
        (None, "unknown"),
        (Effect(value=None, ci95=None, significant=None, n_pairs=0), "unknown"),
    ],
)
def test_judge_ratio(effect_: Effect | None, kind: str) -> None:
    assert judge_ratio(effect_, 0.10) == kind


def test_formatting() -> None:
    assert ms(41.93) == "41.9 ms" and ms(1234.4) == "1,234 ms" and ms(None) == "—"
    assert usd(0.00043) == "$0.00043" and usd(435.0) == "$435" and usd(0) == "$0"
    assert interval((0.7, 1.17), "ratio") == "0.70–1.17"
    assert interval((-0.133, -0.017), "points") == "-13.3 to -1.7"
    assert interval((20.9, 29.0), "ms") == "20.9–29.0 ms"
    assert effect(_e(0.82, 0.75, 0.9)) == "0.82× (0.75–0.90) *"
    assert (
        effect(Effect(value=0.365, ci95=(0.16, 0.56), significant=True, n_pairs=3), "points")
        == "+36.5 pts (16.0–56.0) *"
    )


def test_first_output_is_shown_beside_ttft(tmp_path: Path) -> None:
    # responses streams reasoning first: its first output comes at a quarter of its TTFT
    obs = [
        o.model_copy(update={"first_output_ms": o.ttft_ms / 4})
        if o.arm == "responses" and o.ttft_ms
        else o
        for o in synthetic_observations(
            SyntheticProfile(), arms=("chat", "responses"), prompts=2, repeats=5
        )
    ]
    run_dir = write_synthetic_run(tmp_path / "first", obs, emulator_profile="synthetic")
    summary = analyze_run(run_dir, resamples=200)
    write_summary(run_dir, summary)
    arm = summary.scenarios[0].arms["responses"]
    comp = summary.scenarios[0].comparisons["responses_vs_chat"]
    assert arm.first_output_ms is not None and comp.first_output_p50_ratio is not None
    paths = render_report(run_dir, tmp_path / "out")
    html = paths.html.read_text(encoding="utf-8")
    assert "first output p50</th>" in html and "first output p95</th>" in html
    assert f">{ms(arm.first_output_ms.p50)}<" in html
    assert f">{ms(arm.first_output_ms.p95)}<" in html
    row_html = html.split("<td>first output p50 ratio</td>", 1)[1].split("</tr>", 1)[0]
    assert f">{ratio(comp.first_output_p50_ratio.value)}" in row_html
    md = summary_markdown(summary)
    header, row = (
        next(line for line in md.splitlines() if line.startswith(start))
        for start in ("| arm |", "| `responses` |")
    )
    col = header.split(" | ").index("first output p50")
    assert row.split(" | ")[col].startswith(ms(arm.first_output_ms.p50))
    comp_header = next(line for line in md.splitlines() if line.startswith("| comparison"))
    assert "| first output p50 |" in comp_header


def test_markdown_cells_cannot_break_the_table() -> None:
    assert cell("a|b\nc<script>") == "a\\|b c&lt;script>"
    assert cell("< 1 (cheaper)") == "< 1 (cheaper)"  # a lone "<" is text in GitHub Markdown


def test_markdown_of_a_real_target_has_no_emulator_warning(tmp_path: Path) -> None:
    run_dir = _synthetic(tmp_path, "real", SyntheticProfile(), prompts=2, turns=2, repeats=5)
    summary = analyze_run(run_dir, resamples=200).model_copy(
        update={"is_emulator": False, "target_label": "openai", "emulator_profile": None}
    )
    md = summary_markdown(summary)
    assert "not OpenAI" not in md and "Target: **openai**" in md


def test_identical_answers_without_floor_are_same(tmp_path: Path) -> None:
    run_dir = _synthetic(tmp_path, "aa", SyntheticProfile(), prompts=2, turns=1, repeats=5)
    summary = analyze_run(run_dir, resamples=200)
    c = summary.scenarios[0].comparisons["responses_vs_chat"]
    f = output_finding(c)
    assert f.kind == "same" and f.headline == "Identical answers"


def test_junit_append_cases_adds_and_replaces(tmp_path: Path) -> None:
    path = tmp_path / "junit.xml"
    append_cases(
        path,
        "harness.gate",
        [
            JUnitCase("responses_vs_chat.ttft_p50_ratio_max", "quickstart", None, "1.02 ≤ 1.5"),
            JUnitCase("chat.error_rate_max", "quickstart", "0.2 > 0.05 <&>", "details <b>"),
        ],
    )
    append_cases(
        path, "harness.gate", [JUnitCase("chat.error_rate_max", "quickstart", None, "0.01 ≤ 0.05")]
    )
    root = ET.parse(path).getroot()
    suite = root.find("testsuite[@name='harness.gate']")
    assert suite is not None
    assert suite.get("tests") == "2" and suite.get("failures") == "0"
    assert root.get("tests") == "2" and root.get("failures") == "0"
    assert len(suite.findall("testcase[@name='chat.error_rate_max']")) == 1


def test_junit_gate_cases_join_the_report_file(
    real_report: tuple[Path, str], tmp_path: Path
) -> None:
    out, _ = real_report
    path = tmp_path / "junit.xml"
    path.write_bytes((out / "junit.xml").read_bytes())
    before = int(ET.parse(path).getroot().get("tests") or 0)
    append_cases(path, "harness.gate", [JUnitCase("x", "quickstart", "over <limit>", "d")])
    root = ET.parse(path).getroot()
    assert int(root.get("tests") or 0) == before + 1
    assert int(root.get("failures") or 0) >= 1
    assert {s.get("name") for s in root.findall("testsuite")} == {SUITE_NAME, "harness.gate"}
    failure = root.find(".//testcase[@name='x']/failure")
    assert failure is not None and failure.get("message") == "over <limit>"


def test_no_html_is_built_by_string_concatenation() -> None:
    """STYLE.md: markup comes from templates; Python only hands them values."""
    source = "".join(
        p.read_text(encoding="utf-8")
        for p in (Path(__file__).resolve().parents[2] / "harness" / "report").glob("*.py")
    )
    assert not re.search(r"""["']<(?:div|span|td|tr|table|p|pre|ins|del|a)\b""", source)


def test_report_shows_what_the_target_serves_and_what_was_skipped(
    altered_report: tuple[Path, ReportPaths],
) -> None:
    """issue 17: the probe's findings and the arms --skip-unsupported left out are run facts."""
    _, paths = altered_report
    html = paths.html.read_text(encoding="utf-8")
    row = html[html.index('id="capabilities"') :].split("</tr>")[0]
    assert "yes: <code>chat</code>" in row
    assert "no: <code>store</code>" in row and "HTTP 404: File Not Found" in row
    assert "could not tell: <code>cached_tokens</code>" in row
    assert "arm responses_chained — store unsupported" in html
