"""Stage evaluate: score the trained model on val/test; write metrics JSON and plots."""

import argparse

import numpy as np
import torch

from fretlab.artifacts.modeldir import load_task_model
from fretlab.data.crossval import role_clip_ids, role_splits, stage_paths
from fretlab.params import load_params
from fretlab.runtime import configure_determinism, select_device
from fretlab.tasks.evaluation import evaluate_split, evaluate_targets, write_data_counts
from fretlab.tasks.monitor import is_single_label
from fretlab.tasks.targets import Standardizer
from fretlab.train.inputs import load_role_data


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
    loaded = load_task_model(run.model, device)
    specs = loaded.specs
    single = len(specs) == 1 and is_single_label(specs)
    if not single:  # standardized figures use the train split's scale, whatever the model was trained on
        train = load_role_data(params, specs, role_splits(params.split, args.fold, "train"), device)
        report_scale = Standardizer.fit(train.y, train.valid, specs, enabled=True)
    torch.manual_seed(params.base.seed)
    for split in params.evaluate.splits:
        role = load_role_data(params, specs, role_splits(params.split, args.fold, split), device)
        out = role.inputs.predict(loaded.model, params.evaluate.batch_size, params.train.amp)
        if single:  # with clip windows, the headline figures are clip-level (mean of window probabilities)
            clip_ids = role_clip_ids(paths.features, params.split, args.fold, split)
            metrics = evaluate_split(split, out, role.y[:, 0].astype(np.int64), role.ids, clip_ids, loaded.classes,
                                     run.metrics, run.plots)
            print(f"{split}: accuracy {metrics['accuracy']:.4f}, macro-F1 {metrics['macro_f1']:.4f}")
        else:
            metrics = evaluate_targets(split, out, role.y, role.valid, role.ids, specs, loaded.scaler, report_scale,
                                       run.metrics, run.plots)
            print(f"{split}: " + ", ".join(f"{k} {v:.4f}" for k, v in metrics.get("aggregate", {}).items()
                                           if isinstance(v, float)))
    counts = write_data_counts(paths.features, run.metrics)  # skipped items count as a metric, not a footnote
    print(f"featurized events {counts['events']}; skipped {counts['skipped_total']} (see skipped.csv)")


if __name__ == "__main__":
    main()
