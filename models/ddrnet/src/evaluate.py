"""Top-1 / top-5 over a whole split, from a MindSpore network or any batch predictor."""
import numpy as np
from tqdm import tqdm

from mindspore import Tensor

from common.metrics.classification import TopKAccuracy


def evaluate_classifier(predict, dataset, desc="eval"):
    """``predict(images NCHW float32) -> logits``; every sample counts (no dropped remainder)."""
    metric = TopKAccuracy()
    for images, labels in tqdm(dataset.create_tuple_iterator(num_epochs=1, output_numpy=True),
                               total=dataset.get_dataset_size(), desc=desc, unit="batch"):
        metric.update(np.asarray(predict(images)), labels)
    return metric.result()


def network_predictor(net):
    net.set_train(False)
    return lambda images: net(Tensor(images)).asnumpy()


def make_evaluator(dataset):
    return lambda net: evaluate_classifier(network_predictor(net), dataset)
