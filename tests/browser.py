"""Headless Chromium for page tests: a DOM dump and a screenshot of a local file."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--disable-dev-shm-usage"]


def chromium() -> str:
    """Path of Chromium; skips the test when absent, unless REQUIRE_CHROMIUM is set (CI)."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    if os.environ.get("REQUIRE_CHROMIUM"):
        pytest.fail("Chromium is required (REQUIRE_CHROMIUM is set) but not installed: apt-get install chromium")
    pytest.skip("Chromium is not installed (apt-get install chromium)")


def render(page: Path, screenshot: Path, size: str = "1400,1800") -> str:
    """Load ``page`` headless; write a PNG screenshot and return the DOM after scripts ran."""
    exe = chromium()
    with tempfile.TemporaryDirectory() as profile:
        common = [exe, *FLAGS, f"--user-data-dir={profile}"]
        dom = subprocess.run([*common, "--dump-dom", page.resolve().as_uri()], capture_output=True, text=True,
                             timeout=120, check=True).stdout
        subprocess.run([*common, f"--screenshot={screenshot}", f"--window-size={size}", page.resolve().as_uri()],
                       capture_output=True, timeout=120, check=True)
    return dom
