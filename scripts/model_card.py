"""Write a model card and the MANIFEST.json entry for a trained checkpoint.

Usage: python scripts/model_card.py RUN_DIR NAME [--source best|final]
  copies RUN_DIR/<source>.pt to weights/NAME.pt, evaluates it with the same
  code as `vsr eval` on Set5/Set14/B100 from ../shared/data, times the engine
  on a 640x360 frame, and writes weights/NAME.md and weights/MANIFEST.json.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from pipelines.evaluate import SetResult, evaluate_sets, format_table
from vsr.config import EngineConfig
from vsr.engine import build_engine, cpu_has_bf16
from vsr.models.cost import gmac_640x360
from vsr.process import retain_freed_memory
from vsr.weights import load_checkpoint, model_from_checkpoint

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data"
SETS = ("Set5", "Set14", "B100")


# Terms of each training set, as ../shared/data/MANIFEST.md states them.
DATA_TERMS = {
    "T91": "Yang et al. 2010 training set (third-party images; repo MIT)",
    "BSDS200": "BSDS300 train split, Martin et al. 2001 (third-party images; repo MIT)",
    "DIV2K_gray181": "greyscale crops of DIV2K train HR: DIV2K terms, academic research use only",
    "DIV2K_valid_crops100": "crops of DIV2K validation HR: DIV2K terms, academic research use only",
    "RealSR_HR16": "RealSR ground truth (Cai et al. 2019): research use, no explicit licence",
    "BSDS500_test200": "BSDS500 test split: Berkeley's non-commercial research/education terms",
    "SunHays80": "Sun & Hays 2012 test images (Flickr photos, photographers' copyright): research benchmark use",
    "Kodak24": "Kodak Lossless True Color Image Suite: widely described as unrestricted use",
}


def data_lines(meta: dict[str, Any]) -> str:
    """The card's data section: each training folder with its terms, the validation set, the teacher."""
    cfg = meta.get("train_config", {})
    names = [Path(d).name for d in cfg.get("data", [])] or ["T91", "BSDS200"]
    sets = "; ".join(f"{n} ({DATA_TERMS.get(n, 'see ../shared/data/MANIFEST.md')})" for n in names)
    text = (f"{sets} (`../shared/data`); random {cfg.get('patch_size', '?')}px HR patches (Y, BT.601 studio swing;"
            " grey images through the same `vsr.color` mapping), LR by the MATLAB-compatible bicubic"
            " (`vsr.degrade.imresize`), flips and 90° rotations. No benchmark set (Set5, Set14, B100) is trained on.")
    chain = cfg.get("degradation", "bicubic")
    if chain not in ("bicubic", "blur"):
        text += (f" LR degradation chain `{chain}` (`vsr/degrade_chain.py`: each step `NAME:P:LO-HI` applied with"
                 " probability P, its parameter drawn uniformly from LO-HI; `h264` is one libx264 intra frame at"
                 " that CRF, in memory), recorded in the checkpoint's `meta.train_config.degradation`.")
    if cfg.get("gan"):
        text += (f" **Adversarial** (SRGAN, Ledig et al. 2017; `vsr train --gan`): generator started from"
                 f" `{cfg.get('init')}`, loss {cfg.get('pixel_weight')} x L1 + {cfg.get('feature_weight')} x feature L1"
                 f" + {cfg.get('adv_weight')} x adversarial (non-saturating BCE); discriminator of width"
                 f" {cfg.get('d_features')} (`vsr/models/discriminator.py`), lr {cfg.get('d_lr')}. The paper's VGG19"
                 f" ImageNet features cannot be had here (nothing is downloaded), so the feature loss compares the"
                 f" head and first two residual blocks of our own `{cfg.get('feature_net')}` on SR and HR"
                 " (`vsr/train/gan.py`).")
    if cfg.get("sampler", "uniform") != "uniform":
        text += f" Patches drawn by the `{cfg['sampler']}` sampler (`vsr/data/gain.py`)."
    if cfg.get("teacher"):
        text += f" Distilled from `{cfg['teacher']}` (L1 to its output, weight {cfg.get('distill_weight')})."
    return text


@functools.cache
def cpu_tag() -> tuple[str, str]:
    """The timing machine: its model name and best vector ISA, e.g. ``("AMD EPYC", "avx2")``."""
    try:
        lines = Path("/proc/cpuinfo").read_text(errors="replace").splitlines()
    except OSError:
        return "unknown CPU", "unknown"
    name = next((ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("model name")), "unknown CPU")
    flags = set(next((ln.split(":", 1)[1].split() for ln in lines if ln.startswith("flags")), []))
    isa = next((f for f in ("amx_bf16", "avx512_bf16", "avx512f", "avx2") if f in flags), "sse")
    return name, isa


def frame_seconds(cfg: EngineConfig, reps: int = 3) -> dict[str, float]:
    """Seconds per 640x360 frame, fp32 and, where the CPU has native bf16, bf16.

    Emulated bf16 (an AVX2 CPU) runs many times slower than fp32 and is not
    what `--dtype auto` would pick there, so it is not timed.
    """
    y = np.random.default_rng(0).integers(16, 236, (1, 360, 640), dtype=np.uint8)
    out = {}
    for dtype in ("fp32", "bf16") if cpu_has_bf16() else ("fp32",):
        engine, _ = build_engine(EngineConfig(**{**cfg.__dict__, "dtype": dtype, "batch_size": 1}))
        engine.upscale_y(y)
        t0 = time.perf_counter()
        for _ in range(reps):
            engine.upscale_y(y)
        out[dtype] = (time.perf_counter() - t0) / reps
    return out


def speed_text(scale: int, secs: dict[str, float]) -> str:
    text = (f"Engine time for one 640x360 frame at x{scale} on 2 cores of {', '.join(cpu_tag())}: "
            f"{secs['fp32']:.3f} s in fp32")
    if "bf16" in secs:
        return text + f",\n{secs['bf16']:.3f} s in bf16 ({secs['fp32'] / secs['bf16']:.2f}x).\n"
    return text + ".\nThis CPU has no native bf16, so bf16 was not timed.\n"


def speed_fields(secs: dict[str, float]) -> dict[str, Any]:
    """The MANIFEST.json fields that come from :func:`frame_seconds`."""
    # List the faster dtype timed, not bf16 whenever it was timed: on an AVX512_BF16 CPU
    # without AMX, EDSR runs slower in bf16 (`--dtype auto` then keeps fp32 too).
    fastest = min(secs, key=lambda k: secs[k])
    return {"seconds_640x360": {k: round(v, 4) for k, v in secs.items()}, "fps_640x360": round(1 / secs[fastest], 1),
            "timed_as": f"{fastest}, {cpu_tag()[1]}"}


def update_manifest(file_name: str, fields: dict[str, Any], *, replace_entry: bool) -> None:
    """Write ``fields`` into the entry for ``file_name`` (a new entry when ``replace_entry``)."""
    manifest_path = ROOT / "weights" / "MANIFEST.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {"weights": []}
    others = [e for e in manifest["weights"] if e["file"] != file_name]
    old = {} if replace_entry else next(e for e in manifest["weights"] if e["file"] == file_name)
    manifest["weights"] = sorted([*others, {**old, "file": file_name, **fields}], key=lambda e: e["file"])
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")


def drop_manifest_entry(file_name: str) -> None:
    manifest_path = ROOT / "weights" / "MANIFEST.json"
    if manifest_path.exists():
        manifest = json.loads(manifest_path.read_text())
        manifest["weights"] = [e for e in manifest["weights"] if e["file"] != file_name]
        manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")


def engine_config(ckpt: dict[str, Any], path: Path) -> EngineConfig:
    return EngineConfig(model=ckpt["model"], scale=int(ckpt["scale"]), weights=path, device="cpu", dtype="fp32",
                        runtime="torch")


def retime(name: str) -> None:
    dst = ROOT / "weights" / f"{name}.pt"
    ckpt = load_checkpoint(dst)
    secs = frame_seconds(engine_config(ckpt, dst))
    card_path = ROOT / "weights" / f"{name}.md"
    card = card_path.read_text()
    card_path.write_text(card[: card.index("Engine time for one 640x360")] + speed_text(int(ckpt["scale"]), secs))
    update_manifest(dst.name, speed_fields(secs), replace_entry=False)
    print(name, {k: round(v, 4) for k, v in secs.items()})


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("run", type=Path)
    ap.add_argument("name")
    ap.add_argument("--source", default="best",
                    help="RUN_DIR/SOURCE.pt to ship: best, final, or e.g. an average written by average_weights.py")
    ap.add_argument("--speed-only", action="store_true",
                    help="re-time the engine of an already shipped NAME (quiet machine) and update its card and entry")
    args = ap.parse_args()
    retain_freed_memory()  # as the CLI does: time the engine as users run it
    if args.speed_only:
        retime(args.name)
        return
    src = args.run / f"{args.source}.pt"
    ckpt = load_checkpoint(src)
    dst = ROOT / "weights" / f"{args.name}.pt"
    shutil.copy(src, dst)
    drop_manifest_entry(dst.name)  # re-shipping: the old entry's sha256 would refuse the new file
    cfg = engine_config(ckpt, dst)
    results, info = evaluate_sets(cfg, [DATA / s for s in SETS])
    results_bf16: list[SetResult] = []
    if cpu_has_bf16():  # emulated bf16 gives the same numbers, many times slower
        cfg_bf16 = EngineConfig(**{**cfg.__dict__, "dtype": "bf16"})
        results_bf16, _ = evaluate_sets(cfg_bf16, [DATA / s for s in SETS], with_ssim=False)
    secs = frame_seconds(cfg)
    meta = ckpt["meta"]
    command = (args.run / "command.txt").read_text().strip().splitlines()
    val = (args.run / "val.csv").read_text().strip()
    notes = (args.run / "NOTES.md").read_text().strip() if (args.run / "NOTES.md").exists() else ""
    table = format_table(results, info)
    val_set = Path(meta.get("train_config", {}).get("val") or "Set5").name
    gmac = gmac_640x360(model_from_checkpoint(ckpt))
    if args.source == "final":
        exported = f"the exported checkpoint is the last iteration's, so {val_set} did not pick it"
    elif args.source == "best":
        exported = ("the exported checkpoint is the best of these, which on a cosine schedule differs from the "
                    "last by under 0.01 dB")
    else:
        origins = meta.get("averaged_from", [])
        exported = (f"the exported checkpoint is `{args.source}.pt`"
                    + (f", the average of the weights at iterations {', '.join(str(o['iteration']) for o in origins)}"
                       if origins else "") + "; Set5 did not pick it")
    bf16_line = (f"With `--dtype bf16` the PSNR is {', '.join(f'{r.name} {r.psnr:.3f}' for r in results_bf16)} dB."
                 if results_bf16 else "Not evaluated with `--dtype bf16`: this CPU has no native bf16.")
    minutes = meta.get("train_seconds", 0) / 60
    card = f"""# {args.name}

- **Model**: `{ckpt['model']}` x{ckpt['scale']}, arguments `{json.dumps(ckpt['model_kwargs'])}`,
  {sum(v.numel() for v in ckpt['state_dict'].values())} parameters; Y channel only
  (colour convention `{ckpt['color']}`).
- **Cost**: {gmac:.2f} GMAC per 640x360 input frame (counted from the inference form's convolutions).
- **Data**: {data_lines(meta)}
- **Command** (run from the repository root{', in order' if len(command) > 1 else ''}):
{chr(10).join('  `' + c + '`' for c in command)}
- **Iterations**: {meta.get('iteration')} (exported from `{args.source}.pt`), wall time {minutes:.1f} min
  on 2 cores of {', '.join(cpu_tag())} ({meta.get('train_config', {}).get('precision', '?')}).
{notes}
- **Validation** ({val_set}, PSNR-Y during training, EMA weights; {exported}):

```
{val}
```

## Evaluation (`vsr eval`, fp32; HR mod-cropped, MATLAB bicubic LR, PSNR/SSIM-Y BT.601, {ckpt['scale']} px shaved)

```
{table}
```

{bf16_line}
`bicubic` is the engine's own (a = -0.75); `bic(MATLAB)` is MATLAB `imresize` upsampling, the
baseline quoted in papers.

## Speed

{speed_text(int(ckpt['scale']), secs)}"""
    (ROOT / "weights" / f"{args.name}.md").write_text(card)
    entry = {
        "model": ckpt["model"], "scale": int(ckpt["scale"]), "model_kwargs": ckpt["model_kwargs"],
        "sha256": hashlib.sha256(dst.read_bytes()).hexdigest(), "color": ckpt["color"],
        "psnr_y": {r.name: round(r.psnr, 3) for r in results}, "ssim_y": {r.name: round(r.ssim, 4) for r in results},
        **({"psnr_y_bf16": {r.name: round(r.psnr, 3) for r in results_bf16}} if results_bf16 else {}),
        **speed_fields(secs), "gmac_640x360": round(gmac, 3), "iterations": meta.get("iteration"),
        "train_minutes": round(meta.get("train_seconds", 0) / 60, 1), "card": f"{args.name}.md",
    }
    update_manifest(dst.name, entry, replace_entry=True)
    print(table)


if __name__ == "__main__":
    main()
