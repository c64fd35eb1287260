"""Training: iterations over random patches, validation, checkpoints, resume.

Run state lives in ``OUT/last.pt`` (model, optimizer, EMA, iteration, best
score); ``OUT/best.pt`` and ``OUT/final.pt`` are exported in the shipped
weights format (:mod:`vsr.weights`). ``OUT/val.csv`` gets one row per
validation. Under ``torchrun`` (``WORLD_SIZE`` > 1) the model is wrapped in
DistributedDataParallel (gloo on CPU, nccl on CUDA); each rank samples from
its own shard of the files, and only rank 0 validates and writes.
"""

from __future__ import annotations

import copy
import csv
import logging
import math
import multiprocessing
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from vsr.config import TrainConfig
from vsr.data import FrameFolderDataset, IterationBatchSampler
from vsr.data.gain import GainSampler
from vsr.engine import Engine, cpu_has_bf16, pick_device
from vsr.evaluate import evaluate_images, summarize
from vsr.io.atomic import atomic_output
from vsr.models import create_model
from vsr.models.blocks import bicubic_upsample
from vsr.models.discriminator import Discriminator
from vsr.models.ecb import StillWindow
from vsr.train.gan import FeatureLoss, d_loss, g_adv_loss
from vsr.weights import WeightsError, load_checkpoint, model_from_checkpoint, save_checkpoint

__all__ = ["STATE_FORMAT", "TrainResult", "ema_decay", "fit", "lr_at"]

log = logging.getLogger(__name__)
STATE_FORMAT = "vsr-train-state-1"

# progress(iteration, loss, seconds_so_far)
ProgressFn = Callable[[int, float, float], None]


@dataclass(frozen=True)
class TrainResult:
    iterations: int
    best_psnr: float
    best_iteration: int
    seconds: float
    data_wait_share: float
    out: Path


def lr_at(cfg: TrainConfig, it: int) -> float:
    """Learning rate for iteration ``it`` (0-based): a pure function, so resume needs no scheduler state."""
    if cfg.warmup and it < cfg.warmup:
        return cfg.lr * (it + 1) / cfg.warmup
    if cfg.schedule == "constant":
        return cfg.lr
    if cfg.schedule == "step":  # halve at 50 %, 75 % and 90 %
        frac = it / cfg.iterations
        return cfg.lr * 0.5 ** sum(frac >= m for m in (0.5, 0.75, 0.9))
    span = max(1, cfg.iterations - cfg.warmup)
    t = min(1.0, (it - cfg.warmup) / span)
    return cfg.lr_min + 0.5 * (cfg.lr - cfg.lr_min) * (1 + math.cos(math.pi * t))


def ema_decay(ema: float, it: int) -> float:
    """The EMA decay after step ``it`` (0-based): ``ema``, warmed up as ``(1 + it) / (10 + it)``.

    Without the warm-up the average keeps ``ema ** N`` of the random initialisation after N
    steps (0.999: 13 % after 2,000), which a short run would ship.
    """
    return min(ema, (1.0 + it) / (10.0 + it))


def embed_state_dict(model: nn.Module, src: dict[str, torch.Tensor], grow: bool = True) -> tuple[int, int]:
    """Load ``src`` into ``model``, growing tensors into wider ones where needed.

    A tensor of the same shape is copied. A smaller tensor of the same rank (a
    checkpoint of a narrower net) goes into the leading slice; for a conv weight
    ``(out, in, k, k)`` the weights from the new input channels into the old
    output channels are zeroed, so the wider net starts as the narrower one
    (function-preserving widening, Net2Net style) and the new channels begin
    from their random init. ``grow=False`` copies same-shape tensors only. Returns
    (copied, embedded) tensor counts. A model with an ``adapt_state_dict``
    method (EDSR: depth growth) first renames and pads ``src`` to its layout.
    """
    adapt = getattr(model, "adapt_state_dict", None)
    if adapt is not None:
        src = adapt(src)
    own = model.state_dict()
    copied = embedded = 0
    for name, value in src.items():
        if name not in own:
            continue
        target = own[name]
        if target.shape == value.shape:
            own[name] = value.clone()
            copied += 1
        elif grow and target.dim() == value.dim() and all(
                t >= v for t, v in zip(target.shape, value.shape, strict=True)):
            grown = target.clone()
            if grown.dim() == 4 and grown.shape[1] > value.shape[1]:
                grown[: value.shape[0], value.shape[1]:] = 0
            grown[tuple(slice(0, v) for v in value.shape)] = value
            own[name] = grown
            embedded += 1
    model.load_state_dict(own)
    return copied, embedded


def _init_from(model: nn.Module, path: Path) -> None:
    """Start from a checkpoint: matching tensors copied, smaller ones embedded (x2 → x3, narrow → wide).

    A re-parameterized checkpoint is trained on from its multi-branch form (``train_form``).
    """
    ckpt = load_checkpoint(path)
    state = ckpt.get("train_form", {}).get("state_dict", ckpt["state_dict"])
    # Across scales the last conv's channels mean other sub-pixel positions: embedding them
    # would scramble the output, so only same-scale checkpoints are grown into.
    copied, embedded = embed_state_dict(model, state, grow=int(ckpt["scale"]) == model.scale)
    log.info("initialised %d tensors (%d copied, %d embedded) of %d from %s",
             copied + embedded, copied, embedded, len(model.state_dict()), path)


def _load_teacher(cfg: TrainConfig, device: torch.device) -> nn.Module | None:
    """The frozen distillation teacher of ``cfg.teacher`` (same scale), or None."""
    if cfg.teacher is None:
        return None
    ckpt = load_checkpoint(cfg.teacher)
    if int(ckpt["scale"]) != cfg.scale:
        raise WeightsError(f"--teacher {cfg.teacher} is an x{ckpt['scale']} model; training is x{cfg.scale}")
    teacher = model_from_checkpoint(ckpt).to(device).eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    log.info("distilling from %s (%s x%d), weight %g", cfg.teacher, ckpt["model"], cfg.scale, cfg.distill_weight)
    return teacher


def _worker_ignores_signals(worker_id: int) -> None:
    """Data workers leave SIGINT and SIGTERM to the trainer.

    A signal to the process group (Ctrl-C in a terminal) would otherwise kill the workers too,
    and their death would surface in the trainer as a DataLoader error while it unwinds. The
    trainer stops them itself on the way out; they also exit when it is gone.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    sys.excepthook = _quiet_when_the_trainer_is_gone


def _from_resource_sharer(tb: TracebackType | None) -> bool:
    while tb is not None:
        if tb.tb_frame.f_code.co_filename.endswith("resource_sharer.py"):
            return True
        tb = tb.tb_next
    return False


def _quiet_when_the_trainer_is_gone(exc_type: type[BaseException], exc: BaseException,
                                    tb: TracebackType | None) -> None:
    """A worker's ``sys.excepthook``: silent for the fd server of multiprocessing losing its peer.

    A worker hands each batch's shared memory to the trainer through that server (a thread in the
    worker, which reports its errors through ``sys.excepthook`` and goes on serving); a trainer
    stopped by a signal mid-handover drops the connection, and the error would print a traceback
    under the trainer's clean exit. Every other error is printed.
    """
    if issubclass(exc_type, (OSError, EOFError, multiprocessing.AuthenticationError)) and _from_resource_sharer(tb):
        return
    sys.__excepthook__(exc_type, exc, tb)


def _rank_device(device: torch.device) -> torch.device:
    """Under torchrun each process takes the GPU of its ``LOCAL_RANK`` (``cuda`` alone means cuda:LOCAL_RANK)."""
    local = os.environ.get("LOCAL_RANK")
    if device.type == "cuda" and device.index is None and local is not None:
        device = torch.device("cuda", int(local))
        torch.cuda.set_device(device)
    return device


def _dist_info() -> tuple[int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    return rank, world


def _save_state(path: Path, *, it: int, model: nn.Module, opt: torch.optim.Optimizer,
                ema: nn.Module | None, best: tuple[float, int], data_wait: float, seconds: float,
                sampler: GainSampler | None, gan: _Gan | None) -> None:
    with atomic_output(path) as part:
        torch.save(
            {
                "format": STATE_FORMAT,
                "sampler": _tensors(sampler.state_dict()) if sampler is not None else None,
                "discriminator": gan.state_dict() if gan is not None else None,
                "iteration": it,
                "model": model.state_dict(),
                "optimizer": opt.state_dict(),
                "ema": ema.state_dict() if ema is not None else None,
                "best_psnr": best[0],
                "best_iteration": best[1],
                "data_wait": data_wait,
                "seconds": seconds,
            },
            part,
        )


def _tensors(state: dict) -> dict:
    """numpy arrays as tensors: ``torch.load(weights_only=True)`` reads back tensors, not arrays."""
    return {k: torch.from_numpy(v) if isinstance(v, np.ndarray) else v for k, v in state.items()}


class _Gan:
    """The adversarial half of ``--gan``: discriminator, its optimizer, the feature loss (see vsr.train.gan)."""

    def __init__(self, cfg: TrainConfig, device: torch.device) -> None:
        self.cfg = cfg
        self.d = Discriminator(1, cfg.d_features).to(device).train()
        self.opt = torch.optim.Adam(self.d.parameters(), lr=cfg.d_lr, betas=(0.9, 0.999))
        self.features = None
        if cfg.feature_weight > 0 and cfg.feature_net is not None:
            self.features = FeatureLoss(model_from_checkpoint(load_checkpoint(cfg.feature_net))).to(device)
        log.info("GAN: discriminator %d features, adversarial weight %g, pixel %g, feature %g (%s)",
                 cfg.d_features, cfg.adv_weight, cfg.pixel_weight, cfg.feature_weight, cfg.feature_net)

    def generator_loss(self, sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
        cfg = self.cfg
        loss = cfg.pixel_weight * nn.functional.l1_loss(sr, hr)
        if self.features is not None:
            loss = loss + cfg.feature_weight * self.features(sr, hr)
        for p in self.d.parameters():  # D is a fixed critic during the generator's step
            p.requires_grad_(False)
        loss = loss + cfg.adv_weight * g_adv_loss(self.d(sr))
        for p in self.d.parameters():
            p.requires_grad_(True)
        return loss

    def step(self, sr: torch.Tensor, hr: torch.Tensor, lr_scale: float) -> float:
        """One discriminator update on ``hr`` (real) and ``sr`` (fake, detached); returns its loss."""
        for group in self.opt.param_groups:
            group["lr"] = self.cfg.d_lr * lr_scale
        loss = d_loss(self.d(hr), self.d(sr.detach()))
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return float(loss.detach())

    def state_dict(self) -> dict:
        return {"model": self.d.state_dict(), "optimizer": self.opt.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.d.load_state_dict(state["model"])
        self.opt.load_state_dict(state["optimizer"])


def _item_gains(sr: torch.Tensor, hr: torch.Tensor, lr: torch.Tensor, items: int, scale: int) -> np.ndarray:
    """PSNR gain over bicubic (dB) of each dataset item of a batch (its patches pooled), from the forward pass."""
    with torch.no_grad():
        base = bicubic_upsample(lr, scale).clamp(0, 1)
        mse_sr = (sr.detach().float().clamp(0, 1) - hr).pow(2).reshape(items, -1).mean(1)
        mse_bic = (base - hr).pow(2).reshape(items, -1).mean(1)
        gains = 10 * torch.log10(mse_bic.clamp_min(1e-12) / mse_sr.clamp_min(1e-12))
    return gains.cpu().numpy().astype(np.float64)


def _config_meta(cfg: TrainConfig) -> dict:
    meta = {}
    for k, v in asdict(cfg).items():
        if isinstance(v, (tuple, list)):
            v = [str(x) for x in v]
        elif isinstance(v, Path):
            v = str(v)
        meta[k] = v
    return meta


def fit(cfg: TrainConfig, progress: ProgressFn | None = None) -> TrainResult:
    """Train ``cfg.model`` at ``cfg.scale``; see the module docstring for outputs."""
    rank, world = _dist_info()
    device = _rank_device(pick_device(cfg.device))
    if cfg.precision == "bf16" and device.type == "cpu" and not cpu_has_bf16():
        # Without AVX512_BF16/AMX, autocast emulates bf16 in software, many times slower than
        # fp32 (figures: weights/README.md).
        log.warning("--precision bf16 on a CPU without native bf16 (no avx512_bf16/amx_bf16): "
                    "expect it to be many times slower than fp32")
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    own_group = world > 1 and not dist.is_initialized()
    if own_group:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    out = Path(cfg.out)
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)

    model = create_model(cfg.model, scale=cfg.scale, **cfg.model_kwargs).to(device)
    if cfg.init is not None:
        _init_from(model, cfg.init)
    frames = int(getattr(model, "frames", 1))  # a multi-frame net trains on synthetic sequences
    if frames > 1 and cfg.teacher is not None:
        raise ValueError("--teacher distils single-frame nets; this model takes several frames")
    ema = copy.deepcopy(model).eval() if cfg.ema > 0 else None
    teacher = _load_teacher(cfg, device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, betas=(0.9, 0.999))
    gan = _Gan(cfg, device) if cfg.gan else None

    start_it, best, data_wait, seconds_before = 0, (-math.inf, 0), 0.0, 0.0
    state: dict = {}
    state_path = out / "last.pt"
    if cfg.resume:
        if not state_path.is_file():
            raise FileNotFoundError(f"--resume: no {state_path}")
        state = torch.load(state_path, map_location="cpu", weights_only=True)
        if state.get("format") != STATE_FORMAT:
            raise ValueError(f"{state_path} is not a vsr training state")
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        if ema is not None and state["ema"] is not None:
            ema.load_state_dict(state["ema"])
        start_it = int(state["iteration"])
        best = (float(state["best_psnr"]), int(state["best_iteration"]))
        data_wait, seconds_before = float(state["data_wait"]), float(state["seconds"])
        if gan is not None:
            if state.get("discriminator") is None:
                raise ValueError(f"--resume --gan: {state_path} holds no discriminator state")
            gan.load_state_dict(state["discriminator"])
        log.info("resumed at iteration %d", start_it)

    train_model: nn.Module = model
    if world > 1:
        ids = [device.index] if device.type == "cuda" else None
        train_model = nn.parallel.DistributedDataParallel(model, device_ids=ids)

    dataset = FrameFolderDataset(
        cfg.data, scale=cfg.scale, patch_size=cfg.patch_size, degradation=cfg.degradation,
        patches_per_image=cfg.patches_per_image, scale_aug=cfg.scale_aug, frames=frames,
    )
    per_rank_batch = max(1, cfg.batch_size // world)
    items_per_batch = max(1, per_rank_batch // cfg.patches_per_image)
    gain_sampler: GainSampler | None = None
    sampler: torch.utils.data.Sampler | GainSampler
    if cfg.sampler == "gain":
        if world > 1:
            raise ValueError("--sampler gain runs in one process (its probabilities are not shared across ranks)")
        depth = 4 * cfg.workers if cfg.workers > 0 else 0  # batches the loader asks for ahead of the step
        if cfg.sampler_round <= depth:
            raise ValueError(f"--sampler-round {cfg.sampler_round} must exceed the loader's prefetch ({depth} batches)")
        gain_sampler = GainSampler(len(dataset), items_per_batch, seed=cfg.seed,
                                   round_iterations=cfg.sampler_round, start_iteration=start_it)
        if cfg.resume and state.get("sampler") is not None:
            gain_sampler.load_state_dict(state["sampler"])
        elif cfg.resume and start_it:
            raise ValueError(f"--resume --sampler gain: {state_path} holds no sampler state")
        sampler = gain_sampler
    else:
        weights = dataset.file_weights(cfg.data_weights) if cfg.data_weights else None
        sampler = IterationBatchSampler(
            len(dataset), items_per_batch, seed=cfg.seed,
            start_iteration=start_it, rank=rank, world_size=world, file_weights=weights,
        )
    loader = torch.utils.data.DataLoader(
        dataset, batch_sampler=sampler, num_workers=cfg.workers,
        persistent_workers=cfg.workers > 0, prefetch_factor=4 if cfg.workers > 0 else None,
        worker_init_fn=_worker_ignores_signals if cfg.workers > 0 else None,
    )
    loss_fn = nn.L1Loss() if cfg.loss == "l1" else nn.MSELoss()
    val_images = cfg.val
    csv_path = out / "val.csv"
    if rank == 0 and not (cfg.resume and csv_path.exists()):
        with open(csv_path, "w", newline="") as fh:
            csv.writer(fh).writerow(["iteration", "psnr", "psnr_bicubic", "ssim", "lr", "seconds"])

    def validate(it: int, elapsed: float) -> None:
        nonlocal best
        net = ema if ema is not None else model
        engine = Engine(net if frames == 1 else StillWindow(net), device=device, dtype=torch.float32,
                        batch_size=1, channels_last=False)
        net.eval()
        assert val_images is not None  # validate() runs only with --val
        scores = evaluate_images(engine.upscale_y, None, val_images, cfg.scale, with_ssim=False)
        model.train()
        mean = summarize(scores)
        with open(csv_path, "a", newline="") as fh:
            csv.writer(fh).writerow([it, f"{mean['psnr']:.4f}", "", "", f"{lr_at(cfg, it - 1):.3g}", f"{elapsed:.1f}"])
        log.info("iteration %d: validation PSNR %.3f dB", it, mean["psnr"])
        if mean["psnr"] > best[0]:
            best = (mean["psnr"], it)
            _export(out / "best.pt", net, it, mean["psnr"], elapsed)

    def _export(path: Path, net: nn.Module, it: int, val_psnr: float, elapsed: float) -> None:
        meta = {"iteration": it, "val_psnr_y": val_psnr, "val_set": str(val_images),
                "train_seconds": round(elapsed, 1), "train_config": _config_meta(cfg)}
        if hasattr(net, "reparameterize"):  # ship the fused form, keep the multi-branch one
            fused = copy.deepcopy(net).cpu().reparameterize()  # type: ignore[operator]  # hasattr above
            save_checkpoint(path, model=cfg.model, model_kwargs={**cfg.model_kwargs, "fused": True},
                            scale=cfg.scale, state_dict=fused.state_dict(), meta=meta,
                            train_form=(cfg.model_kwargs, net.state_dict()))
            return
        save_checkpoint(path, model=cfg.model, model_kwargs=cfg.model_kwargs, scale=cfg.scale,
                        state_dict=net.state_dict(), meta=meta)

    def autocast() -> torch.autocast:
        """bf16 autocast when --precision bf16: convolutions in bf16 (faster on AVX512_BF16/AMX CPUs,
        weights/README.md), weights, optimizer and loss in fp32."""
        return torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.precision == "bf16")

    model.train()
    t_start = time.perf_counter() - seconds_before
    data_iter = iter(loader)
    it = start_it
    running = 0.0
    while it < cfg.iterations:
        t0 = time.perf_counter()
        lr_batch, hr_batch = next(data_iter)
        data_wait += time.perf_counter() - t0
        lr_batch = lr_batch.flatten(0, 1).to(device, non_blocking=True)
        hr_batch = hr_batch.flatten(0, 1).to(device, non_blocking=True)
        for group in opt.param_groups:
            group["lr"] = lr_at(cfg, it)
        with autocast():
            sr_batch = train_model(lr_batch)
            if teacher is not None:
                with torch.no_grad():
                    target_t = teacher(lr_batch).float()
        if gan is not None:
            with autocast():
                loss = gan.generator_loss(sr_batch.float(), hr_batch)
        else:
            loss = loss_fn(sr_batch.float(), hr_batch)
        if teacher is not None:
            loss = loss + cfg.distill_weight * nn.functional.l1_loss(sr_batch.float(), target_t)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if gan is not None:
            with autocast():
                gan.step(sr_batch.float(), hr_batch, lr_at(cfg, it) / cfg.lr)
        if gain_sampler is not None:
            gain_sampler.report(it, _item_gains(sr_batch, hr_batch, lr_batch[:, : hr_batch.shape[1]],
                                                items_per_batch, cfg.scale))
        if ema is not None:
            with torch.no_grad():
                decay = ema_decay(cfg.ema, it)
                for pe, pm in zip(ema.parameters(), model.parameters(), strict=True):
                    pe.lerp_(pm, 1.0 - decay)
                for be, bm in zip(ema.buffers(), model.buffers(), strict=True):
                    be.copy_(bm)
        it += 1
        loss_value = float(loss.detach())
        running = 0.98 * running + 0.02 * loss_value if it > start_it + 1 else loss_value
        elapsed = time.perf_counter() - t_start
        if progress is not None and rank == 0:
            progress(it, running, elapsed)
        if rank == 0 and val_images is not None and (it % cfg.val_every == 0 or it == cfg.iterations):
            validate(it, elapsed)
        if rank == 0 and (it % cfg.ckpt_every == 0 or it == cfg.iterations):
            _save_state(state_path, it=it, model=model, opt=opt, ema=ema, best=best,
                        data_wait=data_wait, seconds=elapsed, sampler=gain_sampler, gan=gan)
    elapsed = time.perf_counter() - t_start
    if rank == 0:
        net = ema if ema is not None else model
        _export(out / "final.pt", net, it, best[0], elapsed)
        if val_images is None:  # no validation: the final weights are the best we know
            _export(out / "best.pt", net, it, math.nan, elapsed)
    if world > 1:
        dist.barrier()
    if own_group:
        # torn down here, after the barrier, not left to each process's exit (PyTorch asks for this):
        # one loaded CI run saw a rank abort (SIGABRT) after the work was done, cause not captured
        dist.destroy_process_group()
    return TrainResult(
        iterations=it, best_psnr=best[0], best_iteration=best[1], seconds=elapsed,
        data_wait_share=data_wait / elapsed if elapsed > 0 else 0.0, out=out,
    )
