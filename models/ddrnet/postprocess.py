"""Top-1 / top-5 from the C++ app's outputs and the labels written by preprocess.py.

    python models/ddrnet/postprocess.py --result_dir result_Files --label_file DATA_DIR/labels.txt
"""
import argparse
import json
from pathlib import Path

import numpy as np

from common.cli import run_main
from common.data.errors import DatasetError
from common.infer310 import read_outputs
from common.metrics.classification import TopKAccuracy


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--result_dir", required=True)
    parser.add_argument("--label_file", required=True)
    parser.add_argument("--json", help="write the result here")
    args = parser.parse_args(argv)
    if not Path(args.label_file).is_file():
        raise DatasetError(f"label file not found: {args.label_file}")
    labels = dict(line.split() for line in Path(args.label_file).read_text().splitlines() if line.strip())
    outputs = read_outputs(args.result_dir)
    missing = sorted(set(labels) - set(outputs))
    if missing:
        raise DatasetError(f"{args.result_dir}: no outputs for {len(missing)} samples, e.g. {missing[:5]}")
    metric = TopKAccuracy()
    for name, label in labels.items():
        metric.update(outputs[name][0].reshape(1, -1), np.array([int(label)]))
    result = metric.result()
    print(f"top-1 {result['top1']:.4f}  top-5 {result['top5']:.4f}  over {result['num_samples']} images")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    run_main(main)
