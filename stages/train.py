"""Stage train: fit the model on cached features; write the self-contained model directory."""

import argparse
from pathlib import Path

from fretlab.baselines import fit_forest
from fretlab.classifier import Classifier
from fretlab.crossval import load_role, role_files, stage_paths
from fretlab.modeldir import save_model_dir
from fretlab.models import NOT_GRADIENT_TRAINED
from fretlab.params import load_params
from fretlab.training import train_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--fold", type=int, default=None, help="predefined_folds: train with fold K held out")
    args = parser.parse_args()
    params = load_params(args.params)
    paths = params.paths
    run = stage_paths(paths, args.fold)  # the configured paths, or their fold<K> subdirectories
    if args.fold is not None and params.model.name in NOT_GRADIENT_TRAINED:
        parser.error(f"--fold is not supported for model.name {params.model.name}")
    features = Path(paths.features)
    classes = params.data.classes
    model = Classifier(params, len(classes))
    if params.model.name in NOT_GRADIENT_TRAINED:  # scikit-learn baseline: one fit, no epochs or checkpoints
        summary = fit_forest(params, model, features, Path(paths.split) / "metadata.csv", Path(paths.live))
        Path(paths.checkpoints).mkdir(parents=True, exist_ok=True)  # a declared output of this stage
    else:
        data = {role: load_role(features, params.split, args.fold, role)[:2] for role in ("train", "val")}
        state = train_model(params, model, data, len(classes), run.checkpoints, run.live, features,
                            role_files(features, params.split, args.fold))
        summary = {"best_epoch": state.best_epoch, "best_val_macro_f1": state.best_f1, "epochs_run": state.epoch}
    if args.fold is not None:
        summary["fold"] = args.fold
    save_model_dir(run.model, model, params, classes, summary)
    print(f"{params.model.name}: best val macro-F1 {summary['best_val_macro_f1']:.4f}; model in {run.model}")


if __name__ == "__main__":
    main()
