"""Adversarial training, the data-weighted mixes and the dataset ranking: behaviour and refusals."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from conftest import gradient_rgb

from cli import main
from pipelines.ranking import RankConfig, rank_datasets, rank_weights
from vsr.config import TrainConfig
from vsr.data import FrameFolderDataset, IterationBatchSampler
from vsr.models import create_model
from vsr.models.discriminator import Discriminator
from vsr.train.gan import FeatureLoss, d_loss, g_adv_loss


def _folder(root: Path, name: str, n: int, seed: int) -> Path:
    import cv2

    folder = root / name
    folder.mkdir()
    for i in range(n):
        cv2.imwrite(str(folder / f"{i:02d}.png"), gradient_rgb(64, 72, seed + i)[:, :, ::-1])
    return folder


def test_discriminator_and_losses():
    d = Discriminator(1, 8)
    x = torch.rand(3, 1, 40, 48)
    assert d(x).shape == (3,)
    real, fake = torch.full((4,), 5.0), torch.full((4,), -5.0)
    assert d_loss(real, fake) < 0.02 < d_loss(fake, real)  # a right critic has a low loss
    assert g_adv_loss(fake) > g_adv_loss(real)
    feat = FeatureLoss(create_model("srresnet", scale=2, num_features=8, num_blocks=2))
    assert float(feat(x, x)) == 0.0 and float(feat(x, x.flip(-1))) > 0
    assert not any(p.requires_grad for p in feat.parameters())
    with pytest.raises(ValueError, match="head"):
        FeatureLoss(create_model("espcn", scale=2))


def test_data_weights_give_each_folder_its_share(tmp_path: Path):
    a, b = _folder(tmp_path, "a", 6, 0), _folder(tmp_path, "b", 2, 10)
    ds = FrameFolderDataset([a, b], scale=2, patch_size=16)
    w = ds.file_weights([0.5, 0.5])
    in_a = np.array([f.startswith(str(a) + "/") for f in ds.files])
    assert w[in_a].sum() == pytest.approx(0.5) and w[~in_a].sum() == pytest.approx(0.5)
    batch = next(iter(IterationBatchSampler(len(ds), 4000, seed=0, file_weights=ds.file_weights([0.0, 1.0]))))
    assert {f for f, _ in batch} == set(np.flatnonzero(~in_a))  # weight 0: never drawn
    assert rank_weights([2, 1, 3]) == pytest.approx([2 / 6, 3 / 6, 1 / 6])


def test_rank_datasets_end_to_end_and_resumes(tmp_path: Path):
    sets = (_folder(tmp_path, "flat", 3, 0), _folder(tmp_path, "busy", 3, 20))
    ev = _folder(tmp_path, "eval", 1, 40)
    recipe = TrainConfig(model="fast", scale=2, data=sets, out=tmp_path / "rank", iterations=4, batch_size=4,
                         patch_size=16, patches_per_image=2, threads=1)
    cfg = RankConfig(sets=sets, eval_sets=(ev,), out=tmp_path / "rank", train=recipe, mixes=("uniform", "ranked"))
    rows = rank_datasets(cfg)
    assert sorted(r.rank for r in rows if r.rank) == [1, 2]
    best = min((r for r in rows if r.rank), key=lambda r: r.rank or 0)
    assert best.mean_gain == max(r.mean_gain for r in rows if r.rank)
    ranked = next(r for r in rows if r.name == "mix-ranked")
    assert ranked.weights[best.name] == pytest.approx(2 / 3, abs=1e-4)
    with open(tmp_path / "rank" / "ranking.csv") as fh:
        table = list(csv.DictReader(fh))
    assert [t["train_set"] for t in table] == ["flat", "busy", "mix-uniform", "mix-ranked"]
    assert float(table[0]["gain_eval"]) == pytest.approx(rows[0].gains["eval"], abs=1e-4)
    stamp = (tmp_path / "rank" / "runs" / "flat" / "final.pt").stat().st_mtime_ns
    again = rank_datasets(cfg)  # finished runs are scored, not trained again
    assert (tmp_path / "rank" / "runs" / "flat" / "final.pt").stat().st_mtime_ns == stamp
    assert [r.gains for r in again] == [r.gains for r in rows]


@pytest.mark.parametrize(("args", "words"), [
    (["train", "--model", "srgan", "--scale", "2", "--gan", "--out", "{tmp}/o", "--data", "{data}"],
     "--gan needs generator weights"),
    (["train", "--model", "fast", "--scale", "2", "--out", "{tmp}/o", "--data", "{empty}"], "no images found"),
    (["train", "--model", "fast", "--scale", "2", "--out", "{tmp}/o", "--data", "{data}", "--data-weight", "1",
      "--data-weight", "2"], "2 data weights for 1 data folders"),
    (["rank-datasets", "{data}", "{empty}", "--eval", "{data}", "--out", "{tmp}/r"], "no images in"),
    (["rank-datasets", "{data}", "{data2}", "--eval", "{data}", "--out", "{tmp}/r"], "also a training set"),
])
def test_bad_training_input(tmp_path: Path, args: list[str], words: str):
    data, data2 = _folder(tmp_path, "d", 2, 0), _folder(tmp_path, "d2", 2, 5)
    (tmp_path / "empty").mkdir()
    fill = {"tmp": str(tmp_path), "data": str(data), "data2": str(data2), "empty": str(tmp_path / "empty")}
    res = CliRunner().invoke(main, [a.format(**fill) for a in args])
    assert res.exit_code != 0 and words in res.output, res.output
    assert res.exception is None or isinstance(res.exception, SystemExit)
    assert "Traceback" not in res.output
