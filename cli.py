"""Command line: parse options, build config dataclasses, call a pipeline.

Every user error ends as one line on stderr and a non-zero exit (click's
ClickException); tracebacks are for bugs only.
"""

from __future__ import annotations

import functools
import importlib
import json
import logging
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import click

from vsr import __version__
from vsr.config import (
    DEFAULT_MODEL,
    DEGRADATIONS,
    ENSEMBLES,
    MODEL_SCALES,
    MODELS,
    RUNTIMES,
    SAMPLERS,
    SCALES,
    SOURCES,
    TEMPORAL_MODES,
    TrainConfig,
)

# `pipelines` in the repository; `vsr_app.pipelines` beside `vsr_app.cli` when installed from
# a wheel (which takes no generic top-level name). The pipelines import each other relatively.
_PIPELINES = f"{__package__}.pipelines" if __package__ else "pipelines"


def _pipeline(name: str) -> Any:
    """The pipelines module ``name`` (imported on first use: the CLI starts without torch)."""
    return importlib.import_module(f"{_PIPELINES}.{name}")

# click.Choice takes strings; the values come from vsr.config
SCALE_CHOICES = tuple(map(str, SCALES))
MODEL_SCALE_CHOICES = tuple(map(str, MODEL_SCALES))
ENSEMBLE_CHOICES = tuple(map(str, ENSEMBLES))
RUNTIME_CHOICES = ("auto", *RUNTIMES)
USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, OSError, KeyError)


def _passive_thread_waits() -> None:
    """Let idle OpenMP threads sleep instead of spinning (set before torch loads).

    On the video path the engine shares the cores with the decoder and the
    encoder's own threads, and spinning OpenMP workers steal their time (measured
    in benchmarks/README.md). An explicit OMP_WAIT_POLICY in the environment wins.
    """
    if "torch" not in sys.modules:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def _fail_cleanly(fn: Callable) -> Callable:
    """Turn library errors into one-line click errors."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (click.ClickException, BrokenPipeError):
            raise
        except RuntimeError as exc:
            if "can't allocate memory" not in str(exc) and "out of memory" not in str(exc).lower():
                raise
            raise click.ClickException("out of memory: try a smaller --batch-size or --tile 256") from None
        except USER_ERRORS as exc:
            msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
            raise click.ClickException(str(msg).splitlines()[0] if str(msg) else exc.__class__.__name__) from None

    return wrapper


class Terminated(BaseException):
    """SIGTERM, raised in the main thread so that every cleanup path runs, as for Ctrl-C."""


def _raise_terminated(signum: int, frame: Any) -> None:
    raise Terminated()


def _signal_exit_code(exc: BaseException) -> int | None:
    """130 or 143 when SIGINT or SIGTERM is in ``exc``'s chain of causes and contexts, else None."""
    seen: set[int] = set()
    link: BaseException | None = exc
    while link is not None and id(link) not in seen:
        seen.add(id(link))
        if isinstance(link, KeyboardInterrupt):
            return 130
        if isinstance(link, Terminated):
            return 143
        link = link.__cause__ or link.__context__
    return None


def _exit_interrupted(code: int) -> NoReturn:
    what = "Interrupted" if code == 130 else "Terminated"
    click.echo(f"{what}: nothing was left at the output path.", err=True)
    sys.exit(code)


class _Group(click.Group):
    """The vsr group: exit codes as shells expect for signals (130 for SIGINT, 143 for SIGTERM)."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        if kwargs.get("standalone_mode", True) is False:
            return super().main(*args, **kwargs)
        previous = signal.signal(signal.SIGTERM, _raise_terminated)
        try:
            return super().main(*args, standalone_mode=False, **kwargs)  # type: ignore[call-overload]
        except click.exceptions.Exit as exc:
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            exc.show()
            sys.exit(exc.exit_code)
        except (KeyboardInterrupt, click.exceptions.Abort):
            _exit_interrupted(130)
        except Terminated:
            _exit_interrupted(143)
        except RuntimeError as exc:
            # A signal to the process group also stops helper processes (DataLoader workers);
            # the error their death raises while the signal is handled is the signal's, not a bug.
            code = _signal_exit_code(exc)
            if code is None:
                raise
            _exit_interrupted(code)
        except BrokenPipeError:  # `vsr models | head`: the reader left, nothing to report
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            sys.exit(1)
        finally:
            signal.signal(signal.SIGTERM, previous)


@click.group(cls=_Group)
@click.version_option(__version__, prog_name="vsr")
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
def main(verbose: int) -> None:
    """vsr: video super-resolution on the luma plane."""
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    from vsr.process import retain_freed_memory

    retain_freed_memory()  # freed blocks stay with the process: see vsr/process.py


def upscale_options(fn: Callable) -> Callable:
    """The per-clip options shared by ``upscale`` and ``batch`` (one list)."""
    options = [
        click.option("--scale", type=click.Choice(SCALE_CHOICES), default="2", show_default=True,
                     help="Total upscaling factor: 2, 3, 4 in one pass; 8 = 2 x 3 passes, 9 = 3 x 2, "
                          "16 = 4 x 2 or 2 x 4."),
        click.option("--model", type=click.Choice(MODELS), default=DEFAULT_MODEL, show_default=True,
                     help="Model name (see 'vsr models'); 'bicubic' needs no weights."),
        click.option("--weights", type=click.Path(path_type=Path), default=None,
                     help="Checkpoint file (default: the shipped weights for model and scale)."),
        click.option("--passes", type=click.IntRange(1, 4), default=1, show_default=True,
                     help="Run a smaller-scale model N times (x4 = x2 twice)."),
        click.option("--correct", type=click.FloatRange(0, 255), default=None,
                     help="Correction filter: replace pixels farther than this from bicubic."),
        click.option("--ensemble", type=click.Choice(ENSEMBLE_CHOICES), default="1", show_default=True,
                     help="Self-ensemble: average over N flipped/transposed copies (N times slower)."),
        click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:1, mps."),
        click.option("--dtype", "--precision", "dtype", default="auto", show_default=True,
                     help="auto, fp32, bf16, int8 (OpenVINO, where shipped: vsr models), fp16 (CUDA)."),
        click.option("--runtime", type=click.Choice(RUNTIME_CHOICES), default="auto", show_default=True,
                     help="Inference runtime; auto measures the installed ones once per model and CPU."),
        click.option("--source", type=click.Choice(SOURCES), default="auto", show_default=True,
                     help="Weights trained on clean or on compressed LR; auto decides from the input "
                          "(codec and bits per pixel). Compressed H.264 runs the weights of its QP band."),
        click.option("--temporal", type=click.Choice(TEMPORAL_MODES), default="auto", show_default=True,
                     help="Blend each output frame with its motion-compensated neighbours (removes codec "
                          "noise; slower): auto on compressed H.264 input run by compressed-source weights, "
                          "on always, off never."),
        click.option("--batch-size", type=click.IntRange(1, 256), default=4, show_default=True,
                     help="Frames per engine batch."),
        click.option("--tile", type=click.IntRange(16, None), default=None, help="Tile size in LR pixels."),
        click.option("--codec", default=None, help="Video encoder [default: libx264; libvpx-vp9 for .webm]."),
        click.option("--crf", type=click.IntRange(0, 63), default=18, show_default=True),
        click.option("--preset", default="medium", show_default=True),
        click.option("--pix-fmt", default=None, help="Output pixel format (default: the source's)."),
        click.option("--no-audio", is_flag=True, help="Drop audio and subtitle streams."),
        click.option("--backend", type=click.Choice(["pyav", "ffmpeg"]), default="pyav", show_default=True,
                     help="pyav (in-process) or ffmpeg (system binary through pipes)."),
        click.option("--eval", "eval_mode", is_flag=True,
                     help="Treat the input as ground truth: degrade, upscale, compare."),
        click.option("--degrade", type=click.Choice(DEGRADATIONS), default="bicubic", show_default=True,
                     help="Degradation for --eval and the LR-consistency metric."),
        click.option("--reference", type=click.Path(path_type=Path), default=None,
                     help="Clip to compare each output frame with (PSNR/SSIM-Y)."),
        click.option("--no-ssim", is_flag=True, help="Skip SSIM (faster logs)."),
        click.option("--overwrite", is_flag=True, help="Replace an existing output."),
        click.option("--quiet", is_flag=True, help="No progress bar."),
        click.option("--eval-codec", default="libx264", show_default=True,
                     help="With --eval-crf: the encoder the degraded copy goes through "
                          "(libx264, libx265, libvpx-vp9)."),
        click.option("--eval-crf", type=int, default=None,
                     help="With --eval: re-encode the degraded LR at this CRF first (a compressed source)."),
        click.option("--allow-partial", is_flag=True,
                     help="Keep what decodes of a truncated clip (a warning instead of an error)."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def build_upscale_config(opts: dict[str, Any]):
    """UpscaleConfig from the shared options (pops them from ``opts``)."""
    from vsr.config import EncodeConfig, EngineConfig, UpscaleConfig

    engine = EngineConfig(
        model=opts.pop("model"), scale=int(opts.pop("scale")), weights=opts.pop("weights"),
        device=opts.pop("device"), dtype=opts.pop("dtype"), batch_size=opts.pop("batch_size"),
        tile=opts.pop("tile"), passes=opts.pop("passes"), correct=opts.pop("correct"),
        ensemble=int(opts.pop("ensemble")), runtime=opts.pop("runtime"), source=opts.pop("source"),
    )
    encode = EncodeConfig(codec=opts.pop("codec"), crf=opts.pop("crf"), preset=opts.pop("preset"),
                          pix_fmt=opts.pop("pix_fmt"), audio=not opts.pop("no_audio"), backend=opts.pop("backend"))
    return UpscaleConfig(
        engine=engine, encode=encode, reference=opts.pop("reference"), eval=opts.pop("eval_mode"),
        degrade=opts.pop("degrade"), overwrite=opts.pop("overwrite"), quiet=opts.pop("quiet"),
        ssim=not opts.pop("no_ssim"), allow_partial=opts.pop("allow_partial"),
        eval_codec=opts.pop("eval_codec"), eval_crf=opts.pop("eval_crf"), temporal=opts.pop("temporal"),
    )


class _Bar:
    """tqdm progress adapter for the pipelines' progress callbacks."""

    def __init__(self, quiet: bool, unit: str = "frame", desc: str | None = None) -> None:
        from tqdm import tqdm

        # No bar fragments in logs and pipes: only a terminal gets one.
        self.bar = tqdm(unit=unit, disable=quiet or not sys.stderr.isatty(), desc=desc, dynamic_ncols=True,
                        leave=False)

    def __call__(self, done: int, total: int | None) -> None:
        if total and self.bar.total != total:
            self.bar.total = max(total, done)
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        self.bar.close()


@main.command()
@click.argument("src", type=click.Path(path_type=Path))
@click.argument("dst", type=click.Path(path_type=Path))
@upscale_options
@_fail_cleanly
def upscale(src: Path, dst: Path, **opts: Any) -> None:
    """Upscale a video or an image SRC into DST.

    \b
    Examples:
      vsr upscale in.mp4 out.mp4 --scale 2
      vsr upscale photo.png photo_x4.png --scale 4 --model edsr
      vsr upscale in.mp4 out.mp4 --eval   (input = ground truth: downscale, upscale, compare)
    """
    _passive_thread_waits()
    upscale_path = _pipeline("clip").upscale_path

    cfg = build_upscale_config(opts)
    bar = _Bar(cfg.quiet)
    try:
        report = upscale_path(src, dst, cfg, progress=bar)
    finally:
        bar.close()
    means = ", ".join(f"{k} {v:.3f}" for k, v in sorted(report.means.items()))
    click.echo(
        f"{report.dst}: {report.frames} frames {report.size_in[0]}x{report.size_in[1]} -> "
        f"{report.size_out[0]}x{report.size_out[1]} in {report.seconds:.1f} s ({report.fps:.2f} fps)"
        + (f"; {means}" if means else ""),
        err=True,
    )


def _parse_model_args(items: tuple[str, ...]) -> dict[str, Any]:
    """``key=value`` pairs; values parsed as JSON where they parse (3, 0.1, true), else strings."""
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise click.BadParameter(f"expected key=value, got {item!r}", param_hint="--model-arg")
        key, value = item.split("=", 1)
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


@main.command()
@click.option("--model", type=click.Choice(MODELS), required=True, help="Model to train (see 'vsr models').")
@click.option("--scale", type=click.Choice(MODEL_SCALE_CHOICES), required=True)
@click.option("--data", type=click.Path(exists=True, path_type=Path), multiple=True, required=True,
              help="Folder of training images or extracted frames (repeatable; recursive).")
@click.option("--val", type=click.Path(exists=True, path_type=Path), default=None,
              help="Validation image folder (PSNR-Y every --val-every iterations).")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Run folder.")
@click.option("--model-arg", "model_args", multiple=True, help="Model argument key=value (repeatable).")
@click.option("--init", type=click.Path(exists=True, path_type=Path), default=None,
              help="Start from a checkpoint: same-shape tensors copied, smaller ones embedded so a wider / deeper "
                   "net starts as the checkpoint's function (e.g. x2 weights for x3, 5-3-3 ESPCN for a deeper one).")
@click.option("--iterations", type=click.IntRange(1, None), default=10000, show_default=True)
@click.option("--batch-size", type=click.IntRange(1, None), default=16, show_default=True)
@click.option("--patch-size", type=click.IntRange(8, None), default=96, show_default=True, help="HR patch side.")
@click.option("--patches-per-image", type=click.IntRange(1, None), default=4, show_default=True)
@click.option("--lr", type=float, default=1e-3, show_default=True)
@click.option("--lr-min", type=float, default=1e-5, show_default=True)
@click.option("--schedule", type=click.Choice(["cosine", "step", "constant"]), default="cosine", show_default=True)
@click.option("--warmup", type=click.IntRange(0, None), default=0, show_default=True)
@click.option("--loss", type=click.Choice(["l1", "l2"]), default="l1", show_default=True)
@click.option("--precision", type=click.Choice(["fp32", "bf16"]), default="fp32", show_default=True)
@click.option("--ema", type=click.FloatRange(0, 1, max_open=True), default=0.0, show_default=True,
              help="Decay of an exponential moving average of the weights, which validation and export use "
                   "(warmed up as (1 + t) / (10 + t) over the first steps).")
@click.option("--degradation", default="bicubic", show_default=True,
              help="bicubic, blur, or a chain such as 'blur:0.5:0.2-1.2,bicubic,noise:0.3:1-6,jpeg:0.3:40-95,"
                   "h264:0.5:18-33' (NAME:probability:range; see vsr/degrade_chain.py).")
@click.option("--scale-aug", type=click.FloatRange(0, 1, min_open=True), default=1.0, show_default=True,
              help="Shrink each training image by a random factor in [SCALE_AUG, 1] first (1: off).")
@click.option("--val-every", type=click.IntRange(1, None), default=1000, show_default=True)
@click.option("--ckpt-every", type=click.IntRange(1, None), default=1000, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--workers", type=click.IntRange(0, None), default=1, show_default=True)
@click.option("--threads", type=click.IntRange(1, None), default=None, help="torch CPU threads.")
@click.option("--device", default="auto", show_default=True)
@click.option("--teacher", type=click.Path(exists=True, path_type=Path), default=None,
              help="Distil from this checkpoint (same scale): the loss adds the L1 distance to its output.")
@click.option("--distill-weight", type=click.FloatRange(0, None), default=1.0, show_default=True,
              help="Weight of the teacher term in the loss.")
@click.option("--data-weight", "data_weights", type=click.FloatRange(0, None), multiple=True,
              help="Share of the draws for each --data folder, in order (default: by file count).")
@click.option("--sampler", type=click.Choice(SAMPLERS), default="uniform", show_default=True,
              help="gain: draw patches with low PSNR gain over bicubic more often (vsr/data/gain.py).")
@click.option("--sampler-round", type=click.IntRange(1, None), default=25, show_default=True,
              help="Iterations per round of the gain sampler (its probabilities change once a round).")
@click.option("--gan", is_flag=True, help="Adversarial training (SRGAN): needs --init generator weights.")
@click.option("--adv-weight", type=click.FloatRange(0, None), default=5e-3, show_default=True)
@click.option("--pixel-weight", type=click.FloatRange(0, None), default=1e-2, show_default=True,
              help="--gan: weight of the L1 pixel loss.")
@click.option("--feature-weight", type=click.FloatRange(0, None), default=1.0, show_default=True,
              help="--gan: weight of the feature loss (features of --feature-net).")
@click.option("--feature-net", type=click.Path(exists=True, path_type=Path), default=None,
              help="--gan: checkpoint (EDSR or SRResNet) whose head and first blocks give the feature loss.")
@click.option("--d-lr", type=click.FloatRange(0, None), default=1e-4, show_default=True,
              help="--gan: discriminator learning rate (same schedule as --lr).")
@click.option("--d-features", type=click.IntRange(8, None), default=64, show_default=True,
              help="--gan: discriminator width (the paper's 64).")
@click.option("--resume", is_flag=True, help="Continue from OUT/last.pt exactly.")
@click.option("--quiet", is_flag=True)
@_fail_cleanly
def train(quiet: bool, model_args: tuple[str, ...], data: tuple[Path, ...], scale: str,
          data_weights: tuple[float, ...], **opts: Any) -> None:
    """Train a model on image/frame folders; export OUT/best.pt in the weights format.

    \b
    Examples:
      vsr train --model fast --scale 2 --data ../shared/data/T91 --val ../shared/data/Kodak24 --out runs/x2
      vsr train --model fast --scale 2 --data frames/ --out runs/x2 --teacher weights/edsr_x2.pt --resume
    """
    run_training = _pipeline("train").run_training
    cfg = TrainConfig(data=tuple(data), scale=int(scale), model_kwargs=_parse_model_args(model_args),
                      data_weights=tuple(data_weights), **opts)
    from tqdm import tqdm

    bar = tqdm(total=cfg.iterations, disable=quiet or not sys.stderr.isatty(), unit="it", dynamic_ncols=True)

    def progress(it: int, loss: float, seconds: float) -> None:
        bar.update(it - bar.n)
        bar.set_postfix(loss=f"{loss:.4f}", refresh=False)

    try:
        result = run_training(cfg, progress=progress, command=["vsr", *sys.argv[1:]])
    finally:
        bar.close()
    click.echo(
        f"{result.iterations} iterations in {result.seconds / 60:.1f} min; best validation PSNR-Y "
        f"{result.best_psnr:.3f} dB at {result.best_iteration}; data wait {100 * result.data_wait_share:.1f}% "
        f"-> {result.out / 'best.pt'}",
        err=True,
    )


@main.command(name="eval")
@click.argument("folders", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--model", type=click.Choice(MODELS), default=DEFAULT_MODEL, show_default=True)
@click.option("--scale", type=click.Choice(SCALE_CHOICES), default="2", show_default=True)
@click.option("--weights", type=click.Path(path_type=Path), default=None)
@click.option("--passes", type=click.IntRange(1, 4), default=1, show_default=True)
@click.option("--correct", type=click.FloatRange(0, 255), default=None)
@click.option("--ensemble", type=click.Choice(ENSEMBLE_CHOICES), default="1", show_default=True,
              help="Self-ensemble over N flipped/transposed copies.")
@click.option("--device", default="auto", show_default=True)
@click.option("--dtype", "--precision", "dtype", default="fp32", show_default=True,
              help="fp32 by default: benchmark figures.")
@click.option("--runtime", type=click.Choice(RUNTIME_CHOICES), default="torch", show_default=True,
              help="Inference runtime (torch by default: benchmark figures).")
@click.option("--tile", type=click.IntRange(16, None), default=None)
@click.option("--no-ssim", is_flag=True)
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Write OUT.csv (per image) and OUT.json (means).")
@_fail_cleanly
def eval_cmd(folders: tuple[Path, ...], out: Path | None, no_ssim: bool, scale: str, ensemble: str,
             **opts: Any) -> None:
    """PSNR/SSIM-Y on benchmark image FOLDERS (e.g. Set5 Set14 B100), with bicubic beside it.

    \b
    Examples:
      vsr eval ../shared/data/Set5 ../shared/data/Set14 --scale 2
      vsr eval ../shared/data/Set5 --scale 4 --model edsr --out set5_x4.json
    """
    _m = _pipeline("evaluate")
    evaluate_sets, format_table, write_results = _m.evaluate_sets, _m.format_table, _m.write_results
    from vsr.config import EngineConfig

    cfg = EngineConfig(scale=int(scale), batch_size=1, ensemble=int(ensemble), **opts)
    results, info = evaluate_sets(cfg, list(folders), with_ssim=not no_ssim)
    click.echo(format_table(results, info))
    if out is not None:
        csv_path, json_path = write_results(results, info, out)
        click.echo(f"wrote {csv_path} and {json_path}", err=True)


@main.command(name="extract-frames")
@click.argument("clip", type=click.Path(path_type=Path))
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@click.option("--every", type=click.IntRange(1, None), default=1, show_default=True, help="Keep every k-th frame.")
@click.option("--y-only", is_flag=True, help="Write only the luma plane (FRAME.y.png).")
@click.option("--quiet", is_flag=True)
@_fail_cleanly
def extract_frames(clip: Path, folder: Path, every: int, y_only: bool, quiet: bool) -> None:
    """Write CLIP's frames losslessly as PNGs into FOLDER (training data from footage).

    \b
    Examples:
      vsr extract-frames clip.mp4 frames/ --every 5
      vsr extract-frames clip.mp4 frames/ --y-only
    """
    run = _pipeline("frames").extract_frames

    bar = _Bar(quiet)
    try:
        n = run(clip, folder, every=every, y_only=y_only, progress=bar)
    finally:
        bar.close()
    click.echo(f"wrote {n} frames to {folder}", err=True)


@main.command()
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("demo"), show_default=True,
              help="Folder for the sample clip and its upscaled copy.")
@click.option("--scale", type=click.Choice(MODEL_SCALE_CHOICES), default="2", show_default=True)
@click.option("--quiet", is_flag=True)
@_fail_cleanly
def demo(out: Path, scale: str, quiet: bool) -> None:
    """Make a sample clip and upscale it with the default model (no input needed).

    \b
    Examples:
      vsr demo
      vsr demo --scale 4 --out /tmp/demo
    """
    _passive_thread_waits()
    bars: list[_Bar] = []

    def progress_for(mode: str) -> _Bar:
        bars.append(_Bar(quiet, desc=mode))
        return bars[-1]

    try:
        result = _pipeline("demo").run_demo(out, int(scale), quiet=quiet, progress_for=progress_for)
    finally:
        for bar in bars:
            bar.close()
    src, plain, ev, model = result.sample, result.plain, result.eval, DEFAULT_MODEL
    click.echo(f"sample clip:   {src} ({plain.size_in[0]}x{plain.size_in[1]}, {plain.frames} frames, AAC audio)")
    click.echo(f"upscaled x{scale}:  {plain.dst} ({plain.size_out[0]}x{plain.size_out[1]}, {plain.fps:.1f} fps "
               f"on {plain.engine.device}/{plain.engine.runtime}/{plain.engine.dtype}, model {model}, "
               f"{plain.engine.source} weights: {plain.engine.source_reason})")
    click.echo(f"per-frame log: {plain.dst}.frames.csv")
    click.echo(f"--eval check:  PSNR-Y {ev.means['psnr']:.2f} dB vs bicubic {ev.means['psnr_bicubic']:.2f} dB "
               f"(gain {ev.means['psnr'] - ev.means['psnr_bicubic']:+.2f} dB)")


@main.command()
@click.argument("clip", required=False, type=click.Path(path_type=Path))
@click.option("--frames", type=click.IntRange(4, None), default=48, show_default=True,
              help="Frames held in memory for the per-stage timings.")
@click.option("--json-out", type=click.Path(path_type=Path), default=None, help="Also write the figures as JSON.")
@upscale_options
@_fail_cleanly
def bench(clip: Path | None, frames: int, json_out: Path | None, **opts: Any) -> None:
    """Frames/s of decode, engine (fp32 and bf16), encode and the whole pipeline, beside bicubic.

    \b
    Examples:
      vsr bench
      vsr bench clip.mp4 --model edsr --json-out bench.json

    Without CLIP a 640x360 sample clip is drawn first (the 360p -> 720p case).
    """
    _passive_thread_waits()
    import tempfile

    run_bench = _pipeline("bench").run_bench
    make_sample_clip = _pipeline("demo").make_sample_clip

    cfg = build_upscale_config(opts)
    with tempfile.TemporaryDirectory() as tmp:
        if clip is None:
            clip = make_sample_clip(Path(tmp) / "sample360p.mp4", seconds=4, width=640, height=360)
        res = run_bench(clip, cfg, frames=frames)
    w, h = res.size_in
    ow, oh = res.size_out
    click.echo(f"{res.clip}: {res.frames} frames {w}x{h} -> {ow}x{oh}, model {res.model} x{res.scale}, "
               f"{res.device}, {res.threads} threads, auto runs {res.auto}; weights {res.weights}, "
               f"temporal blend {'on' if res.temporal else 'off'}")
    click.echo(f"  decode           {res.decode_fps:8.1f} fps")
    for name, fps in res.engine_fps.items():
        click.echo(f"  engine {name:<20} {fps:8.1f} fps")
    click.echo(f"  encode           {res.encode_fps:8.1f} fps")
    click.echo(f"  end to end       {res.e2e_fps_model:8.1f} fps   split (s): {res.e2e_split_model}")
    click.echo(f"  bicubic pipeline {res.e2e_fps_bicubic:8.1f} fps   split (s): {res.e2e_split_bicubic}")
    click.echo(f"  model / bicubic end to end: x{res.e2e_model_over_bicubic:.2f}")
    if json_out is not None:
        from dataclasses import asdict

        from vsr.io.atomic import write_text_atomic

        write_text_atomic(json_out, json.dumps(asdict(res), indent=2, default=str) + "\n")


@main.command()
@click.argument("src_dir", type=click.Path(path_type=Path))
@click.argument("dst_dir", type=click.Path(path_type=Path))
@click.option("--glob", "globs", multiple=True,
              help="File name pattern to take (repeatable) [default: videos and images].")
@click.option("--ext", default=None, help="Output extension for videos (default: keep; .mkv if not writable).")
@click.option("--jobs", type=click.IntRange(1, 64), default=1, show_default=True, help="Clips at once (processes).")
@click.option("--devices", default=None, help="Comma-separated devices dealt to jobs, e.g. cuda:0,cuda:1.")
@click.option("--executor", type=click.Choice(["local", "ray"]), default="local", show_default=True)
@click.option("--address", default=None, help="Ray cluster address (default: start a local Ray).")
@click.option("--force", is_flag=True, help="Redo everything, even what the manifest says is done.")
@upscale_options
@_fail_cleanly
def batch(src_dir: Path, dst_dir: Path, globs: tuple[str, ...], ext: str | None, jobs: int, devices: str | None,
          executor: str, address: str | None, force: bool, **opts: Any) -> None:
    """Upscale every clip and image under SRC_DIR into DST_DIR (mirrored tree, resumable).

    \b
    Examples:
      vsr batch videos/ upscaled/ --scale 2
      vsr batch videos/ upscaled/ --jobs 2 --glob '*.mp4'
      vsr batch videos/ upscaled/ --executor ray --address auto
    """
    _passive_thread_waits()
    from tqdm import tqdm

    _m = _pipeline("batch")

    DEFAULT_GLOBS, BatchConfig = _m.DEFAULT_GLOBS, _m.BatchConfig
    format_summary, run_batch = _m.format_summary, _m.run_batch

    upscale_cfg = build_upscale_config(opts)
    cfg = BatchConfig(src_dir=src_dir, dst_dir=dst_dir, upscale=upscale_cfg, globs=globs or DEFAULT_GLOBS, ext=ext,
                      jobs=jobs, devices=tuple(d.strip() for d in devices.split(",")) if devices else (),
                      executor=executor, address=address, force=force)
    hidden = upscale_cfg.quiet or not sys.stderr.isatty()
    bar = tqdm(unit="clip", disable=hidden, dynamic_ncols=True, position=0, desc="clips")
    clip_bar = tqdm(unit="frame", disable=hidden or jobs > 1 or executor != "local",
                    dynamic_ncols=True, position=1, leave=False)
    frames_total = [0]
    current = [""]

    def on_result(record: dict, done: int, total: int) -> None:
        bar.total = total
        frames_total[0] += record.get("frames") or 0
        bar.set_postfix_str(f"{frames_total[0]} frames; {record['status']}: {record['input'][-30:]}", refresh=False)
        bar.update(done - bar.n)

    def clip_progress(rel: str, done: int, total: int | None) -> None:
        if current[0] != rel:
            current[0] = rel
            clip_bar.reset(total=total)
            clip_bar.set_description_str(rel[-30:], refresh=False)
        clip_bar.update(done - clip_bar.n)

    try:
        report = run_batch(cfg, on_result=on_result, clip_progress=clip_progress)
    finally:
        clip_bar.close()
        bar.close()
    click.echo(format_summary(report), err=True)
    if report.failed:
        sys.exit(1)


@main.command(name="rank-datasets")
@click.argument("sets", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--eval", "eval_sets", multiple=True, required=True,
              type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Evaluation set folder (repeatable), e.g. Set5, Set14, B100.")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Folder for the runs and the table.")
@click.option("--model", type=click.Choice(MODELS), default="fast", show_default=True,
              help="The small model every run trains.")
@click.option("--scale", type=click.Choice(MODEL_SCALE_CHOICES), default="2", show_default=True)
@click.option("--iterations", type=click.IntRange(1, None), default=1000, show_default=True)
@click.option("--batch-size", type=click.IntRange(1, None), default=16, show_default=True)
@click.option("--patch-size", type=click.IntRange(8, None), default=64, show_default=True)
@click.option("--patches-per-image", type=click.IntRange(1, None), default=8, show_default=True)
@click.option("--lr", type=float, default=1e-3, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--threads", type=click.IntRange(1, None), default=None)
@click.option("--precision", type=click.Choice(["fp32", "bf16"]), default="fp32", show_default=True)
@click.option("--mixes", default=",".join(("uniform", "ranked", "pooled")), show_default=True,
              help="Mixes of all the sets to train after the ranking (comma-separated; empty: none).")
@click.option("--quiet", is_flag=True)
@_fail_cleanly
def rank_datasets(sets: tuple[Path, ...], eval_sets: tuple[Path, ...], scale: str, mixes: str, quiet: bool,
                  **opts: Any) -> None:
    """Train the same small model on each training SET alone, rank the sets by gain, then train mixes.

    \b
    Examples:
      vsr rank-datasets ../shared/data/T91 ../shared/data/BSDS200 --eval ../shared/data/Set5 --out runs/rank
    """
    ranking = _pipeline("ranking")
    cfg = ranking.RankConfig(sets=sets, eval_sets=eval_sets, out=opts["out"],
                             train=TrainConfig(data=sets, scale=int(scale), **opts),
                             mixes=tuple(m for m in mixes.split(",") if m))
    rows = ranking.rank_datasets(cfg, progress=None if quiet else lambda msg: click.echo(msg, err=True))
    click.echo(ranking.to_markdown(rows, cfg), nl=False)


@main.command()
@click.argument("source")
@click.option("--models", required=True, help="Comma-separated model names, e.g. bicubic,espcn,edsr.")
@click.option("--scale", type=click.Choice(MODEL_SCALE_CHOICES), default="2", show_default=True)
@click.option("--crop", default=None, help="X,Y,W,H in output pixels [default: a central 192 px square].")
@click.option("--as-lr", is_flag=True, help="SOURCE is the low-resolution input (no reference, no PSNR).")
@click.option("--device", default="cpu", show_default=True)
@click.option("-o", "--out", type=click.Path(path_type=Path), default=Path("compare.png"), show_default=True)
@_fail_cleanly
def compare(source: str, models: str, scale: str, crop: str | None, as_lr: bool, device: str, out: Path) -> None:
    """Side-by-side picture of one crop upscaled by several models (IMAGE, CLIP or CLIP:FRAME).

    \b
    Examples:
      vsr compare photo.png --models bicubic,espcn,edsr --scale 2 -o compare.png
      vsr compare clip.mp4:120 --models bicubic,fast,espcn --crop 100,50,200,120
    """
    run_compare = _pipeline("compare").compare

    panels = run_compare(source, [m.strip() for m in models.split(",") if m.strip()], int(scale), out,
                         crop=crop, as_lr=as_lr, device=device)
    for p in panels:
        click.echo(f"{p.label:<12} " + ("" if p.psnr is None else f"PSNR-Y {p.psnr:.3f} dB"))
    click.echo(f"-> {out}")


@main.command(name="export")
@click.argument("model")
@click.option("--scale", type=click.Choice(MODEL_SCALE_CHOICES), default="2", show_default=True)
@click.option("--weights", type=click.Path(path_type=Path), default=None,
              help="Checkpoint file (default: the shipped weights for model and scale).")
@click.option("--format", "fmt", type=click.Choice(["onnx"]), default="onnx", show_default=True)
@click.option("-o", "--out", type=click.Path(path_type=Path), required=True, help="Output file (FILE.onnx).")
@click.option("--overwrite", is_flag=True, help="Replace an existing output.")
@_fail_cleanly
def export_cmd(model: str, scale: str, weights: Path | None, fmt: str, out: Path, overwrite: bool) -> None:
    """Write MODEL's fused inference graph (dynamic batch and frame size) for other runtimes.

    \b
    Examples:
      vsr export fast --scale 2 -o fast_x2.onnx
      vsr export espcn --scale 4 --weights runs/x4/final.pt -o espcn_x4.onnx
    """
    result = _pipeline("export").export_model(model, int(scale), out, weights=weights, fmt=fmt,
                                              overwrite=overwrite)
    check = ("" if result.max_abs_diff is None else
             f"; ONNX Runtime agrees with torch within {result.max_abs_diff:.1e} on a test frame")
    click.echo(f"wrote {result.path} ({result.bytes} bytes, opset {result.opset}){check}")
    if result.size_multiple > 1:
        click.echo(f"note: the graph needs H and W divisible by {result.size_multiple}; pad other sizes "
                   "by edge replication and crop the output, as vsr's runners do")


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list, one object per shipped checkpoint.")
@_fail_cleanly
def models(as_json: bool) -> None:
    """List registered models and shipped weights with their cost and measured quality.

    \b
    Examples:
      vsr models
      vsr models --json
    """
    _m = _pipeline("models")
    registered_models, shipped_models = _m.registered_models, _m.shipped_models
    from vsr.weights import weights_dir

    rows = shipped_models()
    if as_json:
        click.echo(json.dumps([r.as_json() for r in rows], indent=2))
        return
    click.echo("registered models: " + ", ".join(registered_models()))
    if not rows:
        click.echo(f"no shipped weights in {weights_dir()}")
        return
    click.echo(f"shipped weights ({weights_dir()}):")
    click.echo(f"  {'file':<22} {'model':<8} {'scale':>5} {'params':>8} {'GMAC':>7} {'Set5':>7} {'Set14':>7} "
               f"{'B100':>7} {'ms/frame':>9}  {'runtime':<14} timed by, on")
    for r in rows:
        ms = f"{r.ms_640x360:.0f}" if r.ms_640x360 is not None else "-"
        click.echo(
            f"  {r.file:<22} {r.model:<8} {'x' + str(r.scale):>5} {r.params:>8} {r.gmac_640x360:>7.1f} "
            + " ".join(f"{r.psnr_y.get(s, float('nan')):>7.2f}" for s in ("Set5", "Set14", "B100"))
            + f" {ms:>9}  {r.runtime or '-':<14} {r.timed_as}"
        )


if __name__ == "__main__":
    main()
