"""`vsr upscale` against ffmpeg's own bicubic transcode of the same clip: wall time and peak RSS.

Usage: python benchmarks/e2e.py [CLIP] [--runs 3] [--vsr-args "--model fast"] [--out benchmarks/results]

Runs, alternating, ``vsr upscale CLIP OUT --scale 2`` (defaults plus ``--vsr-args``) and

    ffmpeg -y -threads 2 -i CLIP -vf scale=2*iw:2*ih:flags=bicubic -c:v libx264 -crf 18 -preset medium -c:a copy OUT

each ``--runs`` times, as separate processes; reports the median wall time and the median peak
resident set size of each (from ``wait4``), their ratio, and writes OUT/e2e.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _run(cmd: list[str]) -> tuple[float, float]:
    """(wall seconds, peak RSS in MiB) of one child process; raises if it fails."""
    t0 = time.perf_counter()
    pid = os.posix_spawn(cmd[0], cmd, os.environ, file_actions=[
        (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
        (os.POSIX_SPAWN_OPEN, 2, os.devnull, os.O_WRONLY, 0)])
    _, status, usage = os.wait4(pid, 0)
    wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed ({os.waitstatus_to_exitcode(status)}): {shlex.join(cmd)}")
    return wall, usage.ru_maxrss / 1024.0  # Linux reports KiB


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("clip", nargs="?", type=Path, default=ROOT.parent / "shared" / "data" / "clips" / "chaplin.mp4")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--vsr-args", default="", help="Extra vsr upscale options, one string.")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = ap.parse_args()
    ffmpeg = shutil.which("ffmpeg")
    vsr = shutil.which("vsr") or str(Path(sys.executable).with_name("vsr"))
    if ffmpeg is None:
        raise SystemExit("needs an ffmpeg binary")
    with tempfile.TemporaryDirectory() as tmp:
        cmds = {
            "vsr": [vsr, "upscale", str(args.clip), f"{tmp}/vsr.mp4", "--scale", "2", "--overwrite", "--quiet",
                    *shlex.split(args.vsr_args)],
            "ffmpeg": [ffmpeg, "-y", "-threads", "2", "-i", str(args.clip), "-vf",
                       "scale=2*iw:2*ih:flags=bicubic", "-c:v", "libx264", "-crf", "18", "-preset", "medium",
                       "-c:a", "copy", f"{tmp}/ffmpeg.mp4"],
        }
        results: dict[str, list[tuple[float, float]]] = {k: [] for k in cmds}
        for i in range(args.runs):
            for name, cmd in cmds.items():
                results[name].append(_run(cmd))
                print(f"run {i + 1} {name:<6} {results[name][-1][0]:7.2f} s  {results[name][-1][1]:7.0f} MiB",
                      flush=True)
    med = {k: {"wall_s": statistics.median(w for w, _ in v), "peak_rss_mib": statistics.median(r for _, r in v)}
           for k, v in results.items()}
    ratio = med["vsr"]["wall_s"] / med["ffmpeg"]["wall_s"]
    summary = {"clip": str(args.clip), "runs": args.runs, "vsr_args": args.vsr_args, "medians": med,
               "vsr_over_ffmpeg_wall": round(ratio, 2), "commands": {k: shlex.join(c) for k, c in cmds.items()}}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "e2e.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"medians: vsr {med['vsr']['wall_s']:.2f} s / {med['vsr']['peak_rss_mib']:.0f} MiB, ffmpeg "
          f"{med['ffmpeg']['wall_s']:.2f} s / {med['ffmpeg']['peak_rss_mib']:.0f} MiB -> vsr is {ratio:.2f}x ffmpeg")


if __name__ == "__main__":
    main()
