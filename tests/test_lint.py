"""The tree passes its linter (ruff: B, E, W, F, I, UP, SIM, RUF) and its type checker (mypy)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("tool", ["ruff", "mypy"])
def test_tree_is_clean(tool: str, tmp_path: Path):
    if importlib.util.find_spec(tool) is None:
        pytest.skip(f"{tool} is not installed (pip install -e '.[test]')")
    args = ["check", "."] if tool == "ruff" else ["--cache-dir", str(tmp_path / "cache")]
    res = subprocess.run([sys.executable, "-m", tool, *args], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]
