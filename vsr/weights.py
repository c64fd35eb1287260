"""Checkpoints: one file format for shipped weights and training exports.

A checkpoint is a plain dict saved with ``torch.save`` and loaded with
``weights_only=True``::

    {"format": 1, "model": "espcn", "model_kwargs": {...}, "scale": 2,
     "color": {"y": "bt601-studio"}, "state_dict": {...}, "meta": {...}}

``resolve`` finds shipped weights: an explicit path, else
``$VSR_WEIGHTS_DIR``, else the repository's ``weights/`` folder. Nothing is
ever downloaded.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from vsr.io.atomic import atomic_output
from vsr.models import create_model, list_models

__all__ = [
    "COLOR_CONVENTION",
    "FORMAT",
    "WeightsError",
    "average_state_dicts",
    "default_weights",
    "load_checkpoint",
    "load_model",
    "model_from_checkpoint",
    "qp_bands",
    "qp_floor",
    "save_checkpoint",
    "verify_shipped",
    "weights_dir",
]

FORMAT = 1
# Y of RGB training images: BT.601, studio swing (see vsr.color).
COLOR_CONVENTION = {"y": "bt601-studio"}


class WeightsError(ValueError):
    """A checkpoint is missing, unreadable or does not match what was asked for."""


def weights_dir() -> Path:
    """Where shipped weights live: ``$VSR_WEIGHTS_DIR``, else a checkout's
    ``weights/`` folder, else the copy an installed wheel carries
    (package ``vsr.shipped_weights``, built from that same folder)."""
    env = os.environ.get("VSR_WEIGHTS_DIR")
    if env:
        return Path(env)
    checkout = Path(__file__).resolve().parent.parent / "weights"
    if (checkout / "MANIFEST.json").is_file():
        return checkout
    try:
        spec = importlib.util.find_spec("vsr.shipped_weights")
    except (ImportError, ValueError):
        spec = None
    if spec is not None and spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    return checkout


def _manifest_sha256(folder: Path) -> dict[str, str]:
    path = folder / "MANIFEST.json"
    if not path.is_file():
        return {}
    try:
        entries = json.loads(path.read_text()).get("weights", [])
    except (OSError, ValueError) as exc:
        raise WeightsError(f"cannot read {path}: {exc}") from None
    sums = {e["file"]: e["sha256"] for e in entries if "sha256" in e}
    for e in entries:  # an int8 graph's files (NAME.int8.xml and .bin) are listed under its checkpoint
        sums.update(e.get("int8", {}).get("sha256", {}))
    return sums


def verify_shipped(path: Path) -> None:
    """Check a file of the shipped folder against its sha256 in ``MANIFEST.json``.

    Files outside that folder, or not listed there, are not checked.
    """
    path = Path(path)
    folder = weights_dir()
    try:
        inside = path.resolve().parent == folder.resolve()
    except OSError:
        inside = False
    if not inside:
        return
    expected = _manifest_sha256(folder).get(path.name)
    if expected is None:
        return
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    if digest.hexdigest() != expected:
        raise WeightsError(f"shipped weights {path.name} are corrupt: sha256 differs from {folder / 'MANIFEST.json'}"
                           " (reinstall vsr, or restore the file)")


def qp_bands(model: str, scale: int) -> dict[int, Path]:
    """The QP-banded compressed-source checkpoints of ``model`` at ``scale``: ``{QP: path}`` for
    each ``MODEL_xN_compressed_qpQP.pt``, trained for streams quantised at QP and coarser."""
    bands = {}
    prefix = f"{model}_x{scale}_compressed_qp"
    for path in weights_dir().glob(f"{prefix}*.pt"):
        floor = path.stem[len(prefix):]
        if floor.isdigit():
            bands[int(floor)] = path
    return dict(sorted(bands.items()))


def qp_floor(model: str, scale: int, qp: float | None) -> int | None:
    """The floor of the QP band (:func:`qp_bands`) a stream quantised at ``qp`` falls in: the
    highest at or below ``qp``; None when ``qp`` is unknown or below every band."""
    floors = [f for f in qp_bands(model, scale) if qp is not None and f <= qp]
    return max(floors) if floors else None


def default_weights(model: str, scale: int, source: str = "clean", qp: float | None = None) -> Path | None:
    """Path of the shipped checkpoint for ``model`` at ``scale``, or None.

    ``source``: ``clean`` (``MODEL_xN.pt``, trained on clean LR) or ``compressed``
    (``MODEL_xN_compressed.pt``, trained on H.264-compressed LR as well). For ``compressed``
    with the stream's quantiser ``qp`` known (H.264, 0..51), the QP-banded file with the
    highest floor at or below ``qp`` (:func:`qp_bands`) runs where one ships.
    """
    floor = qp_floor(model, scale, qp) if source == "compressed" else None
    if floor is not None:
        return qp_bands(model, scale)[floor]
    suffix = {"clean": "", "compressed": "_compressed"}[source]
    path = weights_dir() / f"{model}_x{scale}{suffix}.pt"
    return path if path.is_file() else None


def save_checkpoint(
    path: Path,
    *,
    model: str,
    model_kwargs: dict[str, Any],
    scale: int,
    state_dict: dict[str, torch.Tensor],
    meta: dict[str, Any] | None = None,
    train_form: tuple[dict[str, Any], dict[str, torch.Tensor]] | None = None,
) -> None:
    """Write a checkpoint dict atomically (``path.part`` then rename).

    ``train_form`` = ``(model_kwargs, state_dict)`` of the multi-branch form of a
    re-parameterized model, kept for further training (``--init``) under
    ``"train_form"``; ``state_dict`` is then the fused inference form.
    """
    path = Path(path)
    ckpt: dict[str, Any] = {
        "format": FORMAT,
        "model": model,
        "model_kwargs": dict(model_kwargs),
        "scale": int(scale),
        "color": dict(COLOR_CONVENTION),
        "state_dict": {k: v.detach().cpu().clone() for k, v in state_dict.items()},
        "meta": dict(meta or {}),
    }
    if train_form is not None:
        ckpt["train_form"] = {
            "model_kwargs": dict(train_form[0]),
            "state_dict": {k: v.detach().cpu().clone() for k, v in train_form[1].items()},
        }
    with atomic_output(path) as part:
        torch.save(ckpt, part)


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Read and validate a checkpoint dict (``weights_only=True``)."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights file not found: {path}")
    verify_shipped(path)
    try:
        with warnings.catch_warnings():
            # A foreign pickle draws a protocol UserWarning before the error this raises.
            warnings.simplefilter("ignore", UserWarning)
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a corrupt file
        # torch's first sentence only: the rest (many lines) advises weights_only=False, which a user must not do.
        detail = (str(exc).strip().splitlines() or [""])[0].split(". ")[0][:120]
        raise WeightsError(f"cannot read weights {path}: truncated or not a PyTorch checkpoint "
                           f"({exc.__class__.__name__}: {detail})") from exc
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise WeightsError(f"{path} is not a vsr checkpoint (format {FORMAT})")
    for key in ("model", "model_kwargs", "scale", "state_dict"):
        if key not in ckpt:
            raise WeightsError(f"{path} lacks {key!r}")
    return ckpt


def average_state_dicts(state_dicts: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Uniform average of same-shaped state dicts (weight averaging along a run, as in SWA).

    Floating tensors are averaged in float64 and cast back to their dtype; integer tensors
    (counters such as BatchNorm's ``num_batches_tracked``) are taken from the last dict.
    """
    if not state_dicts:
        raise WeightsError("nothing to average")
    keys = list(state_dicts[-1])
    for sd in state_dicts:
        if list(sd) != keys:
            raise WeightsError("state dicts to average hold different tensors")
        for k in keys:
            if sd[k].shape != state_dicts[-1][k].shape:
                raise WeightsError(f"state dicts to average differ in the shape of {k!r}")
    out = {}
    for k in keys:
        last = state_dicts[-1][k]
        if last.is_floating_point():
            total = torch.stack([sd[k].detach().to(torch.float64) for sd in state_dicts]).sum(0)
            out[k] = (total / len(state_dicts)).to(last.dtype)
        else:
            out[k] = last.detach().clone()
    return out


def model_from_checkpoint(
    ckpt: dict[str, Any], *, expect_model: str | None = None, expect_scale: int | None = None
) -> nn.Module:
    """Build the model a checkpoint describes and load its weights strictly."""
    if expect_model is not None and ckpt["model"] != expect_model:
        raise WeightsError(f"checkpoint holds model {ckpt['model']!r}, not {expect_model!r}")
    if expect_scale is not None and int(ckpt["scale"]) != int(expect_scale):
        raise WeightsError(f"checkpoint is for scale x{ckpt['scale']}, not x{expect_scale}")
    try:
        model = create_model(ckpt["model"], scale=int(ckpt["scale"]), **ckpt["model_kwargs"])
    except (TypeError, ValueError, KeyError) as exc:
        raise WeightsError(f"checkpoint's model {ckpt['model']!r} x{ckpt['scale']} cannot be built from its "
                           f"arguments {ckpt['model_kwargs']}: {str(exc).splitlines()[0]}") from None
    state = ckpt["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsError("checkpoint's state_dict is not a dict of tensors")
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        raise WeightsError(f"checkpoint does not match model {ckpt['model']!r}: "
                           + (f"missing {', '.join(missing[:3])}" if missing else "")
                           + ("; " if missing and unexpected else "")
                           + (f"unexpected {', '.join(unexpected[:3])}" if unexpected else ""))
    for name, value in state.items():
        if value.shape != own[name].shape:
            raise WeightsError(f"checkpoint tensor {name} has shape {tuple(value.shape)}, "
                               f"model {ckpt['model']!r} needs {tuple(own[name].shape)}")
        if value.is_floating_point() and not torch.isfinite(value).all():
            raise WeightsError(f"checkpoint tensor {name} holds non-finite values (NaN or inf): corrupt weights")
    model.load_state_dict(state, strict=True)
    return model.eval()


def load_model(model: str, scale: int, weights: Path | None = None, *, source: str = "clean",
               source_asked: bool = False, qp: float | None = None) -> tuple[nn.Module, dict[str, Any]]:
    """The model to run: ``weights`` if given, else shipped weights for ``source`` (and the
    stream's quantiser ``qp``, see :func:`default_weights`), else (bicubic only) none.

    When the model has no weights for ``source``, those of the other source run, unless
    ``source_asked`` (the user named the source): then it is an error.
    Returns ``(module, info)`` where ``info`` has ``model``, ``scale``, ``weights`` (path or
    None), ``source`` (the weights' training source) and the checkpoint ``meta``.
    """
    if model not in list_models():
        raise WeightsError(f"unknown model {model!r}; known: {', '.join(list_models())}")
    if weights is not None:
        source = "given"
    elif model != "bicubic":
        weights = default_weights(model, scale, source, qp)
        other = "clean" if source == "compressed" else "compressed"
        if weights is None and source_asked:
            have = sorted({p.name.split("_x")[0] for p in weights_dir().glob("*_compressed.pt")})
            if source == "compressed":
                raise WeightsError(f"no compressed-source weights for {model} x{scale}"
                                   + (f"; models that have them: {', '.join(have)}" if have else ""))
            if default_weights(model, scale, other) is not None:
                raise WeightsError(f"no clean-source weights for {model} x{scale}; it has compressed-source "
                                   "ones (--source compressed or auto)")
        elif weights is None:  # auto: the other source's weights rather than none
            weights = default_weights(model, scale, other)
            source = other if weights is not None else source
    if weights is None:
        if model != "bicubic":
            raise WeightsError(
                f"no weights for {model} x{scale} in {weights_dir()}; pass --weights or use --model bicubic"
            )
        return create_model("bicubic", scale=scale).eval(), {"model": model, "scale": scale, "weights": None,
                                                              "source": "clean", "meta": {}}
    ckpt = load_checkpoint(weights)
    module = model_from_checkpoint(ckpt, expect_model=model, expect_scale=scale)
    return module, {"model": model, "scale": scale, "weights": str(weights), "source": source,
                    "meta": ckpt.get("meta", {})}
