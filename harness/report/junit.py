"""``junit.xml``: one test case per scenario × comparison, and a way for others to add cases.

A comparison *fails* only when it could not be made — an arm had no successful request, or no
pair of requests succeeded in both arms. Slower, costlier or divergent results are findings,
not failures: thresholds belong to ``harness gate``, which adds its cases with
:func:`append_cases`. Every case carries its numbers in ``system-out``.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from harness.fmt import effect, num, pct
from harness.report.verdict import findings
from harness.summary import Comparison, ScenarioSummary, Summary

SUITE_NAME = "harness.comparisons"


@dataclass(frozen=True)
class JUnitCase:
    """One ``<testcase>``: passes when ``failure_message`` is None; ``details`` is its text.

    ``warning``: a passing case that should not read as a clean pass (an inconclusive gate):
    written as a ``warning`` property and in ``system-err``, which CI viewers show beside the
    case, so JUnit readers see what the terminal's warning lines say."""

    name: str
    classname: str
    failure_message: str | None
    details: str
    warning: str | None = None


def _details(c: Comparison, s: ScenarioSummary) -> str:
    lines = [
        f"{c.a} vs {c.b}{' (A/A replicate: the noise floor)' if c.replicate else ''}, "
        f"{c.n_pairs} conversations; ratios a/b with 95 % CI, * = significant"
    ]
    for label, e in (
        ("TTFT p50", c.ttft_p50_ratio),
        ("cold TTFT", c.cold_ttft_ratio),
        ("total p50", c.total_p50_ratio),
        ("cost per request", c.cost_ratio),
    ):
        lines.append(f"{label}: {effect(e)}")
    lines.append(f"cache hit difference: {effect(c.cache_hit_ratio_delta, 'points')}")
    text = c.similarity.text
    if text is not None and text.mean is not None:
        floor = f", A/A noise floor {num(text.noise_floor)}" if text.noise_floor is not None else ""
        lines.append(f"text similarity: mean {num(text.mean)}, min {num(text.min or 0.0)}{floor}")
    for arm in (c.a, c.b):
        x = s.arms.get(arm)
        if x is not None:
            lines.append(
                f"{arm}: {x.requests} requests, {x.errors} failed ({pct(x.error_rate, 1)})"
            )
    if not c.replicate:
        lines.extend(f"{f.topic}: {f.headline} — {f.detail}" for f in findings(c, s.arms))
    return "\n".join(lines)


def _failure(c: Comparison, s: ScenarioSummary) -> str | None:
    for arm in (c.a, c.b):
        x = s.arms.get(arm)
        if x is None or x.requests == 0:
            return f"arm {arm} has no measured requests"
        if x.errors >= x.requests:
            return f"every request of arm {arm} failed ({x.errors} of {x.requests})"
    if c.n_pairs == 0:
        return f"no request succeeded in both {c.a} and {c.b} for the same prompt, repeat and turn"
    return None


def comparison_cases(summary: Summary) -> list[JUnitCase]:
    """One case per scenario × comparison, e.g. ``quickstart`` / ``responses_vs_chat``."""
    return [
        JUnitCase(
            name=key, classname=s.name, failure_message=_failure(c, s), details=_details(c, s)
        )
        for s in summary.scenarios
        for key, c in s.comparisons.items()
    ]


def _case_element(case: JUnitCase) -> ET.Element:
    el = ET.Element("testcase", name=case.name, classname=case.classname, time="0")
    if case.failure_message is not None:
        failure = ET.SubElement(el, "failure", message=case.failure_message, type="failure")
        failure.text = case.details
    else:
        if case.warning is not None:
            props = ET.SubElement(el, "properties")
            ET.SubElement(props, "property", name="warning", value=case.warning)
        out = ET.SubElement(el, "system-out")
        out.text = case.details
        if case.warning is not None:
            err = ET.SubElement(el, "system-err")
            err.text = f"warning: {case.warning}"
    return el


def _recount(suite: ET.Element) -> None:
    cases = suite.findall("testcase")
    suite.set("tests", str(len(cases)))
    suite.set("failures", str(sum(1 for c in cases if c.find("failure") is not None)))
    suite.set("errors", str(sum(1 for c in cases if c.find("error") is not None)))
    suite.set("skipped", str(sum(1 for c in cases if c.find("skipped") is not None)))


def _recount_root(root: ET.Element) -> None:
    for attr in ("tests", "failures", "errors", "skipped"):
        root.set(attr, str(sum(int(s.get(attr, "0")) for s in root.findall("testsuite"))))


def _write(path: Path, root: ET.Element) -> None:
    ET.indent(root)
    tmp = path.with_suffix(path.suffix + ".tmp")
    ET.ElementTree(root).write(tmp, encoding="utf-8", xml_declaration=True)
    os.replace(tmp, path)


def _suite(root: ET.Element, name: str, properties: dict[str, str] | None = None) -> ET.Element:
    for suite in root.findall("testsuite"):
        if suite.get("name") == name:
            return suite
    suite = ET.SubElement(
        root, "testsuite", name=name, timestamp=datetime.now(tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
    )
    if properties:
        props = ET.SubElement(suite, "properties")
        for k, v in properties.items():
            ET.SubElement(props, "property", name=k, value=v)
    return suite


def write_junit(path: Path, summary: Summary) -> Path:
    """Write ``junit.xml`` with the comparison cases of ``summary`` (replacing the file)."""
    root = ET.Element("testsuites", name=f"shadow-harness {summary.run_id}")
    suite = _suite(
        root,
        SUITE_NAME,
        {
            "run_id": summary.run_id,
            "target": summary.target_label,
            "emulator_profile": summary.emulator_profile or "",
            **({"replay": summary.replay_label} if summary.replay_label else {}),
        },
    )
    for case in comparison_cases(summary):
        suite.append(_case_element(case))
    _recount(suite)
    _recount_root(root)
    _write(path, root)
    return path


def append_cases(path: Path, suite_name: str, cases: list[JUnitCase]) -> Path:
    """Add ``cases`` to the suite ``suite_name`` of a junit.xml (created if missing).

    Re-appending a case with the same classname and name replaces it, so running
    ``harness gate`` twice does not duplicate its cases.
    """
    path = Path(path)
    if path.is_file():
        root = ET.parse(path).getroot()
        if root.tag == "testsuite":  # a single-suite file: wrap it
            wrapper = ET.Element("testsuites")
            wrapper.append(root)
            root = wrapper
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        root = ET.Element("testsuites", name="shadow-harness")
    suite = _suite(root, suite_name)
    for case in cases:
        for old in suite.findall("testcase"):
            if old.get("name") == case.name and old.get("classname") == case.classname:
                suite.remove(old)
        suite.append(_case_element(case))
    _recount(suite)
    _recount_root(root)
    _write(path, root)
    return path
