"""report.html in a real headless Chromium (Debian's ``chromium``, driven by Playwright).

Renders a report from the real emulator run the report tests share, opens it from disk, and
checks what a reader gets: the sections are visible, nothing logs an error, nothing is fetched
from anywhere, the inline script runs under the page's Content-Security-Policy (sorting works),
and the page reads the same with JavaScript off. Skipped only when no Chromium executable is
installed. Set ``HARNESS_SCREENSHOTS=DIR`` to keep the screenshots.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

from harness.report import render_report

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").is_file() else None


CHROMIUM = _chromium()
if CHROMIUM is None:
    print("test_report_browser: no chromium executable (apt-get install chromium) — skipped")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (Debian: apt-get install -y chromium)"
)


def test_report_in_headless_chromium(real_run: Path, tmp_path: Path) -> None:
    started = time.perf_counter()
    html_path = render_report(real_run, tmp_path / "report").html
    url = html_path.resolve().as_uri()
    shots = Path(os.environ.get("HARNESS_SCREENSHOTS") or tmp_path / "shots")
    shots.mkdir(parents=True, exist_ok=True)
    errors: list[str] = []
    requests: list[str] = []
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path / "profile"),
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport={"width": 1280, "height": 900},
        )
        try:
            page = context.new_page()
            page.on(
                "console",
                lambda m: errors.append(m.text) if m.type in ("error", "warning") else None,
            )
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("request", lambda r: requests.append(r.url))
            page.goto(url, wait_until="load")
            page.screenshot(path=str(shots / "report-top.png"))
            page.screenshot(path=str(shots / "report-full.png"), full_page=True)

            for selector in (
                "#target-banner",
                "#verdict .sentence",
                "#verdict table.glance",
                "#run",
                "#sc-quickstart-arms",
                "#sc-quickstart .charts figure svg",
                "#sc-quickstart-claims",
                "#sc-quickstart-prompts",
                "details.prompt[open] ins",
                "#sc-quickstart-errors",
                "#sc-function-calling-prompts",
            ):
                assert page.locator(selector).first.is_visible(), selector
            assert "not OpenAI" in page.locator("#target-banner").inner_text()
            assert page.locator("#verdict table.glance tbody tr").count() == 3
            why = page.locator("#verdict details.why").first
            why.locator("summary").click()  # native <details>: no script involved
            # TTFT, total, cold, cost, caching, answers, errors
            assert why.locator(".card").count() == 7
            assert why.locator(".card").first.is_visible()
            for box in (
                page.locator(f"#{s} .charts figure svg").first.bounding_box()
                for s in ("sc-quickstart", "sc-function-calling")
            ):
                assert box is not None and box["width"] > 300 and box["height"] > 100
            # the page must fit the viewport width (no sideways scrolling of the whole page)
            assert page.evaluate("document.documentElement.scrollWidth") <= 1280

            # the inline script runs under the CSP: sorting a table works
            header = page.locator("#sc-quickstart-arms ~ div table.sortable th").nth(1)
            header.click()
            assert header.get_attribute("aria-sort") == "ascending"
            page.locator("#sc-quickstart-prompts").scroll_into_view_if_needed()
            page.screenshot(path=str(shots / "report-prompts.png"))

            # ... and the page reads the same without JavaScript
            no_js = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
            try:
                plain = no_js.new_page(java_script_enabled=False)
                plain.on("request", lambda r: requests.append(r.url))
                plain.goto(url)
                assert plain.locator("#verdict table.glance").is_visible()
                assert plain.locator("details.prompt[open] del").first.is_visible()
            finally:
                no_js.close()
        finally:
            context.close()
    assert errors == []
    assert [r for r in requests if r != url] == []
    assert (shots / "report-full.png").stat().st_size > 50_000
    assert time.perf_counter() - started < 30
