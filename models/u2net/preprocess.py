"""Write an SOD test set as inputs for the C++ inference app (scripts/run_infer_310.sh).

    python models/u2net/preprocess.py --config CONFIG --output_dir DATA_DIR [test.root=DIR]
Each image becomes a normalised (1, 3, S, S) float32 .bin (S = test.size) listed in manifest.txt.
"""

from tqdm import tqdm

from common.cli import run_main
from common.config import args_and_config
from common.data.sod import SODDataset
from common.infer310 import InputWriter
from models.u2net.src.config import DEFAULTS
from models.u2net.src.inference import preprocess


def main(argv=None):
    args, cfg = args_and_config(DEFAULTS, __doc__, argv, [(("--output_dir",), {"required": True})])
    source = SODDataset(cfg.test.root)
    count = min(len(source), cfg.test.max_images or len(source))
    with InputWriter(args.output_dir) as writer:
        for i in tqdm(range(count), desc="preprocess", unit="img"):
            sample = source[i]
            writer.add(sample["name"], preprocess(sample["image"], cfg.test.size))
    print(f"{count} inputs written to {args.output_dir}")


if __name__ == "__main__":
    run_main(main)
