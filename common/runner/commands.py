"""The entry points of every model: ``main(command, spec)`` from a few-line models/<name>/<command>.py.

Each command binds the flags of :mod:`common.runner.args` to the engine, the task of the model
(:mod:`common.tasks`) and the export / ONNX / 310 helpers; nothing here knows a particular model.
"""
import sys
from pathlib import Path

from common.checkpoint import load_weights
from common.cli import run_main
from common.fold_bn import fold_batchnorm
from common.runner.args import export_size, parse
from common.runner.predictors import network_predictor, onnx_predictor
from common.tasks import get_task


def _setup(cfg):
    from common.engine.builder import setup_device

    setup_device(cfg.device, cfg.mode, cfg.get("device_id"))


def load_network(spec, cfg, ckpt):
    """The deployed network of ``cfg.model.name`` with ``ckpt`` loaded strictly, in eval mode,
    BatchNorm folded into the convolutions (eval, predict and export all run this one)."""
    net = spec.build_net(cfg)
    print(load_weights(net, ckpt, strict=True, key_map=None).summary())
    deployed = spec.deploy(net, cfg)
    print(fold_batchnorm(deployed).summary())
    deployed.set_train(False)
    return deployed


def train(spec, argv=None):
    from common.engine.builder import build_trainer, run_training, setup_run

    _, cfg = parse(spec, "train", argv)
    task = get_task(spec.task)
    dist = setup_run(cfg)
    net = spec.build_net(cfg)
    dataset = spec.build_train_data(cfg, dist)
    trainer = build_trainer(cfg, net, spec.build_loss(cfg), dataset.get_dataset_size(), dist,
                            task.training_evaluator(spec, cfg), num_inputs=spec.num_inputs,
                            model_name=cfg.model.name, pretrained_key_map=spec.pretrained_key_map)
    return run_training(trainer, dataset, cfg)


def evaluate(spec, argv=None):
    args, cfg = parse(spec, "eval", argv)
    _setup(cfg)
    net = load_network(spec, cfg, args.ckpt_file)
    return get_task(spec.task).evaluate(spec, cfg, network_predictor(net), "eval")


def export(spec, argv=None):
    from common.export import export_or_exit

    args, cfg = parse(spec, "export", argv)
    _setup(cfg)
    task = get_task(spec.task)
    fmt = args.file_format or cfg.export.format.upper()
    size = export_size(cfg, task.input_size(spec, cfg))
    net = load_network(spec, cfg, args.ckpt_file)
    x = task.example_input(spec, cfg, cfg.export.batch_size, size)
    default = Path(cfg.output_dir) / f"{cfg.model.name}_{size[0]}x{size[1]}"
    out = args.file_name or cfg.export.file or str(default)
    return export_or_exit(net, x, fmt, out, atol=cfg.export.atol)


def infer_onnx(spec, argv=None):
    from common.export import onnx_session

    args, cfg = parse(spec, "infer_onnx", argv)
    session = onnx_session(args.onnx_file, threads=args.threads)
    shape = session.get_inputs()[0].shape
    if all(isinstance(d, int) for d in shape[2:]):
        want = get_task(spec.task).input_size(spec, cfg)
        if tuple(shape[2:]) != tuple(want):
            print(f"warning: {args.onnx_file} takes {tuple(shape[2:])} inputs but the config's inference "
                  f"size is {tuple(want)}; scoring at the ONNX file's size", file=sys.stderr)
            cfg = get_task(spec.task).with_input_size(spec, cfg, tuple(shape[2:]))
    return get_task(spec.task).evaluate(spec, cfg, onnx_predictor(session), "onnx")


def predict(spec, argv=None):
    from common.tasks.base import list_input_images

    args, cfg = parse(spec, "predict", argv)
    _setup(cfg)
    files = list_input_images(args.input)
    net = load_network(spec, cfg, args.ckpt_file)
    written, skipped = get_task(spec.task).predict_files(spec, cfg, network_predictor(net), files,
                                                         args.output_dir, args)
    print(f"wrote outputs for {len(written)} of {len(files)} images to {args.output_dir}")
    if skipped:
        print(f"skipped {len(skipped)} unreadable images:", file=sys.stderr)
        for reason in skipped.values():
            print(f"  {reason}", file=sys.stderr)
        sys.exit(1)
    return written


def preprocess(spec, argv=None):
    args, cfg = parse(spec, "preprocess", argv)
    count = get_task(spec.task).write_inputs(spec, cfg, args.output_dir)
    print(f"{count} inputs written to {args.output_dir}")
    return count


def postprocess(spec, argv=None):
    from common.infer310 import read_outputs

    args, cfg = parse(spec, "postprocess", argv)
    return get_task(spec.task).score_outputs(spec, cfg, read_outputs(args.result_dir), args.data_dir, "310")


COMMANDS = {"train": train, "eval": evaluate, "export": export, "infer_onnx": infer_onnx, "predict": predict,
            "preprocess": preprocess, "postprocess": postprocess}


def main(command, spec, argv=None):
    """Run ``command`` for ``spec``'s model; known input errors become one line and exit 2."""
    if command == "convert_weights":
        from common.runner.convert import convert_main

        return sys.exit(convert_main(spec, argv))
    return run_main(lambda a: COMMANDS[command](spec, a), argv)
