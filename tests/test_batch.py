"""`vsr batch` on a tree built from the real clips: resume, isolation, SIGKILL, Ray."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import CLIPS, shared

from cli import main
from pipelines.batch import BatchConfig, plan_tasks, read_manifest, run_batch
from vsr.config import EncodeConfig, EngineConfig, UpscaleConfig

ROOT = Path(__file__).resolve().parent.parent
FAST = ["--model", "bicubic", "--preset", "ultrafast", "--no-ssim", "--quiet"]
SMALL = ["carphone_pristine.mp4", "realshort.mp4", "bikes.mp4"]


def _tree(root: Path, names: list[str]) -> Path:
    shared("clips")
    (root / "nested" / "deeper").mkdir(parents=True)
    for i, name in enumerate(names):
        target = root / name if i % 2 == 0 else root / "nested" / name
        shutil.copy(CLIPS / name, target)
    (root / "nested" / "deeper" / "empty.mp4").write_bytes(b"")
    src = (CLIPS / "chaplin.mp4").read_bytes()
    (root / "truncated.mp4").write_bytes(src[: len(src) // 3])
    shutil.copy(shared("Set5", "bird.png"), root / "nested" / "bird.png")
    (root / "notes.txt").write_text("not media, not matched by the default globs\n")
    return root


def _outputs(out: Path) -> list[str]:
    return sorted(p.relative_to(out).as_posix() for p in out.rglob("*")
                  if p.is_file() and not p.name.endswith((".csv", ".json", ".jsonl", ".lock")))


def test_batch_all_clips_resume_and_isolation(tmp_path: Path):
    src = _tree(tmp_path / "in", sorted(p.name for p in CLIPS.iterdir()) if CLIPS.is_dir() else [])
    out = tmp_path / "out"
    before = {p: p.stat().st_mtime_ns for p in src.rglob("*")}
    res = CliRunner().invoke(main, ["batch", str(src), str(out), *FAST])
    assert res.exit_code == 1, res.output  # two bad inputs -> non-zero, but the batch went on
    summary = json.loads((out / "summary.json").read_text())
    assert summary["done"] == 9 and summary["failed"] == 2 and summary["skipped"] == 0
    failed = {c["input"]: c["error"] for c in summary["clips"] if c["status"] == "failed"}
    assert set(failed) == {"truncated.mp4", "nested/deeper/empty.mp4"}
    assert all(failed.values()) and all("\n" not in e for e in failed.values())
    expected = sorted(t.rel for t in plan_tasks(BatchConfig(src, out)) if t.rel not in failed)
    assert _outputs(out) == expected  # mirrored tree, exactly one output per good input
    for clip in summary["clips"]:
        if clip["status"] == "done":
            assert clip["frames"] >= 1 and clip["fps"] > 0
    assert not list(out.rglob("*.part"))
    assert {p: p.stat().st_mtime_ns for p in src.rglob("*")} == before  # inputs untouched

    res = CliRunner().invoke(main, ["batch", str(src), str(out), *FAST])
    again = json.loads((out / "summary.json").read_text())
    assert again["skipped"] == 9 and again["done"] == 0 and again["failed"] == 2

    # a changed input is redone; --force redoes everything
    changed = next(src.rglob("carphone_pristine.mp4"))
    os.utime(changed, ns=(time.time_ns(), time.time_ns()))
    run_batch(BatchConfig(src, out, UpscaleConfig(engine=EngineConfig(model="bicubic"),
                                                   encode=EncodeConfig(preset="ultrafast"), ssim=False),
                          globs=("*.mp4",)))
    last = read_manifest(out)
    rel = changed.relative_to(src).as_posix()
    assert last[rel]["status"] == "done" and last[rel]["mtime_ns"] == changed.stat().st_mtime_ns


def test_sigkill_then_rerun_completes(tmp_path: Path):
    src = _tree(tmp_path / "in", SMALL + ["chaplin.mp4"])
    out = tmp_path / "out"
    cmd = [sys.executable, str(ROOT / "cli.py"), "batch", str(src), str(out), *FAST]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    deadline = time.time() + 600  # generous: a loaded machine starts torch slowly
    while time.time() < deadline and proc.poll() is None:
        if list(out.rglob("*.part")) and (out / "manifest.jsonl").exists():
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the batch finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert list(out.rglob("*.part")), "the kill should land in the middle of a clip"
    done_before = [r for r in read_manifest(out).values() if r["status"] == "done"]
    assert 0 < len(done_before) < 5

    res = CliRunner().invoke(main, ["batch", str(src), str(out), *FAST])
    assert res.exit_code == 1  # the two bad inputs
    summary = json.loads((out / "summary.json").read_text())
    assert summary["skipped"] == len(done_before)
    assert summary["done"] + summary["skipped"] == 5
    assert not list(out.rglob("*.part"))
    assert _outputs(out) == sorted(
        ["carphone_pristine.mp4", "nested/realshort.mp4", "bikes.mp4", "nested/chaplin.mp4", "nested/bird.png"])


def test_never_writes_outside_out_dir(tmp_path: Path):
    src = tmp_path / "in"
    src.mkdir()
    shutil.copy(shared("Set5", "bird.png"), src / "a.png")
    out = tmp_path / "out"
    out.mkdir()
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (src / "linked").mkdir()
    shutil.copy(src / "a.png", src / "linked" / "b.png")
    os.symlink(outside, out / "linked")  # a trap inside OUT_DIR
    with pytest.raises(ValueError, match="would leave OUT_DIR"):
        plan_tasks(BatchConfig(src, out))
    assert not list(outside.iterdir())
    with pytest.raises(ValueError, match="must differ"):
        plan_tasks(BatchConfig(src, src))


def test_ray_executor_matches_local(tmp_path: Path):
    ray = pytest.importorskip("ray")
    src = _tree(tmp_path / "in", SMALL[:2])
    up = UpscaleConfig(engine=EngineConfig(model="bicubic"), encode=EncodeConfig(preset="ultrafast"), ssim=False)
    local = run_batch(BatchConfig(src, tmp_path / "local", up))
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        remote = run_batch(BatchConfig(src, tmp_path / "ray", up, executor="ray"))
    finally:
        ray.shutdown()
    keys = ("input", "status", "frames", "size_out", "error", "size")
    norm = lambda rep: sorted(  # noqa: E731
        tuple(str(r.get(k)).replace(str(tmp_path / "ray"), "OUT").replace(str(tmp_path / "local"), "OUT")
              for k in keys) for r in rep.records)
    assert norm(remote) == norm(local)
    assert (remote.done, remote.failed) == (local.done, local.failed) == (3, 2)
    assert _outputs(tmp_path / "ray") == _outputs(tmp_path / "local")


def test_progress_bars_with_output(tmp_path: Path, tiny_clip: Path):
    """Not quiet: the overall and per-clip bars run (they are off in the other tests)."""
    src = tmp_path / "in"
    src.mkdir()
    shutil.copy(tiny_clip, src / "a.mp4")
    res = CliRunner().invoke(main, ["batch", str(src), str(tmp_path / "out"), "--model", "bicubic"])
    assert res.exit_code == 0, res.output
    assert "1 done, 0 skipped, 0 failed" in res.output
