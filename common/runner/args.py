"""Command-line flags of every entry point, the same for every model, and the config they give.

Flags follow the old MindSpore ports (``--ckpt_file``, ``--file_format``, ``--file_name``,
``--device_target``, ``--device_id``) with short aliases; anything else on the command line is a
``key=value`` config override. The device is the config's ``device`` unless ``--device_target``
(or a launcher passing it) says otherwise.
"""
import argparse
import difflib
import os

from common.config import ConfigError, Opt, load_config, merge_sections, with_engine_defaults

DEVICES = ("CPU", "GPU", "Ascend")

# Sections every model's config has beside the engine's (ENGINE_DEFAULTS).
RUNNER_DEFAULTS = {
    "device_id": Opt(int),           # card on GPU / Ascend (default: 0, or what msrun negotiates)
    "export": {
        "format": "ONNX",            # ONNX | MINDIR | AIR (AIR needs Ascend)
        "file": Opt(str),            # default <output_dir>/<model>_<H>x<W>.<ext>
        "batch_size": 1,
        "size": None,                # S or [H, W]; default: the inference size of the task
        "atol": 1e-4,                # parity check: atol + 1e-6 x max|output|
    },
}


def model_defaults(task_name, model_sections):
    """The full typed defaults of a model: engine <- runner <- task <- the model's own sections."""
    from common.tasks import get_task

    return with_engine_defaults(merge_sections(RUNNER_DEFAULTS, get_task(task_name).defaults, model_sections))


_CKPT = (("--ckpt_file", "--ckpt"), {"dest": "ckpt_file", "required": True, "metavar": "CKPT",
                                     "help": "checkpoint (.ckpt / .safetensors), loaded strictly"})
FLAGS = {
    "resume": [(("--resume",), {"metavar": "CKPT",
                                "help": "continue from a resumable checkpoint (= train.resume=CKPT)"})],
    "ckpt": [_CKPT],
    "export": [(("--file_format", "--format"), {"dest": "file_format", "type": str.upper,
                                                "choices": ("MINDIR", "AIR", "ONNX"),
                                                "help": "default: export.format"}),
               (("--file_name", "--file"), {"dest": "file_name",
                                            "help": "output path (default: export.file)"})],
    "onnx": [(("--onnx_file", "--onnx"), {"dest": "onnx_file", "required": True,
                                          "help": "exported ONNX file"}),
             (("--threads",), {"type": int, "help": "ONNX Runtime intra-op threads"})],
    "predict": [(("--input",), {"required": True, "help": "an image or a folder (searched recursively)"}),
                (("--output_dir", "--out"), {"dest": "output_dir", "required": True,
                                             "help": "folder for the pictures (sub-folders kept)"})],
    "preprocess": [(("--data_path",), {"help": "split to convert (default: the config's test split)"}),
                   (("--output_dir",), {"dest": "output_dir", "required": True,
                                        "help": "folder for the .bin inputs and manifest.txt"})],
    "postprocess": [(("--data_path",), {"help": "split that was preprocessed (default: the config's)"}),
                    (("--data_dir",), {"required": True, "help": "preprocess.py's output folder"}),
                    (("--result_dir",), {"required": True, "help": "the app's outputs (result_Files)"})],
}
COMMAND_FLAGS = {"train": ["resume"], "eval": ["ckpt"], "export": ["ckpt", "export"], "infer_onnx": ["onnx"],
                 "predict": ["ckpt", "predict"], "preprocess": ["preprocess"], "postprocess": ["postprocess"]}


EPILOGS = {"predict": "An unreadable or corrupt image is skipped with a warning; the skipped files are listed at "
                       "the end and the exit status is 1. A failed write exits 2.\n"}


def build_parser(command, description, extra=()):
    parser = argparse.ArgumentParser(
        description=description, allow_abbrev=False, formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=EPILOGS.get(command, "") + "Any config key can be overridden: optim.lr=0.01 or --train.epochs 5.")
    parser.add_argument("--config", help="YAML config file (see configs/<model>/)")
    parser.add_argument("--device_target", choices=DEVICES,
                        help="CPU | GPU | Ascend (default: the config's device)")
    parser.add_argument("--device_id", type=int, help="card to use (default: the config's device_id)")
    for group in COMMAND_FLAGS[command]:
        for flags, kwargs in FLAGS[group]:
            parser.add_argument(*flags, **kwargs)
    for flags, kwargs in extra:
        parser.add_argument(*flags, **kwargs)
    return parser


def export_size(cfg, default):
    """(H, W) of ``export.size`` (an int or [H, W]), else ``default``."""
    size = cfg.export.size
    if size is None:
        return tuple(default)
    size = [size, size] if isinstance(size, int) else size
    if (not isinstance(size, (list, tuple)) or len(size) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in size)):
        raise ConfigError(f"key 'export.size' expects a positive int or [H, W], got {cfg.export.size!r}")
    return tuple(size)


def check_variant(spec, cfg):
    name = cfg.model.name
    if name not in spec.variants:
        close = difflib.get_close_matches(str(name), spec.variants, n=2)
        hint = f"; did you mean {close[0]}?" if close else ""
        raise ConfigError(f"model.name '{name}' is not a variant of models/{spec.folder} "
                          f"(expected one of {sorted(spec.variants)}){hint}")


def parse(spec, command, argv=None, description=None, extra=()):
    """(args, cfg) for ``command`` of ``spec``'s model; config errors exit 2 with one line."""
    from common.tasks import get_task

    task = get_task(spec.task)
    extra = list(extra) + (task.predict_arguments if command == "predict" else [])
    parser = build_parser(command, description or spec.doc, extra)
    args, rest = parser.parse_known_args(argv)
    overrides = list(rest)
    if args.device_target:
        overrides.append(f"device={args.device_target}")
    device_id = args.device_id
    if (device_id is None and command == "train" and os.environ.get("RANK_TABLE_FILE")
            and os.environ.get("DEVICE_ID", "").isdigit()):
        device_id = int(os.environ["DEVICE_ID"])  # a rank-table launch sets it per process
    if device_id is not None:
        overrides.append(f"device_id={device_id}")
    if getattr(args, "resume", None):
        overrides.append(f"train.resume={args.resume}")
    if getattr(args, "data_path", None):
        overrides += task.data_path_overrides(args.data_path)
    try:
        cfg = load_config(spec.defaults, args.config, overrides)
        check_variant(spec, cfg)
        export_size(cfg, (1, 1))
    except ConfigError as exc:
        parser.exit(2, f"config error: {exc}\n")
    return args, cfg
