import pytest

from common.config import ConfigError, Opt, load_config, save_config, with_engine_defaults

DEFAULTS = with_engine_defaults({"model": {"name": "u2netp", "size": 320}, "data": {"root": Opt(str)}})


def test_yaml_and_overrides_apply_in_order(tmp_path):
    base = tmp_path / "base.yaml"
    base.write_text("optim:\n  lr: 0.01\ntrain:\n  epochs: 3\n")
    child = tmp_path / "child.yaml"
    child.write_text("base: base.yaml\ntrain:\n  epochs: 7\nmodel:\n  size: 288\n")
    cfg = load_config(DEFAULTS, child, ["train.epochs=9", "--optim.weight_decay", "1e-4",
                                        "--data.root=/x"])
    assert cfg.optim.lr == 0.01          # from the base file
    assert cfg.model.size == 288         # from the child file
    assert cfg.train.epochs == 9         # command line wins
    assert cfg.optim.weight_decay == pytest.approx(1e-4)  # "1e-4" is a str in YAML 1.1
    assert cfg.data.root == "/x"
    assert cfg.train.resume is None      # Opt default materialises as None
    assert cfg.optim.betas == [0.9, 0.999]


def test_unknown_key_names_it_and_suggests(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text("optim:\n  lrr: 0.1\n")
    with pytest.raises(ConfigError) as err:
        load_config(DEFAULTS, f)
    msg = str(err.value)
    assert "optim.lrr" in msg and "optim.lr" in msg and str(f) in msg


@pytest.mark.parametrize("override, key", [
    ("train.epochs=abc", "train.epochs"),
    ("train.epochs=1.5", "train.epochs"),
    ("optim.no_decay_bn_bias=3", "optim.no_decay_bn_bias"),
    ("model.name=[1,2]", "model.name"),
    ("optim=3", "optim"),
])
def test_type_errors_name_the_key(override, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_config(DEFAULTS, None, [override])


def test_int_accepted_for_float_and_bad_yaml(tmp_path):
    assert load_config(DEFAULTS, None, ["optim.lr=1"]).optim.lr == 1.0
    f = tmp_path / "broken.yaml"
    f.write_text("optim: [unclosed\n")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_config(DEFAULTS, f)
    with pytest.raises(ConfigError, match="not found"):
        load_config(DEFAULTS, tmp_path / "missing.yaml")


def test_cli_exits_with_message(capsys):
    from common.runner.args import parse
    from models import get_spec

    with pytest.raises(SystemExit) as exc:
        parse(get_spec("u2netp"), "train", ["train.epoch=3"])
    assert exc.value.code == 2
    assert "train.epochs" in capsys.readouterr().err


def test_saved_config_round_trips(tmp_path):
    cfg = load_config(DEFAULTS, None, ["train.epochs=4"])
    path = save_config(cfg, tmp_path / "run" / "config.yaml")
    again = load_config(DEFAULTS, path)
    assert again == cfg


def test_shipped_configs_are_valid():
    """Every YAML under configs/ loads against its model's defaults."""
    from common.paths import configs_dir
    from common.runner.args import check_variant
    from models import get_spec

    files = sorted(configs_dir().rglob("*.yaml"))
    assert len(files) >= 12
    for f in files:
        spec = get_spec(f.relative_to(configs_dir()).parts[0])
        check_variant(spec, load_config(spec.defaults, f))


def test_resume_flag_sets_train_resume():
    from common.runner.args import parse
    from models import get_spec

    _, cfg = parse(get_spec("u2netp"), "train", ["--resume", "runs/x/last.ckpt", "train.epochs=2"])
    assert cfg.train.resume == "runs/x/last.ckpt" and cfg.train.epochs == 2
