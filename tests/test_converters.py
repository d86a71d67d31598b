"""convert_weights.py of every model through the shared converter: the old ports' training
checkpoints (wrapper prefixes plus optimizer / training state) convert, foreign files fail clearly."""
import numpy as np
import pytest

from common.checkpoint import named_parameters, read_checkpoint, save_checkpoint
from common.runner.commands import main
from models import create_model, get_spec

OLD_PORT_STATE = {"momentum": np.array(0.9, np.float32), "learning_rate": np.array(0.01, np.float32),
                  "global_step": np.array([5004], np.int32), "scale_sense": np.array(1024.0, np.float32)}


def _convert(name, src, out, *extra):
    with pytest.raises(SystemExit) as exc:
        main("convert_weights", get_spec(name),
             ["--src", str(src), "--variant", name, "--out", str(out), *extra])
    return exc.value.code


def _old_port_checkpoint(net, prefix, optimizer_prefixes, drop=()):
    rng = np.random.default_rng(0)
    params = {}
    for name, p in named_parameters(net).items():
        if name in drop:
            continue
        value = rng.standard_normal(p.shape).astype(np.float32)
        params[prefix + name] = value
        for opt in optimizer_prefixes:
            params[f"{opt}{prefix}{name}"] = np.zeros_like(value)
    params.update(OLD_PORT_STATE)
    return params


def test_u2net_converter_accepts_the_old_ports_ckpt(tmp_path):
    net = create_model("u2netp")
    params = _old_port_checkpoint(net, "network.", ("moment1.", "moment2."))
    src = tmp_path / "u2netp_oldport.ckpt"
    save_checkpoint(params, src)
    assert _convert("u2netp", src, tmp_path / "out.ckpt") == 0
    got = read_checkpoint(tmp_path / "out.ckpt")
    np.testing.assert_array_equal(got["stage1.rebnconvin.conv_s1.weight"],
                                  params["network.stage1.rebnconvin.conv_s1.weight"])


def test_ddrnet_converter_ignores_the_old_ports_training_state(tmp_path):
    net = create_model("ddrnet23_slim")
    stem = ("conv1.0.bias", "conv1.3.bias")  # the old port's stem convs have no bias
    params = _old_port_checkpoint(net, "model.", ("moments.", "accum."), drop=stem)
    src = tmp_path / "ddrnet_oldport.ckpt"
    save_checkpoint(params, src)
    assert _convert("ddrnet23_slim", src, tmp_path / "out.ckpt") == 0
    got = read_checkpoint(tmp_path / "out.ckpt")
    np.testing.assert_array_equal(got["linear.weight"], params["model.linear.weight"])
    np.testing.assert_array_equal(got["conv1.0.bias"], np.zeros(got["conv1.0.bias"].shape, np.float32))
    assert "momentum" not in got


def test_wrong_variant_names_the_keys_and_the_variant_that_fits(tmp_path, capsys):
    src = tmp_path / "u2netp.ckpt"
    save_checkpoint(create_model("u2netp"), src)
    assert _convert("u2net", src, tmp_path / "out.ckpt") == 1
    err = capsys.readouterr().err
    assert "shape mismatch" in err and "it fits: u2netp" in err
    assert not (tmp_path / "out.ckpt").exists()


def test_unknown_suffix_is_refused(tmp_path, capsys):
    src = tmp_path / "weights.bin"
    src.write_bytes(b"x")
    assert _convert("ras", src, tmp_path / "out.ckpt") == 1
    assert "unknown weight file suffix '.bin'" in capsys.readouterr().err
