"""The shared runner: every entry point of every registered model on tiny synthetic data, the
common flags, device resolution, and one image reader for scoring and predict."""
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from common.checkpoint import save_checkpoint
from common.config import load_config
from common.infer310 import read_manifest, run_onnx_like_app
from common.paths import REPO_ROOT
from common.runner.args import build_parser, parse
from common.runner.commands import main
from models import create_model, get_spec, list_models, model_info
from tests.tiny_runs import METRIC_KEYS, every_model
from tests.tiny_runs import metrics as _metrics
from tests.tiny_runs import run as _run
from tests.tiny_runs import tiny as _tiny

ENTRY_POINTS = ("train", "eval", "export", "infer_onnx", "predict", "preprocess", "postprocess",
                "convert_weights")


def test_every_model_folder_has_every_entry_point_as_a_shim():
    for folder in sorted({model_info(n)["folder"] for n in list_models()}):
        for command in ENTRY_POINTS:
            path = REPO_ROOT / "models" / folder / f"{command}.py"
            code = path.read_text()
            assert f'main("{command}", SPEC)' in code, path
            assert len([line for line in code.splitlines() if line.strip()]) <= 12, f"{path} is not a shim"


def test_registry_metadata_is_complete():
    for name in list_models():
        info = model_info(name)
        assert info["task"] in METRIC_KEYS
        assert len(info["input_size"]) == 2 and min(info["input_size"]) >= 32
        spec = get_spec(name)
        assert spec.quick is not None and spec.quick.tiny_synthetic, name
        # quickstart.py trains quick.epochs: at most the quick config's (RefineDet's: 2 of 4)
        assert spec.quick.epochs <= load_config(spec.defaults, REPO_ROOT / spec.quick.config).train.epochs, name


def test_flags_of_the_old_ports_parse():
    spec = get_spec("u2netp")
    args, cfg = parse(spec, "export", ["--ckpt_file", "w.ckpt", "--file_format", "mindir",
                                       "--file_name", "out/x", "--device_target", "CPU", "--device_id", "0"])
    assert (args.ckpt_file, args.file_format, args.file_name) == ("w.ckpt", "MINDIR", "out/x")
    assert cfg.device == "CPU" and cfg.device_id == 0
    args, _ = parse(spec, "eval", ["--ckpt", "a.ckpt"])  # short alias
    assert args.ckpt_file == "a.ckpt"


def test_config_device_is_kept_unless_a_flag_says_otherwise():
    spec = get_spec("ddrnet23")
    cfg_file = "configs/ddrnet/ddrnet23_8xb128_imagenet_300e_ascend.yaml"
    assert load_config(spec.defaults, REPO_ROOT / cfg_file).device == "Ascend"
    _, cfg = parse(spec, "train", ["--config", str(REPO_ROOT / cfg_file)])
    assert cfg.device == "Ascend"
    _, cfg = parse(spec, "train", ["--config", str(REPO_ROOT / cfg_file), "--device_target", "GPU"])
    assert cfg.device == "GPU"


@pytest.mark.parametrize("name", every_model())
def test_data_path_flag_round_trips_through_the_config(name, tmp_path):
    """preprocess.py's ``--data_path P`` sets the scored split to P, and task.data_path(cfg) reads
    P back (the 310 tests derive the flag from a config with it)."""
    from common.tasks import get_task

    spec = get_spec(name)
    task = get_task(spec.task)
    split = tmp_path / "sets" / "held_out"
    argv = [f"model.name={name}", "--data_path", str(split), "--output_dir", str(tmp_path / "bins")]
    _, cfg = parse(spec, "preprocess", argv)
    assert task.data_path(cfg) == split
    assert task.data_path(load_config(spec.defaults)) != split


def test_only_train_takes_resume():
    for command in ("eval", "export", "infer_onnx", "predict", "preprocess", "postprocess"):
        assert "--resume" not in build_parser(command, "").format_help(), command
    assert "--resume" in build_parser("train", "").format_help()


def _cli(script, *args):
    return subprocess.run([sys.executable, str(REPO_ROOT / script), *map(str, args)], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=300, check=False)


def test_model_name_typo_is_one_line_error_and_unknown_flags_name_the_key():
    proc = _cli("models/u2net/eval.py", "--ckpt_file", "x.ckpt", "model.name=u2netpp")
    assert proc.returncode == 2
    assert "model.name 'u2netpp' is not a variant of models/u2net" in proc.stderr
    assert "did you mean u2netp" in proc.stderr and "Traceback" not in proc.stderr
    proc = _cli("models/ddrnet/export.py", "--ckpt_file", "x.ckpt", "--fil_format", "ONNX")
    assert proc.returncode == 2 and "unknown config key 'fil_format'" in proc.stderr


# ---------------------------------------------------------------- every entry point, every model

@pytest.mark.slow
@pytest.mark.own_process
@pytest.mark.parametrize("name", every_model())
def test_every_entry_point_runs_on_tiny_data(name, tmp_path):
    spec, data, cfg = _tiny(name, tmp_path)
    run = tmp_path / "run"
    _run("train", spec, cfg)
    ckpt = run / "checkpoints" / "last.ckpt"
    assert ckpt.is_file() and (run / "train_log.jsonl").is_file() and (run / "config.yaml").is_file()

    _run("eval", spec, [*cfg, "--ckpt_file", ckpt])
    ms_result = _metrics(run / "eval_results.json", spec.task)

    onnx = tmp_path / "model.onnx"
    _run("export", spec, [*cfg, "--ckpt_file", ckpt, "--file_format", "ONNX", "--file_name", onnx])
    assert onnx.is_file()
    mindir = tmp_path / "model.mindir"  # the old ports' form; export_model reloads it and checks parity
    _run("export", spec, [*cfg, "--ckpt_file", ckpt, "--file_format", "MINDIR", "--file_name", mindir])
    assert mindir.is_file()
    _run("infer_onnx", spec, [*cfg, "--onnx_file", onnx])
    onnx_result = _metrics(run / "eval_results_onnx.json", spec.task)

    pred = tmp_path / "pred"
    _run("predict", spec, [*cfg, "--ckpt_file", ckpt, "--input", data / spec.quick.predict_input,
                           "--output_dir", pred])
    pictures = [p for p in pred.rglob("*") if p.suffix in (".png", ".jpg")]
    assert pictures, "predict wrote no pictures"

    inputs, results = tmp_path / "app_in", tmp_path / "app_out"
    _run("preprocess", spec, [*cfg, "--output_dir", inputs])
    assert read_manifest(inputs)
    run_onnx_like_app(onnx, inputs, results)
    _run("postprocess", spec, [*cfg, "--data_dir", inputs, "--result_dir", results])
    app_result = _metrics(run / "eval_results_310.json", spec.task)
    for key in METRIC_KEYS[spec.task]:
        if isinstance(ms_result[key], float):
            assert onnx_result[key] == pytest.approx(ms_result[key], abs=2e-3), key
            assert app_result[key] == pytest.approx(ms_result[key], abs=2e-3), key

    converted = tmp_path / "converted.ckpt"
    with pytest.raises(SystemExit) as exit_info:
        main("convert_weights", spec, ["--src", str(ckpt), "--variant", name, "--out", str(converted),
                                       *[o for o in spec.quick.tiny if o.startswith("model.")]])
    assert exit_info.value.code == 0 and converted.is_file()


# ---------------------------------------------------------------- one image reader

def test_eval_and_predict_read_grey_rgba_and_jpeg_identically(tmp_path):
    spec = get_spec("u2netp")
    rng = np.random.default_rng(0)
    root = tmp_path / "set"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    rgb = rng.integers(0, 256, (36, 44, 3), dtype=np.uint8)
    Image.fromarray(rgb[..., 0]).save(root / "images/grey.png")
    alpha = rng.integers(0, 256, (36, 44), dtype=np.uint8)
    Image.fromarray(np.dstack([rgb, alpha])).save(root / "images/rgba.png")
    Image.fromarray(rgb).save(root / "images/photo.jpg", quality=80)
    for stem in ("grey", "rgba", "photo"):
        mask = ((rng.random((36, 44)) > 0.5) * 255).astype(np.uint8)
        Image.fromarray(mask).save(root / f"masks/{stem}.png")
    ckpt = tmp_path / "w.ckpt"
    save_checkpoint(create_model("u2netp"), ckpt)
    cfg = [f"output_dir={tmp_path / 'run'}", f"test.root={root}", "test.size=32", "mode=pynative"]
    _run("eval", spec, [*cfg, "--ckpt_file", ckpt])
    _run("predict", spec, [*cfg, "--ckpt_file", ckpt, "--input", root / "images",
                           "--output_dir", tmp_path / "p"])
    for stem in ("grey", "rgba", "photo"):
        scored = np.asarray(Image.open(tmp_path / "run/pred" / f"{stem}.png"))
        predicted = np.asarray(Image.open(tmp_path / "p" / f"{stem}.png"))
        assert scored.shape == (36, 44)
        np.testing.assert_array_equal(scored, predicted, err_msg=stem)


def test_predict_keeps_relative_paths_skips_corrupt_images_and_exits_non_zero(tmp_path):
    spec = get_spec("u2netp")
    src = tmp_path / "in"
    for sub in ("a", "b"):
        (src / sub).mkdir(parents=True)
        Image.fromarray(np.full((20, 24, 3), 90 if sub == "a" else 200, np.uint8)).save(src / sub / "img.jpg")
    (src / "a" / "broken.png").write_bytes(b"\x89PNG not really")
    ckpt = tmp_path / "w.ckpt"
    save_checkpoint(create_model("u2netp"), ckpt)
    with pytest.raises(SystemExit) as exit_info:
        main("predict", spec, ["--ckpt_file", str(ckpt), "--input", str(src),
                               "--output_dir", str(tmp_path / "o"),
                               "test.size=32", "mode=pynative"])
    assert exit_info.value.code == 1
    a, b = tmp_path / "o/a/img.png", tmp_path / "o/b/img.png"
    assert a.is_file() and b.is_file()
    assert not (tmp_path / "o/a/broken.png").exists()
    assert not np.array_equal(np.asarray(Image.open(a.with_name("img_compare.png"))),
                              np.asarray(Image.open(b.with_name("img_compare.png"))))


def test_eval_with_a_corrupt_image_leaves_no_partial_prediction_folder(tmp_path):
    spec = get_spec("u2netp")
    root = tmp_path / "set"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for i in range(3):
        Image.fromarray(np.full((16, 16, 3), 40 * i, np.uint8)).save(root / f"images/{i}.png")
        Image.fromarray(np.zeros((16, 16), np.uint8)).save(root / f"masks/{i}.png")
    (root / "images/2.png").write_bytes(b"garbage")
    ckpt = tmp_path / "w.ckpt"
    save_checkpoint(create_model("u2netp"), ckpt)
    with pytest.raises(SystemExit) as exit_info:
        main("eval", spec, ["--ckpt_file", str(ckpt), f"test.root={root}", "test.size=32", "mode=pynative",
                            f"output_dir={tmp_path / 'run'}"])
    assert exit_info.value.code == 2
    assert not (tmp_path / "run/pred").exists()
    assert not any(p.name.startswith(".pred") for p in (tmp_path / "run").iterdir())


def test_export_into_an_unwritable_folder_names_the_folder_and_the_cause(tmp_path, capsys):
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("a file where the output folder should be")
    ckpt = tmp_path / "w.ckpt"
    save_checkpoint(create_model("u2netp"), ckpt)
    with pytest.raises(SystemExit) as exit_info:
        main("export", get_spec("u2netp"), ["--ckpt_file", str(ckpt), "--file_format", "ONNX", "test.size=32",
                                            "--file_name", str(blocker / "sub" / "model.onnx")])
    assert exit_info.value.code not in (0, None)
    message = str(exit_info.value.code) + capsys.readouterr().err
    assert f"cannot write the export into folder {blocker / 'sub'}" in message
    assert "Not a directory" in message


def test_export_permission_denied_names_the_folder(tmp_path, capsys, monkeypatch):
    # root ignores chmod here, so the refusal is the OS error a user without rights would get
    real_open = open

    def refusing_open(file, *args, **kwargs):
        if str(file).startswith(str(tmp_path / "locked")):
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr("builtins.open", refusing_open)
    ckpt = tmp_path / "w.ckpt"
    save_checkpoint(create_model("u2netp"), ckpt)
    (tmp_path / "locked").mkdir()
    with pytest.raises(SystemExit) as exit_info:
        main("export", get_spec("u2netp"), ["--ckpt_file", str(ckpt), "--file_format", "ONNX", "test.size=32",
                                            "--file_name", str(tmp_path / "locked" / "model.onnx")])
    message = str(exit_info.value.code) + capsys.readouterr().err
    assert f"cannot write the export into folder {tmp_path / 'locked'}: Permission denied" in message
    assert list((tmp_path / "locked").iterdir()) == []


def test_predict_exits_2_naming_the_folder_it_cannot_write(tmp_path, capsys):
    Image.fromarray(np.full((20, 24, 3), 90, np.uint8)).save(tmp_path / "img.jpg")
    blocker = tmp_path / "out_is_a_file"
    blocker.write_text("x")
    ckpt = tmp_path / "w.ckpt"
    save_checkpoint(create_model("u2netp"), ckpt)
    with pytest.raises(SystemExit) as exit_info:
        main("predict", get_spec("u2netp"), ["--ckpt_file", str(ckpt), "--input", str(tmp_path / "img.jpg"),
                                             "--output_dir", str(blocker / "sub"), "test.size=32",
                                             "mode=pynative"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert f"cannot create output folder {blocker / 'sub'}" in err
    assert "wrote outputs" not in err


def test_write_image_failure_names_the_file_and_leaves_nothing(tmp_path, monkeypatch):
    from common.tasks import base

    def refuse(src, dst):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(base.os, "replace", refuse)
    with pytest.raises(base.OutputWriteError, match=r"cannot write .*a\.png: Permission denied"):
        base.write_image(tmp_path / "a.png", np.zeros((4, 4, 3), np.uint8))
    assert list(tmp_path.iterdir()) == []


def test_predict_help_states_the_skip_and_exit_rules(capsys):
    with pytest.raises(SystemExit):
        main("predict", get_spec("u2netp"), ["--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "corrupt image is skipped with a warning" in out and "exit status is 1" in out


def test_infer_onnx_scores_at_the_onnx_files_size(tmp_path, capsys):
    spec = get_spec("u2netp")
    root = tmp_path / "set"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    Image.fromarray(np.full((20, 30, 3), 120, np.uint8)).save(root / "images/a.png")
    Image.fromarray(np.zeros((20, 30), np.uint8)).save(root / "masks/a.png")
    ckpt, onnx = tmp_path / "w.ckpt", tmp_path / "m.onnx"
    save_checkpoint(create_model("u2netp"), ckpt)
    cfg = [f"output_dir={tmp_path / 'run'}", f"test.root={root}", "mode=pynative"]
    _run("export", spec, [*cfg, "--ckpt_file", ckpt, "--file_name", onnx, "export.size=32"])
    _run("infer_onnx", spec, [*cfg, "--onnx_file", onnx, "test.size=48"])
    assert "takes (32, 32) inputs but the config's inference size is (48, 48)" in capsys.readouterr().err
    assert _metrics(tmp_path / "run/eval_results_onnx.json", "sod")["num_images"] == 1


@pytest.mark.parametrize("name", every_model())
def test_data_verify_setting_reaches_the_training_pipeline(name, tmp_path, monkeypatch):
    """``data.verify=true`` pre-scans the training files, ``false`` skips the scan even for a set
    small enough to be scanned by default."""
    from common.data import loader
    from common.engine.distributed import DistInfo

    spec, _, argv = _tiny(name, tmp_path)
    scanned = []
    monkeypatch.setattr(loader, "verify_source", lambda source, progress=True: scanned.append(len(source)))
    for verify in ("false", "true"):
        cfg = load_config(spec.defaults, argv[1], [*argv[2:], f"data.verify={verify}"])
        spec.build_train_data(cfg, DistInfo())
    assert len(scanned) == 1 and scanned[0] > 0
