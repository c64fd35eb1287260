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
from pipelines.batch import BatchConfig, plan_tasks, read_manifest, run_batch, run_task
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


# every container and layout the clips hold (QCIF and 720p, mp4 and WebM/VP9, with and without audio); the three
# large 720p H.264 clips add only encode time here and are covered end to end in test_pipelines
MIXED = [*SMALL, "chaplin.mp4", "big_buck_bunny_432_433.webm"]


def test_batch_mixed_clips_resume_and_isolation(tmp_path: Path):
    src = _tree(tmp_path / "in", MIXED)
    out = tmp_path / "out"
    before = {p: p.stat().st_mtime_ns for p in src.rglob("*")}
    res = CliRunner().invoke(main, ["batch", str(src), str(out), *FAST])
    assert res.exit_code == 1, res.output  # two bad inputs -> non-zero, but the batch went on
    summary = json.loads((out / "summary.json").read_text())
    assert summary["done"] == len(MIXED) + 1 and summary["failed"] == 2 and summary["skipped"] == 0  # + bird.png
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
    assert again["skipped"] == len(MIXED) + 1 and again["done"] == 0 and again["failed"] == 2

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
    src = _tree(tmp_path / "in", [*SMALL, "chaplin.mp4"])
    out = tmp_path / "out"
    cmd = [sys.executable, str(ROOT / "cli.py"), "batch", str(src), str(out), *FAST]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    deadline = time.time() + 600  # generous: a loaded machine starts torch slowly
    while time.time() < deadline and proc.poll() is None:
        # mid-clip, after at least one clip is done ("started" records are written up front)
        if list(out.rglob("*.part")) and any(r["status"] == "done" for r in read_manifest(out).values()):
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


def _dying_worker(conn, task, upscale, device, threads):
    """A worker process that dies hard on inputs named *crash*, as a segfault or the OOM killer would."""
    from pipelines.batch import _task_process

    if "crash" in task.rel:
        os.kill(os.getpid(), signal.SIGKILL)
    _task_process(conn, task, upscale, device, threads)


def _cfg(src: Path, out: Path, **kw) -> BatchConfig:
    up = UpscaleConfig(engine=EngineConfig(model="bicubic"), encode=EncodeConfig(preset="ultrafast"), quiet=True,
                       ssim=False, overwrite=kw.pop("overwrite", False))
    return BatchConfig(src, out, upscale=up, **kw)


def test_a_dying_worker_fails_only_its_input(tmp_path: Path):
    from pipelines.batch import _run_local, plan_tasks

    src = tmp_path / "in"
    src.mkdir()
    for name in ("a.png", "crash.png", "b.png"):
        shutil.copy(shared("Set5", "bird.png"), src / name)
    out = tmp_path / "out"
    out.mkdir()
    cfg = _cfg(src, out, jobs=2)
    records: list[dict] = []
    _run_local(cfg, plan_tasks(cfg), records.append, None, worker=_dying_worker)
    status = {r["input"]: (r["status"], r["error"]) for r in records}
    assert status["a.png"] == ("done", None) and status["b.png"] == ("done", None)
    assert status["crash.png"][0] == "failed" and "signal 9" in status["crash.png"][1]
    assert not list(out.rglob("*.part"))


def test_batch_removes_only_its_own_part_files(tmp_path: Path):
    src = tmp_path / "in"
    src.mkdir()
    shutil.copy(shared("Set5", "bird.png"), src / "a.png")
    out = tmp_path / "out"
    out.mkdir()
    (out / "thesis.docx.part").write_text("a user's file")
    (src / "draft.part").write_text("an input folder's file")
    # a run killed while it wrote a.png: its record says started, its .part is there
    (out / "manifest.jsonl").write_text(json.dumps({"input": "a.png", "output": str(out / "a.png"),
                                                    "status": "started", "size": 0, "mtime_ns": 0}) + "\n")
    (out / "a.png.part").write_bytes(b"half")
    report = run_batch(_cfg(src, out))
    assert report.done == 1
    assert (out / "thesis.docx.part").read_text() == "a user's file"
    assert (src / "draft.part").read_text() == "an input folder's file"
    assert not (out / "a.png.part").exists() and (out / "a.png").is_file()


def test_batch_never_overwrites_inputs_or_foreign_files(tmp_path: Path):
    root = tmp_path / "root"
    inner = root / "in"
    (inner / "in").mkdir(parents=True)
    shutil.copy(shared("Set5", "bird.png"), inner / "a.png")
    shutil.copy(shared("Set5", "bird.png"), inner / "in" / "a.png")
    before = (inner / "a.png").read_bytes()
    with pytest.raises(ValueError, match="overwrite the input"):  # IN_DIR inside OUT_DIR
        run_batch(_cfg(inner, root))
    assert (inner / "a.png").read_bytes() == before

    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(shared("Set5", "bird.png"), src / "clip.png")
    out = tmp_path / "out"
    out.mkdir()
    (out / "clip.png").write_bytes(b"someone else's picture")
    report = run_batch(_cfg(src, out))
    assert report.failed == 1 and "not written by this batch" in report.records[0]["error"]
    assert (out / "clip.png").read_bytes() == b"someone else's picture"
    report = run_batch(_cfg(src, out))  # a refusal does not make the file ours
    assert report.failed == 1 and (out / "clip.png").read_bytes() == b"someone else's picture"
    report = run_batch(_cfg(src, out, overwrite=True))
    assert report.done == 1 and (out / "clip.png").read_bytes() != b"someone else's picture"
    report = run_batch(_cfg(src, out))  # now it is ours: skipped as done
    assert report.skipped == 1


def test_batch_refuses_two_inputs_with_one_output(tmp_path: Path):
    src = tmp_path / "in"
    src.mkdir()
    shutil.copy(CLIPS / "realshort.mp4", src / "dup.3gp") if CLIPS.is_dir() else pytest.skip("no clips")
    shutil.copy(CLIPS / "realshort.mp4", src / "dup.mkv")
    out = tmp_path / "out"
    res = CliRunner().invoke(main, ["batch", str(src), str(out), *FAST])
    assert res.exit_code != 0 and "both be written" in res.output, res.output
    assert not (out / "dup.mkv").exists()


def test_one_engine_serves_the_whole_in_process_batch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    import vsr.engine

    built = []
    real = vsr.engine.build_engine
    def counting(cfg, *a):
        built.append(cfg)
        return real(cfg, *a)

    monkeypatch.setattr(vsr.engine, "build_engine", counting)
    src = tmp_path / "in"
    src.mkdir()
    for name in ("a.png", "b.png", "c.png"):
        shutil.copy(shared("Set5", "bird.png"), src / name)
    report = run_batch(_cfg(src, tmp_path / "out"))
    assert report.done == 3 and len(built) == 1
    frames = [json.loads((tmp_path / "out" / f"{n}.png.summary.json").read_text())["frames"] for n in "abc"]
    assert frames == [1, 1, 1]  # per-clip figures, not the engine's running total


def test_batch_engine_per_probe_size(tmp_path: Path):
    """In one process the batch builds one engine per (device, source, probe size): clips of one size share it,
    a clip of another size below 640x360 gets its own, probed at its size as `vsr upscale` would probe it."""
    shared("clips")
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    shutil.copy(CLIPS / "realshort.mp4", src / "a.mp4")
    shutil.copy(CLIPS / "realshort.mp4", src / "b.mp4")
    shutil.copy(CLIPS / "carphone_pristine.mp4", src / "c.mp4")
    upscale = UpscaleConfig(engine=EngineConfig(model="bicubic"), encode=EncodeConfig(preset="ultrafast"),
                            ssim=False, quiet=True)
    tasks = plan_tasks(BatchConfig(src, out, upscale))
    engines: dict = {}
    records = [run_task(t, upscale, None, None, None, engines) for t in tasks]
    assert [r["status"] for r in records] == ["done"] * 3, records
    assert sorted(size for _, _, size in engines) == [(144, 176), (240, 320)]
