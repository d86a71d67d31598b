"""What a model folder hands to the shared runner: a :class:`ModelSpec`.

A spec holds only what differs between models (how to build the network, loss and training data
from a config, which task scores it, its variants and their default input sizes, its weight
layouts); every entry point (train, eval, export, infer_onnx, predict, preprocess, postprocess,
convert_weights) is the same code in :mod:`common.runner.commands` for every model.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable


def identity_deploy(net, cfg):
    return net


def replace_flags(args, values):
    """``args`` (a flat ``--flag value`` list) with each ``{flag: value}`` of ``values`` set:
    the value replaced where the flag is present, the pair appended where it is not."""
    args = list(args)
    for flag, value in values.items():
        if flag in args:
            args[args.index(flag) + 1] = str(value)
        else:
            args += [flag, str(value)]
    return args


@dataclass(frozen=True)
class QuickRecipe:
    """The CPU quick start of a model: a quick config, the synthetic data it trains on and the
    config keys that point at that data (``{key: path relative to the data folder}``)."""
    config: str
    synthetic: tuple            # arguments of ``python -m common.data.synthetic`` after --out
    data_keys: dict
    epochs: int
    predict_input: str          # folder (relative to the data folder) that predict.py reads
    tiny: tuple = ()            # overrides for a seconds-long smoke run (tests): small sizes
    tiny_synthetic: tuple = ()  # synthetic-data arguments for that run

    def synthetic_with(self, values):
        """``synthetic`` with some flags set (``{"--num": 200}``), see :func:`replace_flags`."""
        return replace_flags(self.synthetic, values)


@dataclass(frozen=True)
class ModelSpec:
    """A model folder's contract with the runner.

    ``variants`` maps each registry name to its default input size (H, W). ``build_net(cfg)``
    returns the network as trained (e.g. logits); ``deploy(net, cfg)`` wraps it into the graph that
    is evaluated, exported and deployed (e.g. only the fused map, as a probability).
    ``build_loss(cfg)`` and ``build_train_data(cfg, dist)`` feed the engine. ``hooks`` holds the
    task's per-model functions (for SOD ``preprocess(image, cfg)`` and ``postprocess``), documented
    by each task module. ``key_maps`` ({layout: key map}) and ``detect_layout(params)`` convert
    foreign checkpoints; ``read_weights`` ({suffix: reader(path) -> params}) adds file types.
    """
    folder: str
    task: str
    variants: dict
    defaults: dict
    build_net: Callable
    build_loss: Callable
    build_train_data: Callable
    deploy: Callable = identity_deploy
    paper_metric: str | None = None
    hooks: dict = field(default_factory=dict)
    key_maps: dict = field(default_factory=dict)
    detect_layout: Callable | None = None
    read_weights: dict = field(default_factory=dict)
    pretrained_key_map: Callable | None = None   # train.pretrained of another layout -> ours
    quick: QuickRecipe | None = None
    num_inputs: int = 1
    doc: str = ""

    def default_size(self, name):
        size = self.variants[name]
        return (size, size) if isinstance(size, int) else tuple(size)
