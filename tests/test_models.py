from __future__ import annotations

from pathlib import Path

import pytest
import torch

from vsr.models import create_model, list_models
from vsr.train.loop import STATE_FORMAT
from vsr.weights import (
    WeightsError,
    average_state_dicts,
    load_checkpoint,
    load_model,
    model_from_checkpoint,
    save_checkpoint,
)


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


def test_the_cli_model_list_is_the_registry():
    from vsr.config import MODELS
    from vsr.models import register_model

    assert sorted(MODELS) == list_models()
    with pytest.raises(ValueError, match="not declared"):
        register_model(lambda scale: None)


def test_unknown_model_and_scale():
    with pytest.raises(KeyError, match="unknown model"):
        create_model("nope", scale=2)
    with pytest.raises(ValueError, match="unsupported scale"):
        create_model("espcn", scale=5)


def test_checkpoint_round_trip_and_mismatch(tmp_path: Path):
    model = create_model("espcn", scale=3, activation="prelu")
    torch.nn.init.normal_(model.get_parameter("body.0.weight"))
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


def test_average_state_dicts():
    a = {"w": torch.tensor([1.0, 2.0]), "n": torch.tensor(3)}
    b = {"w": torch.tensor([3.0, 6.0]), "n": torch.tensor(5)}
    avg = average_state_dicts([a, b])
    torch.testing.assert_close(avg["w"], torch.tensor([2.0, 4.0]))
    assert avg["n"].item() == 5 and avg["w"].dtype == torch.float32  # counters from the last dict
    with pytest.raises(WeightsError, match="shape of 'w'"):
        average_state_dicts([a, {"w": torch.zeros(3), "n": torch.tensor(1)}])
    with pytest.raises(WeightsError, match="different tensors"):
        average_state_dicts([a, {"w": a["w"]}])


def test_average_weights_script(tmp_path: Path):
    """An export and a training state (its EMA weights) average into a loadable checkpoint."""
    import subprocess
    import sys

    nets = [create_model("espcn", scale=2) for _ in range(2)]
    for seed, net in enumerate(nets):
        torch.manual_seed(seed)
        for p in net.parameters():
            torch.nn.init.normal_(p)
    save_checkpoint(tmp_path / "final.pt", model="espcn", model_kwargs={}, scale=2,
                    state_dict=nets[1].state_dict(), meta={"iteration": 20})
    torch.save({"format": STATE_FORMAT, "iteration": 10, "model": nets[1].state_dict(), "ema": nets[0].state_dict()},
               tmp_path / "state10.pt")
    root = Path(__file__).resolve().parent.parent
    subprocess.run([sys.executable, str(root / "scripts" / "average_weights.py"), str(tmp_path / "avg.pt"),
                    str(tmp_path / "state10.pt"), str(tmp_path / "final.pt")], check=True, cwd=root)
    ckpt = load_checkpoint(tmp_path / "avg.pt")
    assert ckpt["meta"]["averaged_from"] == [{"file": "state10.pt", "iteration": 10},
                                              {"file": "final.pt", "iteration": 20}]
    for k, v in ckpt["state_dict"].items():
        torch.testing.assert_close(v, (nets[0].state_dict()[k] + nets[1].state_dict()[k]) / 2)


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


def test_progressive_edsr_starts_as_two_x2_passes(tmp_path: Path):
    """An x4 EDSR of two x2 stages, started from an x2 checkpoint with --init,
    computes the x2 net applied twice; its checkpoint round-trips by name."""
    from vsr.train.loop import _init_from

    kwargs = {"num_blocks": 2, "num_features": 8, "tail": "shuffle"}
    torch.manual_seed(0)
    x2 = create_model("edsr", scale=2, **kwargs).eval()
    for p in x2.parameters():  # the residual tail starts at zero; make every layer count
        torch.nn.init.normal_(p, std=0.1)
    x2_path = tmp_path / "edsr_x2.pt"
    save_checkpoint(x2_path, model="edsr", model_kwargs=kwargs, scale=2, state_dict=x2.state_dict(), meta={})
    x4 = create_model("edsr", scale=4, stages=2, **kwargs).eval()
    assert x4.scale == 4
    x = torch.rand(1, 1, 9, 7)
    with torch.no_grad():
        before = x4(x)
        _init_from(x4, x2_path)
        twice = x2(x2(x))
        assert not torch.allclose(before, twice)  # the comparison below is not vacuous
        torch.testing.assert_close(x4(x), twice)
        assert twice.shape == (1, 1, 36, 28)
    # Loaded by name and scale, like any shipped EDSR: the stages come from the checkpoint args.
    x4_path = tmp_path / "edsr_x4.pt"
    save_checkpoint(x4_path, model="edsr", model_kwargs={**kwargs, "stages": 2}, scale=4,
                    state_dict=x4.state_dict(), meta={})
    loaded, _ = load_model("edsr", 4, x4_path)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), twice)
    with pytest.raises(ValueError, match="not a power"):
        create_model("edsr", scale=3, stages=2)
