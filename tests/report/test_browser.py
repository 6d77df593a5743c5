"""The report in a real browser: headless Chromium opens it, every image loads, no console error.

Skipped, with the reason, where Chromium (Debian's ``chromium`` package) or Playwright is absent;
CI installs Chromium (.ci/run).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest


CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
#: Flags that keep a headless Chromium quiet and offline on this machine (without the networking
#: ones it floods refused connections to Google services).
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]


def _browser_or_skip():
    if not Path(CHROMIUM).is_file():
        pytest.skip("headless Chromium not installed (Debian package `chromium`; .ci/run installs it)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("the playwright Python package is not installed (pip install -e '.[test]')")
    return sync_playwright


def open_in_chromium(path: Path, tmp_path: Path) -> tuple[list[dict], list[str], str]:
    """(images with their load state, console errors and failed requests, page title)."""
    sync_playwright = _browser_or_skip()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        try:
            context = browser.new_context()
            page = context.new_page()
            errors: list[str] = []
            page.on("console", lambda m: errors.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(f"page error: {e}"))
            page.on("requestfailed", lambda r: errors.append(f"request failed: {r.url[:100]}"))
            page.goto(path.resolve().as_uri(), wait_until="load")
            images = page.evaluate("""() => Promise.all(Array.from(document.images).map(async img => {
                try { await img.decode(); } catch (e) {}
                return {alt: img.alt, complete: img.complete, width: img.naturalWidth, height: img.naturalHeight};
            }))""")
            title = page.title()
        finally:
            browser.close()
    return images, errors, title


@pytest.mark.slow
def test_chromium_opens_the_report_and_loads_every_image(written: dict, tmp_path: Path) -> None:
    images, errors, title = open_in_chromium(written["path"], tmp_path)
    assert errors == []
    assert "study report" in title
    assert len(images) >= 12
    broken = [i["alt"] for i in images if not (i["complete"] and i["width"] > 0 and i["height"] > 0)]
    assert broken == []
    assert any(i["alt"] == "animation of the champion driving" and i["width"] == 560 for i in images)


def test_chromium_reports_a_broken_image(tmp_path: Path) -> None:
    """The check can fail: a page with a corrupt embedded image is caught."""
    page = tmp_path / "bad.html"
    page.write_text('<!DOCTYPE html><html><head><link rel="icon" href="data:,"><title>t</title></head><body>'
                    '<img alt="ok" src="data:image/gif;base64,R0lGODlhAQABAAAAACwAAAAAAQABAAA=">'
                    '<img alt="broken" src="data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAA">'
                    "</body></html>")
    images, _, _ = open_in_chromium(page, tmp_path)
    loaded = {i["alt"]: i["width"] > 0 for i in images}
    assert loaded == {"ok": True, "broken": False}
