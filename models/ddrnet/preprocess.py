"""Write an ImageNet-layout split as inputs for the C++ inference app (scripts/run_infer_310.sh).

    python models/ddrnet/preprocess.py --config CONFIG --output_dir DATA_DIR [data.root=DIR]
Each image: resize short side to size/crop_pct (bicubic), center crop, normalise -> (1, 3, S, S)
float32 .bin; labels.txt lists "name label" for postprocess.py.
"""
from pathlib import Path

from tqdm import tqdm

from common.cli import run_main
from common.config import args_and_config
from common.data.classification import ImageFolderDataset
from common.data.transforms_cls import imagenet_eval_transform
from common.infer310 import InputWriter
from models.ddrnet.src.config import DEFAULTS
from models.ddrnet.src.data import class_list


def main(argv=None):
    args, cfg = args_and_config(DEFAULTS, __doc__, argv, [(("--output_dir",), {"required": True})])
    source = ImageFolderDataset(Path(cfg.data.root) / cfg.data.val_dir, class_list(cfg.data))
    transform = imagenet_eval_transform(cfg.data.image_size, cfg.data.crop_pct, cfg.data.interpolation)
    labels = []
    with InputWriter(args.output_dir) as writer:
        for i in tqdm(range(len(source)), desc="preprocess", unit="img"):
            sample = source[i]
            name = f"img{i:06d}"
            writer.add(name, transform({"image": sample["image"]})["image"][None])
            labels.append(f"{name} {int(sample['label'])}\n")
    (Path(args.output_dir) / "labels.txt").write_text("".join(labels))
    print(f"{len(source)} inputs written to {args.output_dir}")


if __name__ == "__main__":
    run_main(main)
