"""Stage evaluate: score the trained model on val/test; write metrics JSON and plots."""

import argparse
from pathlib import Path

import torch

from fretlab.datasets import load_features
from fretlab.evaluation import write_evaluation
from fretlab.inference import predict_logits, select_device, to_device_tensor
from fretlab.modeldir import load_model_dir
from fretlab.params import load_params


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args()
    params = load_params(args.params)
    paths = params.paths
    device = select_device(params.base.device)
    model, _, classes = load_model_dir(paths.model, device)
    torch.manual_seed(params.base.seed)
    for split in params.evaluate.splits:
        x, y, ids = load_features(paths.features, split)
        logits = predict_logits(model, to_device_tensor(x, device), params.evaluate.batch_size, params.train.amp)
        metrics = write_evaluation(split, y, logits.argmax(1).numpy(), ids, classes, Path(paths.metrics),
                                   Path(paths.plots))
        print(f"{split}: accuracy {metrics['accuracy']:.4f}, macro-F1 {metrics['macro_f1']:.4f}")


if __name__ == "__main__":
    main()
