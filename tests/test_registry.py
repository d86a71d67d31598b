"""The registry, and one forward + backward test for every registered model."""
import mindspore as ms
import numpy as np
import pytest
from mindspore import Tensor, ops

import models
from common.checkpoint import named_parameters
from models import create_model, list_models, register_model

ms.set_device("CPU")

# Parameters whose gradient is exactly zero by construction: a conv bias followed by BatchNorm in
# training mode (the batch mean removes it). The authors' DDRNet stem has such biases.
ZERO_GRAD_BY_DESIGN = {"ddrnet": {"conv1.0.bias", "conv1.3.bias"}}


def test_unknown_name_lists_known_models_and_suggests():
    with pytest.raises(KeyError) as err:
        create_model("u2nett")
    msg = str(err.value)
    assert "u2net" in msg and "ddrnet23" in msg and "Did you mean" in msg


def test_duplicate_registration_is_refused():
    list_models()
    with pytest.raises(ValueError, match="already registered"):
        @register_model
        def u2netp():
            return None


def test_none_kwargs_fall_back_to_model_defaults():
    net = create_model("ddrnet23_slim", num_classes=None, drop_path_rate=None)
    assert named_parameters(net)["linear.weight"].shape == (1000, 1024)  # authors: slim head 1024


def test_torch_key_map_lookup_names_unknown_models():
    with pytest.raises(KeyError, match="unknown model"):
        models.torch_key_map("nosuchnet")


@pytest.mark.parametrize("name", list_models())
def test_forward_backward_gives_every_parameter_a_gradient(name, pynative):
    net = create_model(name)
    net.set_train(True)
    x = Tensor(np.random.default_rng(0).standard_normal((2, 3, 64, 64)).astype(np.float32))

    def loss_fn(inp):
        out = net(inp)
        outs = out if isinstance(out, (tuple, list)) else (out,)
        return sum(ops.mean(o * o) for o in outs)

    params = net.trainable_params()
    loss, grads = ms.value_and_grad(loss_fn, None, params)(x)
    assert np.isfinite(float(loss.asnumpy()))
    names = {id(p): n for n, p in named_parameters(net).items()}
    exempt = next((v for k, v in ZERO_GRAD_BY_DESIGN.items() if name.startswith(k)), set())
    dead = []
    for p, g in zip(params, grads):
        g = g.asnumpy()
        assert np.isfinite(g).all(), names[id(p)]
        if not np.any(g) and names[id(p)] not in exempt:
            dead.append(names[id(p)])
    assert not dead, f"{name}: parameters without gradient: {dead[:10]}"
