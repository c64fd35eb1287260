from __future__ import annotations

from pathlib import Path

import pytest
import torch

from vsr.models import create_model, list_models
from vsr.weights import WeightsError, load_checkpoint, load_model, model_from_checkpoint, save_checkpoint


@pytest.mark.parametrize("name", list_models())
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_every_model_upscales(name: str, scale: int):
    kwargs = {"num_blocks": 2, "num_features": 16} if name in ("edsr", "srresnet", "srgan") else {}
    model = create_model(name, scale=scale, **kwargs).eval()
    with torch.no_grad():
        out = model(torch.rand(2, 1, 16, 12))
    assert out.shape == (2, 1, 16 * scale, 12 * scale)
    assert torch.isfinite(out).all()
    assert model.scale == scale


def test_residual_models_start_as_bicubic():
    x = torch.rand(1, 1, 10, 10)
    bic = create_model("bicubic", scale=2)(x)
    for name, kwargs in (("espcn", {}), ("espcn", {"mid_layers": 3}), ("edsr", {}), ("edsr", {"tail": "shuffle"})):
        torch.testing.assert_close(create_model(name, scale=2, num_features=8, **kwargs)(x), bic)
    with pytest.raises(ValueError, match="tail"):
        create_model("edsr", scale=2, tail="deconv")


def test_unknown_model_and_scale():
    with pytest.raises(KeyError, match="unknown model"):
        create_model("nope", scale=2)
    with pytest.raises(ValueError, match="unsupported scale"):
        create_model("espcn", scale=5)


def test_checkpoint_round_trip_and_mismatch(tmp_path: Path):
    model = create_model("espcn", scale=3, activation="prelu")
    torch.nn.init.normal_(model.body[0].weight)
    path = tmp_path / "espcn_x3.pt"
    save_checkpoint(path, model="espcn", model_kwargs={"activation": "prelu"}, scale=3,
                    state_dict=model.state_dict(), meta={"note": "test"})
    assert not path.with_name(path.name + ".part").exists()
    ckpt = load_checkpoint(path)
    assert ckpt["color"] == {"y": "bt601-studio"} and ckpt["meta"]["note"] == "test"
    loaded = model_from_checkpoint(ckpt)
    x = torch.rand(1, 1, 8, 8)
    torch.testing.assert_close(loaded(x), model.eval()(x))
    with pytest.raises(WeightsError, match="scale x3, not x2"):
        load_model("espcn", 2, path)
    with pytest.raises(WeightsError, match="holds model 'espcn', not 'edsr'"):
        load_model("edsr", 3, path)


def test_bad_weight_files(tmp_path: Path):
    with pytest.raises(WeightsError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match="cannot read"):
        load_checkpoint(junk)
    torch.save({"state_dict": {}}, tmp_path / "other.pt")
    with pytest.raises(WeightsError, match="not a vsr checkpoint"):
        load_checkpoint(tmp_path / "other.pt")


def test_bicubic_needs_no_weights(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv("VSR_WEIGHTS_DIR", str(tmp_path))
    model, info = load_model("bicubic", 4)
    assert info["weights"] is None and model.scale == 4
    with pytest.raises(WeightsError, match="no weights for espcn x2"):
        load_model("espcn", 2)
