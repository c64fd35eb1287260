"""SIGTERM and SIGINT mid-clip: cleanup as for any failure, and the exit codes shells expect."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import write_clip

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_clip(tmp_path_factory.mktemp("sig") / "long.mp4", frames=400, size=(320, 240), audio=True)


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
@pytest.mark.parametrize("overwrite", [False, True])
def test_signal_mid_clip_leaves_nothing(long_clip: Path, tmp_path: Path, sig: int, code: int, overwrite: bool):
    dst = tmp_path / "out.mp4"
    if overwrite:
        dst.write_bytes(b"the previous output")
    cmd = [sys.executable, str(ROOT / "cli.py"), "upscale", str(long_clip), str(dst), "--model", "bicubic",
           "--scale", "4", "--preset", "medium", "--quiet", *(["--overwrite"] if overwrite else [])]
    # A shell without job control starts background jobs with SIGINT ignored, and Python keeps an
    # ignored SIGINT ignored: give the child the default disposition, as a terminal would.
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    part = dst.with_name(dst.name + ".part")
    deadline = time.time() + 300  # a loaded machine starts torch slowly
    while time.time() < deadline and proc.poll() is None and not part.exists():
        time.sleep(0.05)
    assert proc.poll() is None, "finished before the signal could be sent"
    time.sleep(0.3)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err
    assert "Traceback" not in err
    assert not list(tmp_path.glob("*.part")), list(tmp_path.iterdir())
    if overwrite:
        assert dst.read_bytes() == b"the previous output"  # replaced only by a finished output
    else:
        assert not dst.exists()
    assert not (tmp_path / "out.mp4.frames.csv").exists()
