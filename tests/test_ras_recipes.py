"""RAS recipes and data: the seed's schedules as configs (the distributed decay really happens),
ImageNet normalisation applied exactly once (twice only behind the old-port flag)."""
import numpy as np
import pytest

from common.config import load_config
from common.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from common.engine.builder import lr_schedule_from_config
from common.paths import REPO_ROOT
from models import get_spec
from models.ras.src.data import preprocess, train_transform

SPEC = get_spec("ras")
CONFIGS = REPO_ROOT / "configs" / "ras"


def _cfg(name, *overrides):
    return load_config(SPEC.defaults, CONFIGS / name, overrides)


def test_seed_recipe_decays_at_27_of_35():
    cfg = _cfg("ras_1xb10_duts-tr_35e.yaml")
    assert (cfg.optim.name, cfg.train.batch_size, cfg.data.size, cfg.train.epochs) == ("adam", 10, 352, 35)
    lr = lr_schedule_from_config(cfg, steps_per_epoch=100, world_size=1)
    assert len(lr) == 3500
    assert lr[2699] == pytest.approx(5e-5) and lr[2700] == pytest.approx(5e-6)


def test_distributed_recipe_decays_at_70_on_every_rank():
    cfg = _cfg("ras_8xb10_duts-tr_80e.yaml")
    lr = lr_schedule_from_config(cfg, steps_per_epoch=132, world_size=8)  # DUTS-TR 10553 / 80
    assert len(lr) == 80 * 132
    assert lr[70 * 132 - 1] == pytest.approx(2e-4) and lr[70 * 132] == pytest.approx(2e-5)
    assert lr[-1] == pytest.approx(2e-5)


def _constant_image(value=(200, 100, 50), size=(20, 24)):
    return np.broadcast_to(np.asarray(value, np.uint8), (*size, 3)).copy()


@pytest.mark.parametrize("double", [False, True])
def test_imagenet_normalisation_applied_once_unless_old_port_flag(double):
    image = _constant_image()
    once = (np.array([200, 100, 50]) / 255.0 - IMAGENET_MEAN) / IMAGENET_STD
    want = (once - IMAGENET_MEAN) / IMAGENET_STD if double else once
    x = preprocess(image, (16, 16), double_normalise=double)
    assert x.shape == (1, 3, 16, 16)
    np.testing.assert_allclose(x[0, :, 5, 5], want, rtol=1e-5)
    sample = train_transform(16, hflip=False, rotate=0.0, double_normalise=double)(
        {"image": image, "mask": np.full((20, 24), 255, np.uint8)}, np.random.default_rng(0))
    np.testing.assert_allclose(sample["image"][:, 5, 5], want, rtol=1e-5)
    assert sample["mask"].shape == (1, 16, 16) and sample["mask"].max() == 1.0


def test_rotation_fills_masks_with_background_and_flag_defaults_off():
    assert _cfg("ras_1xb8_synthetic_quick-cpu.yaml").data.oldport_double_normalise is False
    image, mask = _constant_image(size=(32, 32)), np.full((32, 32), 255, np.uint8)
    rotated = train_transform(32, hflip=False, rotate=(10.0, 10.0))({"image": image, "mask": mask},
                                                                   np.random.default_rng(0))
    corner = rotated["mask"][0, 0, 0]
    assert corner == 0.0 and rotated["mask"][0, 16, 16] == 1.0
