"""Stage train: fit the model on cached features; write the self-contained model directory."""

import argparse
from pathlib import Path

from fretlab.artifacts.modelcard import write_model_card
from fretlab.artifacts.modeldir import save_model_dir
from fretlab.data.crossval import role_files, role_splits, stage_paths
from fretlab.models import NOT_GRADIENT_TRAINED
from fretlab.models.classifier import build_task_model
from fretlab.models.rf import ForestNet
from fretlab.params import load_params
from fretlab.runtime import select_device
from fretlab.tasks.monitor import monitor_for
from fretlab.tasks.targets import Standardizer, label_classes, resolve_targets
from fretlab.train import distributed
from fretlab.train.baselines import fit_forest, fit_forest_heads, train_groups
from fretlab.train.inputs import load_role_data
from fretlab.train.loop import seed_everything, train_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--fold", type=int, default=None, help="predefined_folds: train with fold K held out")
    args = parser.parse_args()
    params = load_params(args.params)
    paths = params.paths
    run = stage_paths(paths, args.fold)  # the configured paths, or their fold<K> subdirectories
    forest = params.model.name in NOT_GRADIENT_TRAINED
    if args.fold is not None and forest:
        parser.error(f"--fold is not supported for model.name {params.model.name}")
    if not forest and distributed.relaunch_under_torchrun(params.train.ddp):
        return  # train.ddp.nproc > 1: torchrun's workers trained, and rank 0 wrote the model
    device = select_device(params.base.device)
    ddp = distributed.start(params.train.ddp, device)  # no-op in one process
    features = Path(paths.features)
    specs = resolve_targets(params)
    data = {role: load_role_data(params, specs, role_splits(params.split, args.fold, role), device)
            for role in ("train", "val")}
    scaler = Standardizer.fit(data["train"].y, data["train"].valid, specs, params.task.standardize)
    for role in data.values():  # losses and the forest see standardized regression targets
        role.y = scaler.transform(role.y)
    seed_everything(params.base.seed)  # weight initialization follows base.seed
    model = build_task_model(params, specs, data["train"].inputs.dims)
    if isinstance(model.net, ForestNet):  # the single-label forest on fixed windows
        summary = fit_forest(params, model, features, Path(paths.split) / "metadata.csv", Path(paths.live))
    elif forest:
        groups = train_groups(Path(paths.split) / "metadata.csv", data["train"].ids)
        summary = fit_forest_heads(params, model, specs, data, groups, Path(paths.live))
    else:
        state = train_model(params, model, data, specs, run.checkpoints, run.live, features,
                            role_files(features, params.split, args.fold))
        summary = {"best_epoch": state.best_epoch, f"best_val_{monitor_for(specs).name}": state.best_score,
                   "epochs_run": state.epoch}
    if args.fold is not None:
        summary["fold"] = args.fold
    if ddp.is_main:  # rank 0 alone writes outputs; the others wait for it, then all exit together
        classes = label_classes(specs)
        save_model_dir(run.model, model, params, classes, summary, scaler)
        write_model_card(run.model, params, classes, summary, Path(paths.split) / "metadata.csv", model)
        best = {k: v for k, v in summary.items() if k.startswith("best_val_")}
        print(f"{params.model.name}: {best}; model in {run.model}")
    distributed.barrier()


if __name__ == "__main__":
    main()
