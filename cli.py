"""Command line: parse options, build config dataclasses, call a pipeline.

Every user error ends as one line on stderr and a non-zero exit (click's
ClickException); tracebacks are for bugs only.
"""

from __future__ import annotations

import functools
import json
import logging
import sys
from pathlib import Path
from typing import Any, Callable

import click

from vsr import __version__

SCALES = ("2", "3", "4", "8", "9", "16")
USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, OSError, KeyError)


def _fail_cleanly(fn: Callable) -> Callable:
    """Turn library errors into one-line click errors."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except click.ClickException:
            raise
        except USER_ERRORS as exc:
            msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
            raise click.ClickException(str(msg).splitlines()[0] if str(msg) else exc.__class__.__name__) from None

    return wrapper


@click.group()
@click.version_option(__version__, prog_name="vsr")
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
def main(verbose: int) -> None:
    """vsr: video super-resolution on the luma plane."""
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)


def upscale_options(fn: Callable) -> Callable:
    """The per-clip options shared by ``upscale`` and ``batch`` (one list)."""
    options = [
        click.option("--scale", type=click.Choice(SCALES), default="2", show_default=True,
                     help="Total upscaling factor (8/9/16 need --passes 2)."),
        click.option("--model", default="espcn", show_default=True,
                     help="Model name (see 'vsr models'); 'bicubic' needs no weights."),
        click.option("--weights", type=click.Path(path_type=Path), default=None,
                     help="Checkpoint file (default: the shipped weights for model and scale)."),
        click.option("--passes", type=click.IntRange(1, 4), default=1, show_default=True,
                     help="Run a smaller-scale model N times (x4 = x2 twice)."),
        click.option("--correct", type=click.FloatRange(0, 255), default=None,
                     help="Correction filter: replace pixels farther than this from bicubic."),
        click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:1, mps."),
        click.option("--dtype", default="auto", show_default=True, help="auto, fp32, bf16, fp16."),
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
        click.option("--degrade", type=click.Choice(["bicubic", "blur"]), default="bicubic", show_default=True,
                     help="Degradation for --eval and the LR-consistency metric."),
        click.option("--reference", type=click.Path(path_type=Path), default=None,
                     help="Clip to compare each output frame with (PSNR/SSIM-Y)."),
        click.option("--no-ssim", is_flag=True, help="Skip SSIM (faster logs)."),
        click.option("--overwrite", is_flag=True, help="Replace an existing output."),
        click.option("--quiet", is_flag=True, help="No progress bar."),
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
    )
    encode = EncodeConfig(codec=opts.pop("codec"), crf=opts.pop("crf"), preset=opts.pop("preset"),
                          pix_fmt=opts.pop("pix_fmt"), audio=not opts.pop("no_audio"), backend=opts.pop("backend"))
    return UpscaleConfig(
        engine=engine, encode=encode, reference=opts.pop("reference"), eval=opts.pop("eval_mode"),
        degrade=opts.pop("degrade"), overwrite=opts.pop("overwrite"), quiet=opts.pop("quiet"),
        ssim=not opts.pop("no_ssim"),
    )


class _Bar:
    """tqdm progress adapter for the pipelines' progress callbacks."""

    def __init__(self, quiet: bool, unit: str = "frame", desc: str | None = None) -> None:
        from tqdm import tqdm

        self.bar = tqdm(unit=unit, disable=quiet, desc=desc, dynamic_ncols=True, leave=False)

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
    """Upscale a video or an image SRC into DST."""
    from pipelines.clip import check_paths, upscale_path

    cfg = build_upscale_config(opts)
    check_paths(src, dst, cfg.overwrite)
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


@main.command()
@_fail_cleanly
def models() -> None:
    """List registered models and shipped weights with their measured quality."""
    from vsr.models import list_models
    from vsr.weights import load_checkpoint, weights_dir

    click.echo("registered models: " + ", ".join(list_models()))
    folder = weights_dir()
    shipped = sorted(folder.glob("*.pt")) if folder.is_dir() else []
    if not shipped:
        click.echo(f"no shipped weights in {folder}")
        return
    cards = {}
    manifest = folder / "MANIFEST.json"
    if manifest.is_file():
        cards = {e["file"]: e for e in json.loads(manifest.read_text()).get("weights", [])}
    click.echo(f"shipped weights ({folder}):")
    click.echo(f"  {'file':<18} {'model':<8} {'scale':>5} {'Set5':>7} {'Set14':>7} {'B100':>7} {'fps 360p':>9}")
    for path in shipped:
        ckpt = load_checkpoint(path)
        card = cards.get(path.name, {})
        psnr = card.get("psnr_y", {})
        fps = card.get("fps_640x360", "")
        click.echo(
            f"  {path.name:<18} {ckpt['model']:<8} {'x' + str(ckpt['scale']):>5} "
            + " ".join(f"{psnr.get(s, float('nan')):>7.2f}" for s in ("Set5", "Set14", "B100"))
            + f" {fps:>9}"
        )


if __name__ == "__main__":
    main()
