"""Non-neural baselines, fitted by scikit-learn on the same feature cache and splits as the networks.

The random forest sees each event as the mean and std over time of every feature band
(:func:`fretlab.models.rf.pooled_features`). Its trees are copied into the ``rf`` model's buffers, so it is
saved, evaluated and used for prediction exactly like the neural models.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from dvclive import Live
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import log_loss
from sklearn.model_selection import RandomizedSearchCV, StratifiedGroupKFold

from fretlab.cache.reader import load_features
from fretlab.data.metadata import read_metadata
from fretlab.io import worker_count, write_csv
from fretlab.models.classifier import Classifier
from fretlab.models.rf import ForestNet, pooled_features
from fretlab.params import Params
from fretlab.runtime import predict_logits, to_device_tensor
from fretlab.tasks.metrics import macro_f1

CV_RESULTS = "cv_results.csv"


class BaselineError(ValueError):
    """A baseline that cannot be fitted with the given data and params."""


def pool_array(x: np.ndarray, chunk: int = 512) -> np.ndarray:
    """Pooled features of a (memory-mapped) ``(N, C, mels, frames)`` array, chunk by chunk, float32."""
    out = [pooled_features(torch.from_numpy(np.array(x[i : i + chunk], dtype=np.float32))).numpy()
           for i in range(0, len(x), chunk)]
    return np.concatenate(out) if out else np.zeros((0, 2 * int(np.prod(x.shape[1:-1]))), dtype=np.float32)


def train_groups(split_metadata: Path, note_ids: list[str]) -> np.ndarray:
    """The ``group`` (guitar / recording) of each training event, so CV folds never share a group."""
    meta = read_metadata(split_metadata).set_index("note_id")
    missing = [n for n in note_ids if n not in meta.index]
    if missing:
        raise BaselineError(f"{split_metadata}: {len(missing)} feature rows have no metadata row (first: "
                            f"{missing[0]}); re-run `dvc repro featurize`")
    return meta.loc[note_ids, "group"].astype(str).to_numpy()


def make_forest(params: Params) -> RandomForestClassifier:
    """The forest described by ``model.rf`` (seeded by ``base.seed``; class weights per ``train.class_weights``)."""
    cfg = params.model.rf
    return RandomForestClassifier(
        n_estimators=cfg.n_estimators, max_depth=cfg.max_depth, max_features=cfg.max_features,
        min_samples_leaf=cfg.min_samples_leaf, bootstrap=cfg.bootstrap,
        class_weight="balanced" if params.train.class_weights else None,
        random_state=params.base.seed, n_jobs=worker_count(params.base.workers),
    )


def search_forest(params: Params, x: np.ndarray, y: np.ndarray, groups: np.ndarray) -> RandomizedSearchCV:
    """RandomizedSearchCV (macro-F1, grouped stratified folds) over ``model.rf.search``; refits the best."""
    cfg = params.model.rf.search
    n_groups = len(np.unique(groups))
    if n_groups < cfg.cv_folds:
        raise BaselineError(f"model.rf.search.cv_folds={cfg.cv_folds} but the train split holds only {n_groups} "
                            "groups; lower cv_folds or use more groups")
    space = {"n_estimators": cfg.n_estimators, "max_depth": cfg.max_depth, "max_features": cfg.max_features,
             "bootstrap": cfg.bootstrap}
    search = RandomizedSearchCV(
        make_forest(params), space, n_iter=cfg.n_iter, scoring="f1_macro", refit=True,
        cv=StratifiedGroupKFold(n_splits=cfg.cv_folds, shuffle=True, random_state=params.base.seed),
        random_state=params.base.seed, n_jobs=1,  # the forest itself already uses base.workers cores
    )
    return search.fit(x, y, groups=groups)


def fit_forest(params: Params, model: Classifier, features_dir: Path, split_metadata: Path,
               live_dir: Path) -> dict[str, Any]:
    """Fit the ``rf`` model in ``model`` on the train split, log the fit to dvclive, return a summary.

    dvclive gets one step with the same names the training loop logs per epoch (train/val loss, val
    macro-F1 and accuracy), so the pipeline's metrics and plots work for every model; a search also
    writes ``cv_results.csv`` next to them.
    """
    if not isinstance(model.net, ForestNet):
        raise BaselineError(f"fit_forest needs model.name 'rf', got '{params.model.name}'")
    n_classes = len(params.data.classes)
    x_train, y_train, ids = load_features(features_dir, "train")
    x_val, y_val, _ = load_features(features_dir, "val")
    search = None
    if params.model.rf.search.enabled:
        search = search_forest(params, pool_array(x_train), y_train, train_groups(split_metadata, ids))
        forest = search.best_estimator_
    else:
        forest = make_forest(params).fit(pool_array(x_train), y_train)
    model.net.load_forest(forest)

    # Score through the saved module's own forward pass, so the logged numbers are the saved model's.
    def proba(x: np.ndarray) -> np.ndarray:
        logits = predict_logits(model, to_device_tensor(x, torch.device("cpu")), params.evaluate.batch_size)
        return torch.softmax(logits, dim=1).numpy() if len(x) else np.zeros((0, n_classes))

    labels = list(range(n_classes))
    p_train, p_val = proba(x_train), proba(x_val)
    val_pred = p_val.argmax(1)
    record = {
        "train/loss": float(log_loss(y_train, p_train, labels=labels)) if len(y_train) else float("nan"),
        "val/loss": float(log_loss(y_val, p_val, labels=labels)) if len(y_val) else float("nan"),
        "val/macro_f1": macro_f1(y_val, val_pred, n_classes),
        "val/accuracy": float((val_pred == y_val).mean()) if len(y_val) else float("nan"),
    }
    summary: dict[str, Any] = {"best_val_macro_f1": record["val/macro_f1"], "n_trees": model.net.n_trees,
                               "n_nodes": len(model.net.feature)}
    with Live(dir=str(live_dir), save_dvc_exp=False, dvcyaml=False) as live:
        for name, value in record.items():
            live.log_metric(name, value)
        live.next_step()
        live.summary["best_val_macro_f1"] = record["val/macro_f1"]
        cv_path = Path(live_dir) / CV_RESULTS
        cv_path.unlink(missing_ok=True)  # never leave an earlier search's table beside this fit
        if search is not None:
            live.summary["best_cv_macro_f1"] = float(search.best_score_)
            write_csv(cv_path, _cv_table(search))
            summary["search"] = {"best_params": search.best_params_, "best_cv_macro_f1": float(search.best_score_)}
    print("rf: " + ", ".join(f"{k}={v:.4f}" for k, v in record.items()))
    return summary


def _cv_table(search: RandomizedSearchCV) -> pd.DataFrame:
    """One row per candidate: its params, mean/std CV macro-F1 and rank (best first)."""
    res = search.cv_results_
    table = pd.DataFrame({k.removeprefix("param_"): list(v) for k, v in res.items() if k.startswith("param_")})
    for key in ("mean_test_score", "std_test_score", "rank_test_score", "mean_fit_time"):
        table[key] = res[key]
    return table.sort_values("rank_test_score", kind="stable")
