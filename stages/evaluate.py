"""Stage evaluate: score the trained model on val/test; write metrics JSON and plots."""

import argparse

import torch

from fretlab.artifacts.modeldir import load_model_dir
from fretlab.data.crossval import load_role, stage_paths
from fretlab.params import load_params
from fretlab.runtime import configure_determinism, predict_logits, select_device, to_device_tensor
from fretlab.tasks.evaluation import evaluate_split, write_data_counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--fold", type=int, default=None, help="predefined_folds: evaluate fold K's model")
    args = parser.parse_args()
    params = load_params(args.params)
    paths = params.paths
    run = stage_paths(paths, args.fold)  # the configured paths, or their fold<K> subdirectories
    configure_determinism(params.base.deterministic)
    device = select_device(params.base.device)
    model, _, classes = load_model_dir(run.model, device)
    torch.manual_seed(params.base.seed)
    for split in params.evaluate.splits:
        x, y, ids, clip_ids = load_role(paths.features, params.split, args.fold, split)
        logits = predict_logits(model, to_device_tensor(x, device), params.evaluate.batch_size, params.train.amp)
        # with clip windows, the headline figures are clip-level (mean of window probabilities)
        metrics = evaluate_split(split, logits, y, ids, clip_ids, classes, run.metrics, run.plots)
        print(f"{split}: accuracy {metrics['accuracy']:.4f}, macro-F1 {metrics['macro_f1']:.4f}")
    counts = write_data_counts(paths.features, run.metrics)  # skipped items count as a metric, not a footnote
    print(f"featurized events {counts['events']}; skipped {counts['skipped_total']} (see skipped.csv)")


if __name__ == "__main__":
    main()
