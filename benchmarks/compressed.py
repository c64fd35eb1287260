"""The compressed-source benchmark: gain over bicubic when the LR is a streaming-quality video.

Usage: python benchmarks/compressed.py [--models fast fast:compressed espcn edsr LABEL=CKPT]
                                       [--temporal] [--frames 20] [--crfs 18 23 28 33] [--scale 2] [--dtype fp32]
                                       [--out benchmarks/results]
       python benchmarks/compressed.py --images ../shared/data/Set14 ../shared/data/B100
                                       [--jpeg 30 50 75] [--h264p 23 28] [--name images] ...

A model is a registered name (its shipped clean-source weights), ``NAME:compressed`` (its
compressed-source weights, as ``--source compressed`` runs them), ``NAME:auto`` (what
``vsr upscale --eval [--eval-crf C] --source auto`` runs: the clean weights on the clean LR, and on
each re-encoded LR the compressed-source weights of the QP band its median macroblock QP over the
first ``vsr.io.probe.QP_FRAMES`` frames falls in, ``vsr.weights.default_weights``) or ``LABEL=CHECKPOINT``.
Each row records the LR's median QP and the weights file that ran.

For each real 720p clip in ../shared/data/clips (never trained on): the first ``--frames`` frames
are the HR; the LR is their MATLAB-bicubic downscale, taken as it is ("clean") and after a
libx264 round trip at each CRF (vsr.io.recompress: veryfast, no B-frames, P-frames referencing
earlier frames, as `vsr upscale --eval --eval-crf` does). Each shipped model and bicubic
upscale the same LR; the score is Y-PSNR against the HR, reported as the gain over bicubic of
that same LR. Writes OUT/compressed_xS.csv and OUT/compressed_xS.png (mean gain against CRF), S the scale.

With ``--images FOLDER...`` the HR is each image's Y (BT.601 studio swing, cropped to a multiple
of the scale) and the LR its MATLAB-bicubic downscale, clean, through OpenCV JPEG at each
``--jpeg`` quality, and through a libx264 P-frame at each ``--h264p`` CRF (the ``h264p`` step of
the training chain, seeded per image). Writes OUT/compressed_NAME_xS.csv with the same columns
(``condition`` in place of ``crf``) and prints the mean gain per condition.

``--temporal`` adds, for each model, a row ``LABEL+t``: its output after the flow-guided temporal
blend (``vsr.temporal``) on each compressed LR at that LR's median QP, the clean LR left alone. That
is what ``vsr upscale --temporal auto`` does where compressed-source weights run; for other rows it
is what ``--temporal on`` would give.

A multi-frame checkpoint (``frames`` > 1) upscales each frame from its window of neighbours
(the video engine runs one frame at a time, so this is where such weights are measured);
``--still-ablation`` adds a row for the same weights fed the frame alone (a still window).
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipelines.clip import engine_key  # noqa: E402
from pipelines.metrics import degrade_frame  # noqa: E402
from pipelines.plot import Series, plot  # noqa: E402
from vsr.color import to_uint  # noqa: E402
from vsr.config import ENSEMBLES, EngineConfig  # noqa: E402
from vsr.degrade import degrade  # noqa: E402
from vsr.degrade_chain import parse_chain  # noqa: E402
from vsr.engine import Engine, EngineInfo, build_engine  # noqa: E402
from vsr.frames import YuvFrame, temporal_windows  # noqa: E402
from vsr.io.decode import iter_frames  # noqa: E402
from vsr.io.images import list_images, load_y  # noqa: E402
from vsr.io.probe import QP_FRAMES, SourceChoice  # noqa: E402
from vsr.io.recompress import Recompressor  # noqa: E402
from vsr.metrics import psnr  # noqa: E402
from vsr.models.ecb import StillWindow  # noqa: E402
from vsr.process import retain_freed_memory  # noqa: E402
from vsr.temporal import TemporalParams, blend_sequence  # noqa: E402
from vsr.weights import load_checkpoint, model_from_checkpoint  # noqa: E402

CLIPS = ("bigbuckbunny.mp4", "big_buck_bunny_432_433.webm", "cockatoo.mp4", "fire2.mp4")
DATA = ROOT.parent / "shared" / "data" / "clips"


def _config(spec: str, scale: int, dtype: str, runtime: str, ensemble: int = 1) -> EngineConfig:
    """EngineConfig for a --models entry: NAME, NAME:compressed or LABEL=CHECKPOINT."""
    weights: Path | None = None
    if "=" in spec:
        weights = Path(spec.split("=", 1)[1])
        name, source = load_checkpoint(weights)["model"], "auto"
    else:
        name, _, source = spec.partition(":")
        source = source or "clean"
    return EngineConfig(model=name, weights=weights, source=source, scale=scale, device="cpu", dtype=dtype,
                        batch_size=1, runtime=runtime, ensemble=ensemble)


class WindowEngine:
    """A multi-frame checkpoint (``frames`` > 1) on this benchmark: each frame upscaled from its window
    of neighbours (:func:`vsr.frames.temporal_windows`, the ends repeated), fp32 torch. The video
    engine runs one frame at a time, so this is the only place such weights run; on images the window
    is the image repeated (:class:`vsr.models.ecb.StillWindow`)."""

    def __init__(self, path: Path) -> None:
        self.net = model_from_checkpoint(load_checkpoint(path)).eval()
        self.frames = int(getattr(self.net, "frames"))  # noqa: B009  # an ECBNet (frames > 1: see _engine)
        self.still = Engine(StillWindow(self.net), device="cpu", dtype=torch.float32, batch_size=1)
        self.bicubic_y = self.still.bicubic_y
        self.upscale_y = self.still.upscale_y

    def upscale_sequence(self, ys: np.ndarray) -> np.ndarray:
        """uint8 (T, h, w) consecutive LR planes → uint8 (T, sh, sw)."""
        windows = temporal_windows(ys, self.frames)
        out = []
        with torch.inference_mode():
            for w in windows:
                y = self.net(torch.from_numpy(w[None].astype(np.float32) / 255.0))
                out.append(to_uint(y[0, 0].numpy() * 255.0))
        return np.stack(out)


class RoutedEngine:
    """``NAME:auto``: the shipped weights ``vsr upscale --source auto`` picks for each LR, one
    engine per source and QP band (``pipelines.clip.engine_key``), built when first needed."""

    def __init__(self, name: str, scale: int, dtype: str, runtime: str, ensemble: int = 1) -> None:
        self.cfg = EngineConfig(model=name, scale=scale, source="auto", device="cpu", dtype=dtype,
                                batch_size=1, runtime=runtime, ensemble=ensemble)
        self._engines: dict[tuple[str, int | None], tuple[Engine, EngineInfo]] = {}
        self.last = ""  # the file name of the weights the last pick() chose
        self.bicubic_y = self.pick("clean", None).bicubic_y

    def pick(self, source: str, qp: float | None) -> Engine:
        """The engine for LR of ``source`` (clean | compressed) quantised at ``qp`` (None: unknown)."""
        stream = SourceChoice(source, "benchmark", qp)
        key = engine_key(self.cfg, stream)
        if key not in self._engines:
            self._engines[key] = build_engine(self.cfg, stream)
        engine, info = self._engines[key]
        self.last = Path(info.weights or "").name
        return engine

    def upscale_y(self, ys: np.ndarray) -> np.ndarray:  # images: no QP to route by
        return self.pick("compressed", None).upscale_y(ys)


def _engine(spec: str, scale: int, dtype: str, runtime: str,
            ensemble: int = 1) -> Engine | WindowEngine | RoutedEngine:
    if spec.endswith(":auto") and "=" not in spec:
        return RoutedEngine(spec.rsplit(":", 1)[0], scale, dtype, runtime, ensemble)
    if "=" in spec:
        path = Path(spec.split("=", 1)[1])
        if int(load_checkpoint(path)["model_kwargs"].get("frames", 1)) > 1:
            if ensemble != 1:
                raise SystemExit(f"error: --ensembles: {spec} is a multi-frame checkpoint, run without an ensemble")
            return WindowEngine(path)
    return build_engine(_config(spec, scale, dtype, runtime, ensemble))[0]


def _ensemble_spec(spec: str, ensemble: int) -> str:
    """The --models entry labelled for a self-ensemble size: LABEL+eN[=CHECKPOINT] (N > 1)."""
    if ensemble == 1:
        return spec
    label, eq, path = spec.partition("=")
    return f"{label}+e{ensemble}{eq}{path}"


def image_benchmark(engines: dict, folders: list[Path], scale: int, jpeg: list[int],
                    h264p: list[int]) -> list[dict]:
    """Rows (image, model, condition, psnr, psnr_bicubic, gain) over every image in ``folders``."""
    chains = {"clean": None, **{f"jpeg {q}": parse_chain(f"bicubic,jpeg:1:{q}-{q}") for q in jpeg},
              **{f"h264p {c}": parse_chain(f"bicubic,h264p:1:{c}-{c}") for c in h264p}}
    any_engine = next(iter(engines.values()))
    rows = []
    for index, path in enumerate(list_images(folders)):
        y = load_y(path)
        hr = y[: y.shape[0] - y.shape[0] % scale, : y.shape[1] - y.shape[1] % scale]
        clean = degrade(hr, scale, "bicubic")
        for label, chain in chains.items():
            lr = clean if chain is None else chain.corrupt(clean, np.random.default_rng(index))
            base = psnr(any_engine.bicubic_y(lr[None])[0], hr, crop_border=scale)
            for name, engine in engines.items():
                score = psnr(engine.upscale_y(lr[None])[0], hr, crop_border=scale)
                rows.append({"image": f"{path.parent.name}/{path.name}", "model": name.split("=")[0],
                             "condition": label, "psnr": round(float(score), 3),
                             "psnr_bicubic": round(float(base), 3), "gain": round(float(score - base), 3)})
    return rows


def _write_csv(rows: list[dict], path: Path) -> None:
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", nargs="+", default=["fast", "espcn", "edsr"])
    ap.add_argument("--frames", type=int, default=20)
    ap.add_argument("--crfs", type=int, nargs="+", default=[18, 23, 28, 33])
    ap.add_argument("--scale", type=int, default=2)
    ap.add_argument("--dtype", default="fp32", help="Engine precision (fp32: reproducible figures; auto: as used).")
    ap.add_argument("--runtime", default="torch", help="Engine runtime (torch, or auto as `vsr upscale` runs).")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    ap.add_argument("--images", type=Path, nargs="+", help="Image folders in place of the clips.")
    ap.add_argument("--jpeg", type=int, nargs="*", default=[30, 50, 75], help="JPEG qualities (--images).")
    ap.add_argument("--h264p", type=int, nargs="*", default=[], help="libx264 P-frame CRFs (--images).")
    ap.add_argument("--name", default="images", help="CSV name part for --images.")
    ap.add_argument("--threads", type=int, default=2, help="torch threads (1 beside a training on 2 cores).")
    ap.add_argument("--ensembles", type=int, nargs="+", default=[1], choices=list(ENSEMBLES),
                    help="Self-ensemble sizes to run each model at (rows LABEL+eN for N > 1).")
    ap.add_argument("--still-ablation", action="store_true",
                    help="Also run each multi-frame checkpoint on still windows (LABEL-still): what neighbours add.")
    ap.add_argument("--temporal", action="store_true",
                    help="Also score each model's clip output after the flow-guided temporal blend "
                         "(vsr.temporal: on the compressed LR at its QP, not on the clean LR; rows LABEL+t).")
    args = ap.parse_args()
    retain_freed_memory()
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    engines: dict[str, Engine | WindowEngine | RoutedEngine] = {}
    for spec in args.models:
        for ensemble in args.ensembles:
            engine = engines[_ensemble_spec(spec, ensemble)] = _engine(spec, args.scale, args.dtype, args.runtime,
                                                                       ensemble)
            if isinstance(engine, WindowEngine) and args.still_ablation:
                label, _, path = spec.partition("=")
                engines[f"{label}-still={path}"] = engine.still  # the same weights, neighbours = the frame itself
    if args.images:
        rows = image_benchmark(engines, args.images, args.scale, args.jpeg, args.h264p)
        out = args.out / f"compressed_{args.name}_x{args.scale}.csv"
        _write_csv(rows, out)
        labels = list(dict.fromkeys(r["condition"] for r in rows))
        print(f"mean gain over bicubic (dB), {len(rows) // len(labels) // len(engines)} images, x{args.scale}:")
        print(f"{'model':<24} " + " ".join(f"{c:>9}" for c in labels))
        for name in engines:
            label = name.split("=")[0]
            means = [np.mean([r["gain"] for r in rows if r["model"] == label and r["condition"] == c]) for c in labels]
            print(f"{label:<24} " + " ".join(f"{m:>+9.2f}" for m in means))
        print(f"wrote {out}")
        return
    conditions: list[int | None] = [None, *args.crfs]
    rows = []
    for clip in CLIPS:
        hr_frames: list[np.ndarray] = []
        lr_sets: dict[int | None, list[YuvFrame]] = {c: [] for c in conditions}
        recompressors: dict[int, Recompressor] = {}
        qp_lists: dict[int | None, list[float]] = {c: [] for c in conditions}
        for _, frame in zip(range(args.frames), iter_frames(DATA / clip), strict=False):
            lr, gt = degrade_frame(frame, args.scale, "bicubic")
            hr_frames.append(gt)
            for c in conditions:
                if c is None:
                    lr_sets[c].append(lr)
                    continue
                if c not in recompressors:
                    recompressors[c] = Recompressor(lr.width, lr.height, lr.pix_fmt, crf=c)
                lr_sets[c].append(recompressors[c](lr))
                frame_qp = recompressors[c].qp
                if frame_qp is not None:
                    qp_lists[c].append(frame_qp)
        any_engine = next(iter(engines.values()))
        for c in conditions:
            ys = np.stack([f.y for f in lr_sets[c]])
            qp = float(np.median(qp_lists[c][:QP_FRAMES])) if qp_lists[c] else None  # as vsr upscale measures it
            bic = any_engine.bicubic_y(ys)
            base = np.mean([psnr(b, h, crop_border=args.scale) for b, h in zip(bic, hr_frames, strict=True)])
            for name, engine in engines.items():
                weights = name.partition("=")[2]
                if isinstance(engine, RoutedEngine):
                    engine_c = engine.pick("clean" if c is None else "compressed", qp)
                    weights = engine.last
                    sr = np.concatenate([engine_c.upscale_y(ys[i : i + 1]) for i in range(len(ys))])
                elif isinstance(engine, WindowEngine):
                    sr = engine.upscale_sequence(ys)
                else:
                    sr = np.concatenate([engine.upscale_y(ys[i : i + 1]) for i in range(len(ys))])
                outputs = {name.split("=")[0]: sr}
                if args.temporal:  # compressed input only, by its QP, as --temporal auto does it
                    blended = sr if c is None else blend_sequence(ys, sr, TemporalParams(), qp)
                    outputs[name.split("=")[0] + "+t"] = blended
                for label, out in outputs.items():
                    score = np.mean([psnr(s, h, crop_border=args.scale) for s, h in zip(out, hr_frames, strict=True)])
                    rows.append({"clip": clip, "model": label, "crf": "clean" if c is None else c,
                                 "psnr": round(float(score), 3), "psnr_bicubic": round(float(base), 3),
                                 "gain": round(float(score - base), 3), "qp": "" if qp is None else round(qp, 1),
                                 "weights": Path(weights).name})
                    print(f"{clip:<30} {label:<16} {'clean' if c is None else 'CRF ' + str(c):>7}  "
                          f"gain {score - base:+.2f} dB", flush=True)
    _write_csv(rows, args.out / f"compressed_x{args.scale}.csv")
    print(f"\nmean gain over bicubic (dB) over {len(CLIPS)} clips, x{args.scale}:")
    print(f"{'model':<16} " + " ".join(f"{('clean' if c is None else 'CRF ' + str(c)):>8}" for c in conditions))
    series = []
    for label in dict.fromkeys(r["model"] for r in rows):
        means = [float(np.mean([r["gain"] for r in rows if r["model"] == label
                                and r["crf"] == ("clean" if c is None else c)])) for c in conditions]
        print(f"{label:<16} " + " ".join(f"{m:>+8.2f}" for m in means))
        series.append(Series(label, list(args.crfs), means[1:], line=True))
    plot([(f"x{args.scale}: mean gain over bicubic of the same compressed LR", series)],
         args.out / f"compressed_x{args.scale}.png", xlabel="libx264 CRF of the LR", ylabel="gain (dB)")
    print(f"wrote {args.out / f'compressed_x{args.scale}.csv'} and {args.out / f'compressed_x{args.scale}.png'}")


if __name__ == "__main__":
    main()
