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
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.metrics import log_loss, make_scorer
from sklearn.model_selection import GroupKFold, RandomizedSearchCV, StratifiedGroupKFold
from torch import nn

from fretlab.cache.reader import ID_COLUMNS, load_features
from fretlab.cache.sequences import BucketBatchSampler, pad_batch
from fretlab.data.metadata import read_metadata
from fretlab.io import worker_count, write_csv
from fretlab.models.classifier import Classifier
from fretlab.models.rf import ForestHeads, ForestNet, masked_pooled_features, pooled_features
from fretlab.params import Params
from fretlab.runtime import predict_logits, to_device_tensor
from fretlab.tasks.losses import make_task_loss
from fretlab.tasks.metrics import macro_f1
from fretlab.tasks.monitor import monitor_for, validation_record
from fretlab.tasks.targets import TargetSpec
from fretlab.train.inputs import Inputs, RoleData, SequenceInputs

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
    meta = read_metadata(split_metadata)
    meta = meta.set_index(next((c for c in ID_COLUMNS if c in meta.columns), "note_id"))
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


def _search_space(params: Params, groups: np.ndarray) -> tuple[Any, dict[str, list[Any]]]:
    """``model.rf.search`` and its parameter space; refuses fewer train groups than CV folds."""
    cfg = params.model.rf.search
    n_groups = len(np.unique(groups))
    if n_groups < cfg.cv_folds:
        raise BaselineError(f"model.rf.search.cv_folds={cfg.cv_folds} but the train split holds only {n_groups} "
                            "groups; lower cv_folds or use more groups")
    space = {"n_estimators": cfg.n_estimators, "max_depth": cfg.max_depth, "max_features": cfg.max_features,
             "bootstrap": cfg.bootstrap}
    return cfg, space


def search_forest(params: Params, x: np.ndarray, y: np.ndarray, groups: np.ndarray) -> RandomizedSearchCV:
    """RandomizedSearchCV (macro-F1, grouped stratified folds) over ``model.rf.search``; refits the best."""
    cfg, space = _search_space(params, groups)
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


# --- forests for multi-target tasks (regression, several heads, sequences) ---------------------------------------


def pooled_matrix(inputs: Inputs, batch_size: int = 256) -> np.ndarray:
    """Each row's mean and std over time of every feature dimension, as the forest sees them (float32)."""
    if isinstance(inputs, SequenceInputs):
        out = np.zeros((len(inputs), 2 * inputs.seqs.dims), dtype=np.float32)
        for batch in BucketBatchSampler(inputs.seqs.lengths, batch_size, shuffle=False):
            x, lengths = pad_batch([inputs.seqs[i] for i in batch])
            out[batch] = masked_pooled_features(x, lengths).numpy()
        return out
    return pool_array(inputs.x.cpu().numpy())


def _fill_missing(y: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Missing target cells take the column's training mean (0 when standardized): forests need complete rows."""
    y = y.copy()
    for j in range(y.shape[1]):
        y[~valid[:, j], j] = y[valid[:, j], j].mean() if valid[:, j].any() else 0.0
    return y


def task_loss_scorer(specs: list[TargetSpec]) -> Any:
    """Negative weighted task loss (MSE or Huber per target) of a multi-output regression: the search score."""

    def loss(y_true: np.ndarray, y_pred: np.ndarray) -> float:
        y_true, y_pred = np.atleast_2d(y_true.T).T, np.atleast_2d(y_pred.T).T
        total = 0.0
        for j, spec in enumerate(specs):
            err = y_pred[:, j] - y_true[:, j]
            if spec.loss == "huber":
                d = spec.huber_delta
                per = np.where(np.abs(err) <= d, 0.5 * err**2, d * (np.abs(err) - 0.5 * d))
            else:
                per = err**2
            total += spec.weight * float(per.mean())
        return total

    return make_scorer(loss, greater_is_better=False)


def _forest_kwargs(params: Params, best: dict[str, Any] | None) -> dict[str, Any]:
    cfg = params.model.rf
    kwargs = {"n_estimators": cfg.n_estimators, "max_depth": cfg.max_depth, "max_features": cfg.max_features,
              "min_samples_leaf": cfg.min_samples_leaf, "bootstrap": cfg.bootstrap,
              "random_state": params.base.seed, "n_jobs": worker_count(params.base.workers)}
    return {**kwargs, **(best or {})}


def _search_regressor(params: Params, specs: list[TargetSpec], x: np.ndarray, y: np.ndarray,
                      groups: np.ndarray) -> RandomizedSearchCV:
    """RandomizedSearchCV over ``model.rf.search``, grouped folds, scored by the task's regression loss."""
    cfg, space = _search_space(params, groups)
    search = RandomizedSearchCV(
        RandomForestRegressor(**_forest_kwargs(params, None)), space, n_iter=cfg.n_iter,
        scoring=task_loss_scorer(specs), refit=True,
        cv=GroupKFold(n_splits=cfg.cv_folds, shuffle=True, random_state=params.base.seed),
        random_state=params.base.seed, n_jobs=1,  # the forest itself already uses base.workers cores
    )
    return search.fit(x, y, groups=groups)


def fit_forest_heads(params: Params, model: nn.Module, specs: list[TargetSpec], data: dict[str, RoleData],
                     groups: np.ndarray, live_dir: Path) -> dict[str, Any]:
    """Fit the forests of a multi-target task (:class:`ForestHeads`) on the train role and log the fit.

    Regression targets share one multi-output forest (tuned by ``model.rf.search`` when enabled, scored by
    the task loss on grouped folds); each classification target gets its own forest with the same settings.
    """
    heads = model.net
    if not isinstance(heads, ForestHeads):
        raise BaselineError(f"fit_forest_heads needs model.name 'rf' with several targets or on sequences, got "
                            f"'{params.model.name}'")
    train = data["train"]
    x = pooled_matrix(train.inputs)
    reg = [j for j, s in enumerate(specs) if not s.is_classification]
    search, best = None, None
    if reg:
        y_reg = _fill_missing(train.y[:, reg], train.valid[:, reg])
        reg_specs = [specs[j] for j in reg]
        if params.model.rf.search.enabled:
            search = _search_regressor(params, reg_specs, x, y_reg, groups)
            best = search.best_params_
            forest = search.best_estimator_
        elif not heads.per_target:
            forest = RandomForestRegressor(**_forest_kwargs(params, None)).fit(x, y_reg)
        if heads.per_target:  # the searched settings, one forest per target on the rows that hold its value
            for j in reg:
                rows = train.valid[:, j]
                single = RandomForestRegressor(**_forest_kwargs(params, best)).fit(x[rows], train.y[rows, j])
                heads.forests[specs[j].name].load_forest(single)
        else:
            heads.forests[ForestHeads.REGRESSION].load_forest(forest)
    for j, spec in enumerate(specs):
        if spec.is_classification:
            rows = train.valid[:, j]
            clf = RandomForestClassifier(
                class_weight="balanced" if spec.class_weights else None, **_forest_kwargs(params, best))
            heads.forests[spec.name].load_forest(clf.fit(x[rows], train.y[rows, j].astype(np.int64)))
    loss_fn = make_task_loss(specs, train.y, train.valid)
    train_out = train.inputs.predict(model, params.evaluate.batch_size)
    val_out = data["val"].inputs.predict(model, params.evaluate.batch_size)
    record = {"train/loss": float(loss_fn(train_out, torch.from_numpy(train.y), torch.from_numpy(train.valid))),
              **validation_record(specs, loss_fn, val_out, data["val"].y, data["val"].valid)}
    monitor = monitor_for(specs)
    summary: dict[str, Any] = {f"best_val_{monitor.name}": record[f"val/{monitor.name}"],
                               "n_trees": sum(f.n_trees for f in heads.forests.values())}
    with Live(dir=str(live_dir), save_dvc_exp=False, dvcyaml=False) as live:
        for name, value in record.items():
            live.log_metric(name, value)
        live.next_step()
        live.summary[f"best_val_{monitor.name}"] = record[f"val/{monitor.name}"]
        cv_path = Path(live_dir) / CV_RESULTS
        cv_path.unlink(missing_ok=True)
        if search is not None:
            live.summary["best_cv_loss"] = -float(search.best_score_)
            write_csv(cv_path, _cv_table(search))
            summary["search"] = {"best_params": search.best_params_, "best_cv_loss": -float(search.best_score_)}
    print("rf: " + ", ".join(f"{k}={v:.4f}" for k, v in record.items()))
    return summary
