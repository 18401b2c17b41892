"""Stage train: fit the model on cached features; write the self-contained model directory."""

import argparse
from pathlib import Path

from fretlab.classifier import Classifier
from fretlab.datasets import load_features
from fretlab.modeldir import save_model_dir
from fretlab.params import load_params
from fretlab.training import train_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args()
    params = load_params(args.params)
    paths = params.paths
    features = Path(paths.features)
    data = {split: load_features(features, split)[:2] for split in ("train", "val")}
    classes = params.data.classes
    model = Classifier(params, len(classes))
    state = train_model(params, model, data, len(classes), Path(paths.checkpoints), Path(paths.live), features)
    save_model_dir(Path(paths.model), model, params, classes,
                   {"best_epoch": state.best_epoch, "best_val_macro_f1": state.best_f1, "epochs_run": state.epoch})
    print(f"best val macro-F1 {state.best_f1:.4f} at epoch {state.best_epoch}; model in {paths.model}")


if __name__ == "__main__":
    main()
