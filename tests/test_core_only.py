"""A core-only install (no torch): the demo runs what needs no baselines and says how to add them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BLOCK_TORCH = ("import sys; sys.modules['torch'] = None\n"  # as if torch were not installed
               "from ntire_t2iqa.cli import main\n"
               "main(sys.argv[1:])\n")


def test_demo_without_torch_skips_the_baselines_with_a_note(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-c", BLOCK_TORCH, "demo", str(tmp_path / "demo"), "--submissions",
                           str(tmp_path / "subs"), "--quiet"], capture_output=True, text=True, timeout=300,
                          env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"})
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    assert "Traceback" not in output
    assert "needs 'torch', which is not installed (pip install -e '.[baselines]')" in output
    made = sorted(p.name for p in (tmp_path / "subs").glob("*.zip"))
    assert made and not any("fga" in n or "rahf" in n for n in made)
