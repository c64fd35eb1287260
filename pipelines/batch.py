"""``vsr batch``: a directory tree of clips and images, resumable, local or on Ray.

- Inputs: ``IN_DIR`` walked recursively (symlinked folders are not followed;
  ``OUT_DIR`` is skipped if it lies inside ``IN_DIR``), filtered by glob
  patterns. Outputs mirror the relative paths under ``OUT_DIR``; a path that
  would resolve outside ``OUT_DIR`` is refused.
- Resume: ``OUT_DIR/manifest.jsonl`` gets one JSON line per finished input
  (path, size, mtime, output, status, frames, fps, means, error). An input is
  skipped when its last record is ``done`` for the same size and mtime and the
  output exists; everything else is (re)done. Outputs are written ``.part``
  then renamed (pipelines.clip), so a killed run leaves no half file under the
  final name. A ``started`` record goes into the manifest before each input,
  so the next start removes exactly the ``.part`` files of inputs that were
  started and never finished, and nothing else.
- Ownership: an output is never written over an input, two inputs never share
  an output (refused before anything starts), and an existing file that the
  manifest did not write is not replaced without ``--overwrite``.
- Isolation: each input runs in its own task; a failure is recorded with its
  one-line reason and the batch goes on. With ``--jobs`` > 1 each input runs in
  its own spawned process, so one that dies (a segfault, the OOM killer) is
  recorded as failed and the others go on.
- Executors: ``local`` (``--jobs N`` processes, CPU threads split between
  them, ``--devices`` dealt round robin) or ``ray`` (one task per input on a
  Ray cluster; results come back to this driver, which alone writes the
  manifest).
"""

from __future__ import annotations

import fcntl
import fnmatch
import json
import logging
import math
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from multiprocessing import get_context
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any

from vsr.config import UpscaleConfig
from vsr.io.atomic import PendingOutput, part_path, write_text_atomic
from vsr.io.encode import CONTAINER_FORMATS
from vsr.io.images import IMAGE_EXTENSIONS

__all__ = ["DEFAULT_GLOBS", "BatchConfig", "BatchReport", "Task", "plan_tasks", "run_batch"]

log = logging.getLogger(__name__)
# A worker's engines, one per (device, engine_key: source and QP band, runtime probe size).
EngineKey = tuple[str | None, tuple[str, int | None], tuple[int, int]]

VIDEO_EXTENSIONS = (".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".ts", ".mpg", ".mpeg", ".flv", ".wmv", ".3gp")
DEFAULT_GLOBS = tuple(f"*{e}" for e in VIDEO_EXTENSIONS + IMAGE_EXTENSIONS)
MANIFEST = "manifest.jsonl"
SUMMARY = "summary.json"
LOCK = ".vsr-batch.lock"


@dataclass(frozen=True)
class BatchConfig:
    src_dir: Path
    dst_dir: Path
    upscale: UpscaleConfig = field(default_factory=UpscaleConfig)
    globs: tuple[str, ...] = DEFAULT_GLOBS
    ext: str | None = None  # output extension for videos (default: keep, else .mkv)
    jobs: int = 1
    devices: tuple[str, ...] = ()
    executor: str = "local"
    address: str | None = None
    force: bool = False

    def __post_init__(self) -> None:
        if self.jobs < 1:
            raise ValueError("--jobs must be >= 1")
        if self.executor not in ("local", "ray"):
            raise ValueError(f"unknown executor {self.executor!r}; known: local, ray")
        if self.ext is not None and self.ext.lower() not in CONTAINER_FORMATS:
            raise ValueError(f"--ext must be one of {', '.join(CONTAINER_FORMATS)}")


@dataclass(frozen=True)
class Task:
    rel: str  # input path relative to src_dir, POSIX style
    src: str
    dst: str
    size: int
    mtime_ns: int


@dataclass
class BatchReport:
    done: int = 0
    skipped: int = 0
    failed: int = 0
    records: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def total(self) -> int:
        return self.done + self.skipped + self.failed


def _output_rel(rel: Path, ext: str | None) -> Path:
    suffix = rel.suffix.lower()
    if suffix in IMAGE_EXTENSIONS:
        return rel
    if ext:
        return rel.with_suffix(ext.lower())
    return rel if suffix in CONTAINER_FORMATS else rel.with_suffix(".mkv")


def _walk(src_dir: Path, skip: Path | None) -> Iterator[Path]:
    for root, dirs, files in os.walk(src_dir, followlinks=False):
        root_path = Path(root)
        dirs[:] = sorted(d for d in dirs if skip is None or (root_path / d).resolve() != skip)
        for name in sorted(files):
            yield root_path / name


def plan_tasks(cfg: BatchConfig) -> list[Task]:
    """Inputs under ``src_dir`` matching the globs, with their output paths."""
    src_dir = Path(cfg.src_dir)
    if not src_dir.is_dir():
        raise ValueError(f"input folder not found: {src_dir}")
    dst_root = Path(cfg.dst_dir).resolve()
    src_root = src_dir.resolve()
    if dst_root == src_root:
        raise ValueError("OUT_DIR must differ from IN_DIR")
    tasks = []
    for path in _walk(src_dir, dst_root if dst_root.is_relative_to(src_root) else None):
        if not any(fnmatch.fnmatch(path.name.lower(), g.lower()) for g in cfg.globs):
            continue
        if not path.is_file():
            continue  # dangling links, sockets
        rel = path.relative_to(src_dir)
        dst = dst_root / _output_rel(rel, cfg.ext)
        # Never outside OUT_DIR, even through a symlinked folder already in it.
        if not Path(os.path.realpath(dst.parent)).is_relative_to(dst_root) and dst.parent.exists():
            raise ValueError(f"output for {rel} would leave OUT_DIR; refusing")
        if not dst.resolve().is_relative_to(dst_root):
            raise ValueError(f"output for {rel} would leave OUT_DIR; refusing")
        st = path.stat()
        tasks.append(Task(rel=rel.as_posix(), src=str(path), dst=str(dst), size=st.st_size, mtime_ns=st.st_mtime_ns))
    _check_ownership(tasks)
    return tasks


def _check_ownership(tasks: list[Task]) -> None:
    """Refuse a plan where two inputs share an output, or an output is an input."""
    inputs = {os.path.realpath(t.src): t.rel for t in tasks}
    by_output: dict[str, str] = {}
    for t in tasks:
        out = os.path.realpath(t.dst)
        if out in inputs:
            raise ValueError(f"output for {t.rel} would overwrite the input {inputs[out]}; "
                             "choose an OUT_DIR that does not hold IN_DIR's files")
        if out in by_output:
            raise ValueError(f"inputs {by_output[out]} and {t.rel} would both be written to {t.dst}; "
                             "rename one of them")
        by_output[out] = t.rel


def _manifest_records(dst_dir: Path) -> Iterator[dict[str, Any]]:
    path = Path(dst_dir) / MANIFEST
    if not path.is_file():
        return
    for line in path.read_text().splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:  # a torn last line from a kill
            continue
        if isinstance(rec, dict) and "input" in rec:
            yield rec


def read_manifest(dst_dir: Path) -> dict[str, dict[str, Any]]:
    """Last record per input (``rel``); a torn last line from a kill is ignored."""
    return {rec["input"]: rec for rec in _manifest_records(dst_dir)}


def owned_outputs(dst_dir: Path) -> set[str]:
    """Outputs this batch folder's manifest says it wrote or started, over its whole history."""
    return {rec["output"] for rec in _manifest_records(dst_dir)
            if rec.get("status") in ("done", "started") and rec.get("output")}


def _is_complete(task: Task, rec: dict[str, Any] | None) -> bool:
    return (
        rec is not None and rec.get("status") == "done" and rec.get("size") == task.size
        and rec.get("mtime_ns") == task.mtime_ns and Path(task.dst).is_file()
    )


def _append(dst_dir: Path, record: dict[str, Any]) -> None:
    line = json.dumps(record, default=str) + "\n"
    fd = os.open(Path(dst_dir) / MANIFEST, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, line.encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def run_task(task: Task, upscale: UpscaleConfig, device: str | None, threads: int | None,
             progress: Callable[[int, int | None], None] | None = None,
             engines: dict[EngineKey, Any] | None = None) -> dict[str, Any]:
    """One input → one manifest record. Never raises for a bad input: it is recorded.

    ``progress(frames_done, frames_expected)`` reports the clip's frames (in-process runs only).
    ``engines`` caches the built engine per (device, source, runtime probe size) across the inputs of
    one process, so the weights are loaded, laid out and probed once per kind of input, not once per
    clip: clips whose engine frames are 640x360 or larger share one probe (its size is capped there),
    a smaller clip gets an engine probed at its own size, as `vsr upscale` would give it.
    """
    import torch

    from vsr.engine import build_engine
    from vsr.process import retain_freed_memory
    from vsr.runtime import probe_size_for

    from .clip import engine_frame_size, engine_key, input_source, note_source, upscale_path

    # The entry point of spawned and Ray worker processes, which never run the
    # CLI's: same heap policy as the CLI (idempotent in-process).
    retain_freed_memory()
    if threads:
        torch.set_num_threads(threads)
    cfg = replace(upscale, overwrite=True, quiet=True)
    if device:
        cfg = replace(cfg, engine=replace(cfg.engine, device=device))
    base = {"input": task.rel, "size": task.size, "mtime_ns": task.mtime_ns, "output": task.dst}
    t0 = time.perf_counter()
    try:
        Path(task.dst).parent.mkdir(parents=True, exist_ok=True)
        engine = None
        if engines is not None:
            stream = input_source(Path(task.src), cfg)
            size = engine_frame_size(Path(task.src), cfg)
            key = (device, engine_key(cfg.engine, stream), probe_size_for(size, cfg.engine.tile))
            if key not in engines:
                engines[key] = build_engine(cfg.engine, stream, size)
            built, info = engines[key]
            engine = (built, note_source(info, stream))
        report = upscale_path(Path(task.src), Path(task.dst), cfg, progress=progress, engine=engine)
    except Exception as exc:  # one input's failure, whatever it is, must not stop the batch
        reason = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
        if not isinstance(exc, (ValueError, OSError, KeyError, MemoryError)):
            reason = f"{exc.__class__.__name__}: {reason}"
            log.warning("%s failed with an unexpected %s", task.rel, exc.__class__.__name__, exc_info=True)
        return dict(base, status="failed", error=reason, seconds=round(time.perf_counter() - t0, 2))
    return dict(base, status="done", frames=report.frames, fps=round(report.fps, 3), seconds=round(report.seconds, 2),
                means={k: round(v, 4) for k, v in report.means.items()}, size_out=list(report.size_out), error=None)


def _owned_paths(dst: str) -> list[Path]:
    """The files one input's run writes: the output and its two sidecars."""
    out = Path(dst)
    return [out, out.with_name(out.name + ".frames.csv"), out.with_name(out.name + ".summary.json")]


def _remove_stale_parts(previous: dict[str, dict[str, Any]]) -> int:
    """Remove the ``.part`` files of inputs whose last record is ``started`` (a killed run), only those."""
    n = 0
    for rec in previous.values():
        if rec.get("status") != "started" or not rec.get("output"):
            continue
        for path in _owned_paths(rec["output"]):
            part = part_path(path)
            if part.is_file():
                part.unlink()
                n += 1
    return n


def _foreign_output(task: Task, owned: set[str]) -> Path | None:
    """An existing file this input would replace that the manifest did not write, or None."""
    if task.dst in owned:
        return None
    return next((p for p in _owned_paths(task.dst) if p.exists()), None)


# on_result(record, done_count, total)
ResultFn = Callable[[dict[str, Any], int, int], None]
# clip_progress(input_rel, frames_done, frames_expected)
ClipProgressFn = Callable[[str, int, "int | None"], None]


def run_batch(cfg: BatchConfig, on_result: ResultFn | None = None,
              clip_progress: ClipProgressFn | None = None) -> BatchReport:
    """Process every pending input; see the module docstring."""
    t_start = time.perf_counter()
    dst_dir = Path(cfg.dst_dir)
    dst_dir.mkdir(parents=True, exist_ok=True)
    lock = open(dst_dir / LOCK, "w")  # noqa: SIM115 (held, and flocked, for the whole batch)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        raise ValueError(f"another vsr batch is writing to {dst_dir}") from None
    try:
        tasks = plan_tasks(cfg)
        history = read_manifest(dst_dir)
        owned = owned_outputs(dst_dir)
        removed = _remove_stale_parts(history)
        if removed:
            log.warning("removed %d unfinished .part file(s) from an interrupted run", removed)
        previous = {} if cfg.force else history
        report = BatchReport()
        pending = []
        for task in tasks:
            foreign = None if cfg.upscale.overwrite else _foreign_output(task, owned)
            if foreign is not None:
                rec = {"input": task.rel, "size": task.size, "mtime_ns": task.mtime_ns, "output": task.dst,
                       "status": "failed", "seconds": 0.0,
                       "error": f"{foreign} exists and was not written by this batch (pass --overwrite to replace it)"}
                _append(dst_dir, rec)
                report.failed += 1
                report.records.append(rec)
                if on_result:
                    on_result(rec, report.total, len(tasks))
            elif _is_complete(task, previous.get(task.rel)):
                rec = dict(previous[task.rel], status="skipped")
                report.skipped += 1
                report.records.append(rec)
                if on_result:
                    on_result(rec, report.total, len(tasks))
            else:
                pending.append(task)

        def started(task: Task) -> None:
            _append(dst_dir, {"input": task.rel, "size": task.size, "mtime_ns": task.mtime_ns, "output": task.dst,
                              "status": "started"})

        def record(rec: dict[str, Any]) -> None:
            _append(dst_dir, rec)
            if rec["status"] == "done":
                report.done += 1
            else:
                report.failed += 1
            report.records.append(rec)
            if on_result:
                on_result(rec, report.total, len(tasks))

        for task in pending:  # before any work: a kill at any point leaves its parts removable
            started(task)
        if cfg.executor == "ray":
            _run_ray(cfg, pending, record)
        else:
            _run_local(cfg, pending, record, clip_progress)
        report.records.sort(key=lambda r: r["input"])
        report.seconds = time.perf_counter() - t_start
        _write_summary(dst_dir, report)
        return report
    finally:
        fcntl.flock(lock, fcntl.LOCK_UN)
        lock.close()


def _threads_per_job(jobs: int) -> int:
    return max(1, (os.cpu_count() or 1) // jobs)


def _run_local(cfg: BatchConfig, tasks: list[Task], record: Callable[[dict[str, Any]], None],
               clip_progress: ClipProgressFn | None, worker: Callable[..., None] | None = None) -> None:
    """Run ``tasks`` here (``--jobs 1``) or one spawned process each; ``worker`` is the
    process entry point (:func:`_task_process`; tests put a failing one in its place)."""
    worker = worker or _task_process
    devices: list[str | None] = [*cfg.devices] or [None]
    if cfg.jobs == 1:  # in this process: the current clip's frames can be reported, one engine serves all
        engines: dict[EngineKey, Any] = {}
        for i, task in enumerate(tasks):
            progress = None
            if clip_progress is not None:
                progress = lambda done, total, rel=task.rel: clip_progress(rel, done, total)  # noqa: E731
            record(run_task(task, cfg.upscale, devices[i % len(devices)], None, progress, engines))
        return
    threads = _threads_per_job(cfg.jobs)
    # spawn, not fork: a forked copy of a process with torch thread pools can hang. One
    # process per input, so that a worker that dies takes only its own input down.
    ctx = get_context("spawn")
    queue = list(enumerate(tasks))
    running: dict[Any, tuple[Any, Any, Task]] = {}
    try:
        while queue or running:
            while queue and len(running) < cfg.jobs:
                i, task = queue.pop(0)
                recv, send = ctx.Pipe(duplex=False)
                proc = ctx.Process(target=worker, args=(send, task, cfg.upscale, devices[i % len(devices)],
                                                               threads), daemon=True)
                proc.start()
                send.close()
                running[recv] = (proc, recv, task)
            for recv in wait(list(running)):  # type: ignore[assignment]  # the keys are Connections
                proc, _, task = running.pop(recv)
                try:
                    rec = recv.recv()
                except (EOFError, OSError):
                    rec = None
                recv.close()
                proc.join()
                if rec is None:
                    code = proc.exitcode
                    why = f"killed by signal {-code}" if code is not None and code < 0 else f"exit code {code}"
                    rec = {"input": task.rel, "size": task.size, "mtime_ns": task.mtime_ns, "output": task.dst,
                           "status": "failed", "error": f"worker process died ({why})", "seconds": None}
                    for path in _owned_paths(task.dst):
                        PendingOutput(path).discard()
                record(rec)
    finally:  # interrupted (Ctrl-C, SIGTERM): the workers go, and so do their unfinished files
        for proc, recv, task in running.values():
            proc.kill()
            proc.join()
            recv.close()
            for path in _owned_paths(task.dst):
                PendingOutput(path).discard()


def _task_process(conn: Any, task: Task, upscale: UpscaleConfig, device: str | None, threads: int | None) -> None:
    """Entry point of a spawned worker: one input, its record sent back."""
    try:
        conn.send(run_task(task, upscale, device, threads))
    finally:
        conn.close()


def _run_ray(cfg: BatchConfig, tasks: list[Task], record: Callable[[dict[str, Any]], None]) -> None:
    try:
        import ray
    except ImportError:
        raise ValueError("--executor ray needs Ray: pip install '.[ray]'") from None
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=cfg.address, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
    try:
        gpus = ray.cluster_resources().get("GPU", 0)
        remote = ray.remote(num_cpus=1, num_gpus=1 if gpus else 0)(run_task)
        refs = [remote.remote(t, cfg.upscale, None, 1) for t in tasks]
        while refs:
            ready, refs = ray.wait(refs, num_returns=1)
            record(ray.get(ready[0]))
    finally:
        if started_here:
            ray.shutdown()


def _write_summary(dst_dir: Path, report: BatchReport) -> None:
    payload = {
        "done": report.done, "skipped": report.skipped, "failed": report.failed, "seconds": round(report.seconds, 2),
        "clips": [{k: r.get(k) for k in ("input", "output", "status", "frames", "fps", "means", "error")}
                  for r in report.records],
    }
    write_text_atomic(dst_dir / SUMMARY, json.dumps(payload, indent=2, default=str) + "\n")


def format_summary(report: BatchReport) -> str:
    lines = [f"{'input':<40} {'status':<8} {'frames':>6} {'fps':>7} {'PSNR':>7}  error"]
    for r in report.records:
        psnr = (r.get("means") or {}).get("psnr", (r.get("means") or {}).get("lr_psnr"))
        lines.append(
            f"{r['input'][:40]:<40} {r['status']:<8} {r.get('frames') or '':>6} "
            f"{'' if r.get('fps') is None else format(r['fps'], '.2f'):>7} "
            f"{'' if psnr is None or (isinstance(psnr, float) and math.isnan(psnr)) else format(psnr, '.2f'):>7}  "
            f"{r.get('error') or ''}"
        )
    lines.append(f"{report.done} done, {report.skipped} skipped, {report.failed} failed in {report.seconds:.1f} s")
    return "\n".join(lines)
