"""Stage train: fit the model on cached features; write the self-contained model directory."""

import argparse
from pathlib import Path

from fretlab.artifacts.modelcard import write_model_card
from fretlab.artifacts.modeldir import save_model_dir
from fretlab.data.crossval import load_role, role_files, stage_paths
from fretlab.models import NOT_GRADIENT_TRAINED
from fretlab.models.classifier import Classifier
from fretlab.params import load_params
from fretlab.runtime import select_device
from fretlab.train import distributed
from fretlab.train.baselines import fit_forest
from fretlab.train.loop import seed_everything, train_model


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
    gradient_trained = params.model.name not in NOT_GRADIENT_TRAINED
    if gradient_trained and distributed.relaunch_under_torchrun(params.train.ddp):
        return  # train.ddp.nproc > 1: torchrun's workers trained, and rank 0 wrote the model
    ddp = distributed.start(params.train.ddp, select_device(params.base.device))  # no-op in one process
    features = Path(paths.features)
    classes = params.data.classes
    seed_everything(params.base.seed)  # weight initialization follows base.seed
    model = Classifier(params, len(classes))
    if params.model.name in NOT_GRADIENT_TRAINED:  # scikit-learn baseline: one fit, no epochs or checkpoints
        summary = fit_forest(params, model, features, Path(paths.split) / "metadata.csv", Path(paths.live))
    else:
        data = {role: load_role(features, params.split, args.fold, role)[:2] for role in ("train", "val")}
        state = train_model(params, model, data, len(classes), run.checkpoints, run.live, features,
                            role_files(features, params.split, args.fold))
        summary = {"best_epoch": state.best_epoch, "best_val_macro_f1": state.best_f1, "epochs_run": state.epoch}
    if args.fold is not None:
        summary["fold"] = args.fold
    if not ddp.is_main:
        return  # rank 0 alone writes outputs
    save_model_dir(run.model, model, params, classes, summary)
    write_model_card(run.model, params, classes, summary, Path(paths.split) / "metadata.csv", model)
    print(f"{params.model.name}: best val macro-F1 {summary['best_val_macro_f1']:.4f}; model in {run.model}")


if __name__ == "__main__":
    main()
