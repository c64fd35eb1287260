"""``vsr rank-datasets``: which training set teaches a small model most.

After the dataset-ranking experiment of A. Chaudhary and D. A. Tanwar's
report on SRResNet for single-image SR: the same model, budget and seed are
trained on each training set alone, and each run is scored as its mean PSNR-Y
gain over bicubic on every evaluation set (the ``vsr eval`` protocol). The
sets are ranked by their gain averaged over the evaluation sets. Then the
same budget is spent on mixes of all the sets:

- ``uniform``: every set gets the same share of the draws;
- ``ranked``: set of rank ``k`` (1 best) of ``n`` gets a share proportional to ``n + 1 - k``;
- ``pooled``: every file the same chance (what ``vsr train`` does with several ``--data``).

Each run lives in ``OUT/runs/NAME``; one with a ``result.json`` is not run
again, so an interrupted ranking resumes where it stopped (a run cut short
resumes from its own ``last.pt``). The table goes to ``OUT/ranking.csv`` and
``OUT/ranking.md``.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from vsr.config import EngineConfig, TrainConfig
from vsr.io.atomic import write_text_atomic
from vsr.io.images import list_images

from .evaluate import evaluate_sets
from .train import run_training

__all__ = ["MIXES", "RankConfig", "RankRow", "rank_datasets", "rank_weights"]

log = logging.getLogger(__name__)
MIXES = ("uniform", "ranked", "pooled")


@dataclass(frozen=True)
class RankConfig:
    """``vsr rank-datasets``: the sets to rank, the sets to score on, and one training recipe.

    ``train`` holds the options every run shares (model, scale, iterations, patches, lr, seed,
    threads, precision), validated by :class:`TrainConfig` itself; each run replaces its
    ``data``, ``out`` and data weights, and sets its own warm-up, checkpoint and validation steps.
    """

    sets: tuple[Path, ...]
    eval_sets: tuple[Path, ...]
    out: Path
    train: TrainConfig
    mixes: tuple[str, ...] = MIXES

    def __post_init__(self) -> None:
        if len(self.sets) < 2:
            raise ValueError("rank-datasets needs at least two training sets")
        names = [p.name for p in self.sets]
        if len(set(names)) != len(names):
            raise ValueError(f"training sets need distinct folder names: {', '.join(names)}")
        for path in (*self.sets, *self.eval_sets):
            if not list_images([path]):
                raise ValueError(f"no images in {path}")
        overlap = {p.resolve() for p in self.sets} & {p.resolve() for p in self.eval_sets}
        if overlap:
            raise ValueError(f"an evaluation set is also a training set: {', '.join(map(str, sorted(overlap)))}")
        unknown = set(self.mixes) - set(MIXES)
        if unknown:
            raise ValueError(f"unknown mix {sorted(unknown)[0]!r}; known: {', '.join(MIXES)}")


@dataclass(frozen=True)
class RankRow:
    """One training run: a single set (``rank`` 1 = best) or a mix (``rank`` None)."""

    name: str
    images: int
    gains: dict[str, float]  # evaluation set → mean PSNR-Y gain over bicubic, dB
    mean_gain: float
    seconds: float
    rank: int | None = None
    weights: dict[str, float] = field(default_factory=dict)  # mixes: each set's share of the draws


def rank_weights(ranks: list[int]) -> list[float]:
    """Shares for sets of the given ranks (1 best): ``n + 1 - rank``, normalised."""
    n = len(ranks)
    raw = [n + 1 - r for r in ranks]
    return [w / sum(raw) for w in raw]


def _train_and_score(cfg: RankConfig, name: str, data: tuple[Path, ...], weights: tuple[float, ...],
                     progress: Callable[[str], None] | None) -> tuple[dict[str, float], float]:
    run = cfg.out / "runs" / name
    t = cfg.train
    train_cfg = replace(t, data=data, out=run, data_weights=weights, warmup=min(200, t.iterations // 10),
                        workers=1, ckpt_every=max(1, t.iterations // 4), val_every=t.iterations)
    done = run / "result.json"
    if not done.is_file():
        if progress:
            progress(f"training {name}")
        resume = (run / "last.pt").is_file()
        seconds = run_training(replace(train_cfg, resume=resume)).seconds
    else:
        seconds = float(json.loads(done.read_text())["seconds"])
    results, _ = evaluate_sets(
        EngineConfig(model=t.model, scale=t.scale, weights=run / "final.pt", dtype="fp32", runtime="torch"),
        list(cfg.eval_sets), with_ssim=False,
    )
    return {r.name: r.psnr - r.psnr_bicubic for r in results}, seconds


def rank_datasets(cfg: RankConfig, progress: Callable[[str], None] | None = None) -> list[RankRow]:
    """Train on each set alone, rank, train the mixes; write OUT/ranking.{csv,md}; return the rows."""
    cfg.out.mkdir(parents=True, exist_ok=True)
    singles = []
    for path in cfg.sets:
        gains, seconds = _train_and_score(cfg, path.name, (path,), (), progress)
        singles.append(RankRow(name=path.name, images=len(list_images([path])), gains=gains,
                               mean_gain=float(np.mean(list(gains.values()))), seconds=seconds))
    order = sorted(range(len(singles)), key=lambda i: -singles[i].mean_gain)
    ranks = [0] * len(singles)
    for place, i in enumerate(order, start=1):
        ranks[i] = place
    rows = [replace(row, rank=r) for row, r in zip(singles, ranks, strict=True)]
    total_images = sum(r.images for r in rows)
    shares = {
        "uniform": [1.0 / len(rows)] * len(rows),
        "ranked": rank_weights(ranks),
        "pooled": [r.images / total_images for r in rows],
    }
    for mix in cfg.mixes:
        w = shares[mix]
        weights = () if mix == "pooled" else tuple(w)
        gains, seconds = _train_and_score(cfg, f"mix-{mix}", tuple(cfg.sets), weights, progress)
        rows.append(RankRow(name=f"mix-{mix}", images=total_images, gains=gains,
                            mean_gain=float(np.mean(list(gains.values()))), seconds=seconds,
                            weights={p.name: round(x, 4) for p, x in zip(cfg.sets, w, strict=True)}))
    write_text_atomic(cfg.out / "ranking.csv", to_csv(rows, cfg))
    write_text_atomic(cfg.out / "ranking.md", to_markdown(rows, cfg))
    return rows


def _eval_names(cfg: RankConfig) -> list[str]:
    return [p.name for p in cfg.eval_sets]


def to_csv(rows: list[RankRow], cfg: RankConfig) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    names = _eval_names(cfg)
    w.writerow(["train_set", "images", "rank", *[f"gain_{n}" for n in names], "mean_gain", "seconds", "weights"])
    for r in rows:
        w.writerow([r.name, r.images, r.rank if r.rank is not None else "", *[f"{r.gains[n]:.4f}" for n in names],
                    f"{r.mean_gain:.4f}", f"{r.seconds:.1f}",
                    " ".join(f"{k}={v}" for k, v in r.weights.items())])
    return buf.getvalue()


def to_markdown(rows: list[RankRow], cfg: RankConfig) -> str:
    names = _eval_names(cfg)
    t = cfg.train
    lines = [
        f"Mean PSNR-Y gain over bicubic (dB), `{t.model}` x{t.scale}, {t.iterations} iterations of "
        f"{t.batch_size} {t.patch_size}px patches, seed {t.seed}, each run on one training set or a mix.",
        "",
        "| training set | images | rank | " + " | ".join(names) + " | mean |",
        "|---|---:|---:|" + "---:|" * len(names) + "---:|",
    ]
    singles = sorted((r for r in rows if r.rank is not None), key=lambda r: r.rank or 0)
    for r in [*singles, *(r for r in rows if r.rank is None)]:
        rank = str(r.rank) if r.rank is not None else "mix"
        lines.append(f"| {r.name} | {r.images} | {rank} | " + " | ".join(f"{r.gains[n]:+.3f}" for n in names)
                     + f" | {r.mean_gain:+.3f} |")
    if singles:
        spread = singles[0].mean_gain - singles[-1].mean_gain
        lines += ["", f"Best minus worst single set: {spread:.3f} dB."]
    return "\n".join(lines) + "\n"
