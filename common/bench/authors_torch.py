"""The authors' PyTorch networks for the ``torch`` / ``torch_train`` benchmark backends: which file
of which repository builds each registered model (data, below), ``--torch-src`` parsing and the
loader. No PyTorch code lives in this repository: the user clones the authors' repositories and
``--torch-src FOLDER=PATH`` names each clone's root; the file is imported from there at run time.
Nothing here imports torch (the factories do, when called)."""
import importlib.util
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple


class Entry(NamedTuple):
    folder: str         # model folder of the zoo; --torch-src names it
    repo: str           # the authors' GitHub repository (for messages and the report)
    file: str           # relative to the repository root
    attr: str           # class or factory in that file
    kwargs: dict        # its keyword arguments: the zoo's default config, no weights downloaded
    classes: str = ""       # the keyword taking the number of classes (the train step: the quick recipe's)
    note: str = ""          # on the inference rows
    train_note: str = ""    # on the train-step row
    same_macs: bool = True  # our default config's layers: our export's MACs count this network too


_U2NET = ("u2net", "xuebinqin/U-2-Net", "model/u2net.py")
_DDRNET = ("ddrnet", "ydhongHIT/DDRNet")
_REFINEDET = ("refinedet", "luuuyi/RefineDet.PyTorch", "models/refinedet.py", "build_refinedet")
_RAW_HEADS = "raw heads ('train' phase)"
_REFINEDET_NOTES = {"note": f"21 classes (the authors' config has VOC's only; ours 81), {_RAW_HEADS}",
                    "train_note": f"21 VOC classes, {_RAW_HEADS}", "same_macs": False}

ENTRIES = {
    "u2net": Entry(*_U2NET, "U2NET", {"in_ch": 3, "out_ch": 1}),
    "u2netp": Entry(*_U2NET, "U2NETP", {"in_ch": 3, "out_ch": 1}),
    # get_model() takes no arguments: 1000 classes in the train step too
    "ddrnet23": Entry(*_DDRNET, "classification/DDRNet_23.py", "get_model", {}),
    "ddrnet23_slim": Entry(*_DDRNET, "classification/DDRNet_23_slim.py", "get_model", {}),
    "ddrnet39": Entry(*_DDRNET, "classification/DDRNet_39.py", "get_model", {}),
    "refinenet101": Entry("refinenet", "DrSleep/refinenet-pytorch", "models/resnet.py", "rf101",
                          {"num_classes": 21, "imagenet": False, "pretrained": False}, "num_classes"),
    # 'train' returns the four raw heads (our deployed graph's outputs) and the priors; 'test' adds
    # the authors' Detect (NMS). Only 21 classes build: other counts select an SSD config without
    # RefineDet's sizes (KeyError '320'), so the train step keeps 21 too
    "refinedet320_vgg16": Entry(*_REFINEDET, {"phase": "train", "size": 320, "num_classes": 21},
                                **_REFINEDET_NOTES),
    "refinedet512_vgg16": Entry(*_REFINEDET, {"phase": "train", "size": 512, "num_classes": 21},
                                **_REFINEDET_NOTES),
}

UNSUPPORTED = {
    "ras": "ShuhanChen/RAS-pytorch v1/RAS.py: RAS() downloads torchvision's ImageNet ResNet-50 "
           "(initialize_weights, pretrained=True); it also needs torchvision, not installed here",
    "refinedet320_resnet101": "luuuyi/RefineDet.PyTorch builds only the VGG-16 RefineDet",
    "refinedet512_resnet101": "luuuyi/RefineDet.PyTorch builds only the VGG-16 RefineDet",
}

# the quick recipe's training crop per model folder (the torch train step's input)
TRAIN_SIZE_KEYS = {"u2net": "data.crop", "ddrnet": "data.image_size", "ras": "data.size",
                   "refinedet": "data.size", "refinenet": "data.crop"}


class TorchSourceError(ValueError):
    """A malformed or wrong ``--torch-src``: one line, exit 2."""


def parse_torch_src(text, folders):
    """``FOLDER=PATH[,FOLDER=PATH...]`` -> {folder: Path}; every folder known, every path a folder."""
    sources = {}
    for item in (t.strip() for t in (text or "").split(",") if t.strip()):
        folder, eq, path = (s.strip() for s in item.partition("="))
        if not eq or not folder or not path:
            raise TorchSourceError(f"--torch-src {item!r}: expected FOLDER=PATH[,FOLDER=PATH...]")
        if folder not in folders:
            raise TorchSourceError(f"--torch-src {item!r}: unknown model folder {folder!r}: expected one of "
                                   f"{', '.join(sorted(folders))}")
        if folder in sources:
            raise TorchSourceError(f"--torch-src {item!r}: {folder} is given twice")
        root = Path(path).expanduser()
        if not root.is_dir():
            raise TorchSourceError(f"--torch-src {item!r}: {root} is not a folder")
        sources[folder] = root.resolve()
    return sources


def check_sources(models, sources):
    """Before any measuring: every selected model with an entry has its folder's source, holding
    the entry's file. Returns the models the torch backends cannot build ({model: reason})."""
    for model in models:
        entry = ENTRIES.get(model)
        if entry is None:
            continue
        if entry.folder not in sources:
            raise TorchSourceError(f"the torch backends need --torch-src {entry.folder}=PATH (the root of a "
                                   f"clone of {entry.repo}) for {model}")
        if not (sources[entry.folder] / entry.file).is_file():
            raise TorchSourceError(f"--torch-src {entry.folder}={sources[entry.folder]}: no {entry.file} "
                                   f"there (expected the root of a clone of {entry.repo})")
    return {m: UNSUPPORTED.get(m, "no entry in common/bench/authors_torch.py") for m in models
            if m not in ENTRIES}


def resolve_sources(text, folders, models, backends):
    """Parse ``--torch-src``; when ``backends`` (the torch ones asked for) is not empty, check it
    against the selected ``models`` and the installed torch. ({folder: root}, {model: reason})."""
    sources = parse_torch_src(text, folders)
    if not backends:
        return sources, {}
    unsupported = check_sources(models, sources)
    if importlib.util.find_spec("torch") is None:
        raise TorchSourceError(f"--backends {','.join(backends)}: PyTorch is not importable here "
                               "(pip install torch)")
    return sources, unsupported


def sources_meta(models, sources):
    """{folder: repo, clone root, checked-out commit} of the clones the selected models use."""
    used = {ENTRIES[m].folder: ENTRIES[m].repo for m in models if m in ENTRIES}
    return {folder: {"repo": repo, "path": str(sources[folder]), "commit": commit_of(sources[folder])}
            for folder, repo in sorted(used.items())}


def commit_of(root):
    """The checked-out commit of a git clone (short), or None."""
    try:
        proc = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=False, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return (proc.stdout.strip() or None) if proc.returncode == 0 else None


def build_job(model, root, classes=None):
    """What the worker needs to build ``model`` from the clone at ``root`` (``classes`` replaces the
    entry's number of classes when it has that keyword)."""
    entry = ENTRIES[model]
    kwargs = dict(entry.kwargs)
    if classes is not None and entry.classes:
        kwargs[entry.classes] = int(classes)
    return {"root": str(root), "file": entry.file, "attr": entry.attr, "kwargs": kwargs}


def _local_names(*folders):
    """Top-level module names a folder provides (``name.py`` files and sub-folders)."""
    return {p.stem if p.suffix == ".py" else p.name for f in folders for p in Path(f).iterdir()
            if p.suffix == ".py" or (p.is_dir() and not p.name.startswith("."))}


@contextmanager
def authors_imports(root, folder):
    """``root`` and ``folder`` first on sys.path, modules of the same names imported from elsewhere
    set aside; afterwards sys.path, and those modules, are as before, and the modules imported
    from ``root`` are dropped from sys.modules (the built objects keep what they use)."""
    root = Path(root).resolve()
    saved_path = list(sys.path)
    names = _local_names(root, folder)
    shadowed = {k: sys.modules.pop(k) for k in list(sys.modules) if k.split(".")[0] in names}
    sys.path[:0] = [str(folder), str(root)]
    try:
        yield
    finally:
        sys.path[:] = saved_path
        for key, mod in list(sys.modules.items()):
            file = getattr(mod, "__file__", None) or ""
            if key.split(".")[0] in names or file.startswith(str(root) + "/"):
                del sys.modules[key]
        sys.modules.update(shadowed)


def build_authors_model(job):
    """Import ``job["file"]`` from the clone ``job["root"]`` and call ``attr(**kwargs)``."""
    root = Path(job["root"]).resolve()
    path = root / job["file"]
    name = "_authors_" + job["file"].removesuffix(".py").replace("/", "_").replace("-", "_")
    with authors_imports(root, path.parent):
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        return getattr(module, job["attr"])(**job["kwargs"])
