"""SIGTERM and SIGINT mid-clip: cleanup as for any failure, and the exit codes shells expect."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import pytest
from conftest import gradient_rgb, write_clip

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


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_to_a_training_process_group_exits_cleanly(tmp_path: Path, sig: int, code: int):
    """A signal to the whole group (a terminal's Ctrl-C, `kill -- -PGID`) also stops the data worker;
    the error its death raises in the trainer is the signal's: the exit code, no traceback."""
    data = tmp_path / "data"
    data.mkdir()
    for i in range(4):
        cv2.imwrite(str(data / f"{i}.png"), gradient_rgb(64, 64, i)[:, :, ::-1])
    out = tmp_path / "run"
    cmd = [sys.executable, str(ROOT / "cli.py"), "train", "--model", "fast", "--scale", "2", "--data", str(data),
           "--out", str(out), "--iterations", "100000", "--batch-size", "4", "--patch-size", "24",
           "--patches-per-image", "2", "--workers", "1", "--threads", "1", "--ckpt-every", "100000",
           "--val-every", "100000", "--quiet"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                            start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 300  # a loaded machine starts torch slowly
    while time.time() < deadline and proc.poll() is None and not (out / "command.txt").exists():
        time.sleep(0.05)
    time.sleep(3)  # the data worker is up once the first batches are drawn
    assert proc.poll() is None, "training stopped before the signal could be sent"
    os.killpg(proc.pid, sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err
    assert "Traceback" not in err, err


def test_a_worker_is_quiet_only_about_its_fd_server_losing_the_trainer(capsys: pytest.CaptureFixture[str]):
    """The worker's excepthook drops the fd server's connection errors and prints every other error."""
    from types import TracebackType

    from vsr.train.loop import _quiet_when_the_trainer_is_gone

    def args_for(exc: BaseException, filename: str) -> tuple[type[BaseException], BaseException, TracebackType | None]:
        code = compile("def serve(e):\n    raise e\n", filename, "exec")
        scope: dict = {}
        exec(code, scope)
        try:
            scope["serve"](exc)
        except BaseException as caught:
            return type(caught), caught, caught.__traceback__
        raise AssertionError("unreachable")

    sharer = "/x/multiprocessing/resource_sharer.py"
    _quiet_when_the_trainer_is_gone(*args_for(ConnectionResetError("peer gone"), sharer))
    _quiet_when_the_trainer_is_gone(*args_for(EOFError(), sharer))
    assert capsys.readouterr().err == ""
    _quiet_when_the_trainer_is_gone(*args_for(ValueError("a real bug"), sharer))
    _quiet_when_the_trainer_is_gone(*args_for(ConnectionResetError("elsewhere"), "/x/other.py"))
    err = capsys.readouterr().err
    assert "a real bug" in err and "elsewhere" in err
