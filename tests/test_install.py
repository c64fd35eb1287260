"""A wheel install works anywhere: weights inside the wheel, checked by sha256, run outside the repo."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from conftest import write_clip

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv holding the vsr wheel; its dependencies (the local torch, PyAV, ...) come
    from this environment's site-packages through a .pth file, so nothing is downloaded."""
    d = tmp_path_factory.mktemp("install")
    import setuptools

    # Build with this environment's setuptools when it is new enough (no download), else isolated.
    local = ["--no-build-isolation"] if int(setuptools.__version__.split(".")[0]) >= 77 else []
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", *local,
                            str(ROOT), "-w", str(d / "dist")], capture_output=True, text=True)
    assert build.returncode == 0, build.stderr
    assert "deprecat" not in build.stderr.lower(), build.stderr
    wheel = next((d / "dist").glob("vsr-*.whl"))
    venv = d / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    py = venv / "bin" / "python"
    site = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    # Our site-packages as a plain path entry: its .pth files (the editable install's finder) are not run.
    Path(site, "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    inst = subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "-q", "--no-deps",
                           "--no-index", str(wheel)], capture_output=True, text=True)
    if inst.returncode != 0 and "--python" in inst.stderr:  # an old pip: install with the target's own
        inst = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index",
                               "--target", site, str(wheel)], capture_output=True, text=True)
    assert inst.returncode == 0, inst.stderr
    return venv


def _vsr(venv: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VSR_WEIGHTS_DIR")}
    return subprocess.run([str(venv / "bin" / "vsr"), *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=600)


def test_wheel_runs_outside_the_repo(installed: Path, tmp_path: Path):
    where = subprocess.run([str(installed / "bin" / "python"), "-c",
                            "import vsr, vsr.weights as w, vsr_app.pipelines.clip as c; print(vsr.__file__); "
                            "print(w.weights_dir()); print(c.__file__)"],
                           cwd=tmp_path, capture_output=True, text=True, check=True).stdout.split()
    assert all(str(installed) in p for p in where), where  # the wheel's code and weights, not the checkout's
    site = next(installed.glob("lib/python*/site-packages"))
    assert not (site / "pipelines").exists() and not (site / "cli.py").exists()  # no generic top-level names
    for name in ("pipelines", "cli"):
        probe = subprocess.run([str(installed / "bin" / "python"), "-c", f"import {name}"], cwd=tmp_path,
                               capture_output=True, text=True)
        assert probe.returncode != 0 and "No module named" in probe.stderr
    listing = _vsr(installed, tmp_path, "models", "--json")
    assert listing.returncode == 0, listing.stderr
    files = {row["file"] for row in json.loads(listing.stdout)}
    assert {p.name for p in (ROOT / "weights").glob("*.pt")} == files
    clip = write_clip(tmp_path / "in.mp4", frames=6, size=(48, 32), audio=True)
    res = _vsr(installed, tmp_path, "upscale", "in.mp4", "out.mp4", "--scale", "2", "--preset", "ultrafast")
    assert res.returncode == 0, res.stderr
    summary = json.loads((tmp_path / "out.mp4.summary.json").read_text())
    assert summary["frames"] == 6 and summary["engine"]["weights"].startswith(str(installed))
    assert clip.is_file()


def test_corrupt_shipped_weight_is_refused(installed: Path, tmp_path: Path):
    from vsr.config import DEFAULT_MODEL

    site = next(installed.glob("lib/python*/site-packages"))
    target = site / "vsr" / "shipped_weights" / f"{DEFAULT_MODEL}_x3.pt"
    data = bytearray(target.read_bytes())
    try:
        data[len(data) // 2] ^= 0xFF
        target.write_bytes(bytes(data))
        write_clip(tmp_path / "in.mp4", frames=4, size=(48, 32))
        res = _vsr(installed, tmp_path, "upscale", "in.mp4", "out.mp4", "--scale", "3")
        assert res.returncode != 0
        assert "corrupt" in res.stderr and "Traceback" not in res.stderr
        assert not (tmp_path / "out.mp4").exists()
    finally:
        data[len(data) // 2] ^= 0xFF
        target.write_bytes(bytes(data))


def test_io_and_frame_modules_import_without_torch():
    """vsr.io, the frame tools, vsr.evaluate and the ffmpeg pipe never pull in torch (the CLI starts
    without it; extract-frames and the image helpers need none)."""
    import subprocess
    import sys

    code = ("import sys; import vsr.io, vsr.io.images, vsr.io.ffmpeg_pipe, vsr.io.probe, vsr.evaluate, "
            "pipelines.frames; bad = [m for m in ('torch',) if m in sys.modules]; print(bad); "
            "sys.exit(1 if bad else 0)")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
