"""The CUDA code path, exercised on the CPU: bf16 autocast, device-resident batches, torch.compile, channels-last."""

from __future__ import annotations

import functools
import warnings

import numpy as np
import pandas as pd
import pytest
import torch

from fretlab.artifacts.modeldir import load_model_dir, save_model_dir
from fretlab.models.classifier import Classifier
from fretlab.params import parse_params
from fretlab.runtime import autocast, batches, predict_logits, to_device_tensor
from fretlab.tasks.targets import resolve_targets
from fretlab.train.inputs import RoleData
from fretlab.train.loop import train_model

TINY = {
    "featurize": {"n_mels": 32},
    "model": {"crnn": {"channels": [8, 16], "pools": [[4, 2], [4, 2]], "rnn_hidden": 16, "head_hidden": 16}},
    "train": {"epochs": 2, "batch_size": 16},
}



def _roles(x, y):
    return {"train": RoleData.windows(x, y), "val": RoleData.windows(x, y)}

def _model(overrides: dict | None = None) -> tuple[Classifier, object]:
    params = parse_params({**TINY, **(overrides or {})})
    torch.manual_seed(0)
    return Classifier(params, 3), params


def test_autocast_is_bf16_on_cuda_and_off_elsewhere():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "CUDA is not available" on CPU-only machines
        ctx = autocast(torch.device("cuda"), True)
    assert isinstance(ctx, torch.autocast)
    assert ctx.device == "cuda" and ctx.fast_dtype == torch.bfloat16
    assert not isinstance(autocast(torch.device("cuda"), False), torch.autocast)
    assert not isinstance(autocast(torch.device("cpu"), True), torch.autocast)


def test_crnn_trains_and_predicts_under_bf16_autocast():
    """The same ops (conv, GRU, head) run in bf16 on CPU autocast as on CUDA: finite, close to fp32."""
    model, _ = _model()
    x = torch.randn(8, 1, 32, 87) * 10 - 40
    model.fit_standardization(x)
    model.eval()
    with torch.no_grad():
        ref = model(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = model(x)
    assert low.dtype == torch.bfloat16
    assert torch.allclose(low.float(), ref, atol=0.05, rtol=0.05)

    model.train()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = torch.nn.functional.cross_entropy(model(x).float(), torch.tensor([0, 1, 2, 0, 1, 2, 0, 1]))
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert all(g.dtype == torch.float32 for g in grads)  # master weights stay fp32


def test_batches_are_built_on_the_features_device():
    gen = torch.Generator().manual_seed(0)
    on_cpu = list(batches(10, 4, gen))
    meta = list(batches(10, 4, torch.Generator().manual_seed(0), torch.device("meta")))
    assert [b.device.type for b in meta] == ["meta"] * 3  # indices go to the device once, not per batch
    assert [len(b) for b in meta] == [len(b) for b in on_cpu] == [4, 4, 2]


def test_predict_logits_matches_one_big_forward():
    model, _ = _model()
    x = to_device_tensor(np.random.default_rng(0).normal(size=(37, 1, 32, 87)).astype(np.float32), torch.device("cpu"))
    model.eval()
    with torch.no_grad():
        whole = model(x)
    assert torch.allclose(predict_logits(model, x, batch_size=8), whole, atol=1e-5)


def _write_cache(folder, rng, n):
    x = rng.normal(size=(n, 1, 32, 87)).astype(np.float32)
    y = np.arange(n) % 3
    for split in ("train", "val"):
        np.save(folder / f"{split}.npy", x)
        pd.DataFrame({"note_id": [f"n{i}" for i in range(n)], "label": y}).to_csv(folder / f"{split}.csv", index=False)
    return x, y


def test_train_compile_option_runs_the_compiled_model(tmp_path, monkeypatch):
    """``train.compile`` wraps the model in torch.compile. CI uses the aot_eager backend: it traces
    forward and backward through dynamo/AOTAutograd like inductor does, minus the C++ code generation
    (minutes on 2 cores)."""
    calls = []
    real = torch.compile

    def compile_aot_eager(model, **kwargs):
        calls.append(model)
        return real(model, **{**kwargs, "backend": "aot_eager"})

    monkeypatch.setattr(torch, "compile", functools.wraps(real)(compile_aot_eager))
    x, y = _write_cache(tmp_path, np.random.default_rng(0), 24)
    model, params = _model({"train": {**TINY["train"], "compile": True}})
    state = train_model(params, model, _roles(x, y), resolve_targets(params), tmp_path / "ckpt", tmp_path / "live",
                        tmp_path)
    assert len(calls) == 1 and calls[0] is model
    assert state.epoch == 2 and all(np.isfinite(r["train/loss"]) for r in state.history)
    # checkpoints hold the plain module's weights (no "_orig_mod." prefixes), so resume and export work
    blob = torch.load(tmp_path / "ckpt/last.pt", weights_only=True)
    assert set(blob["model"]) == set(model.state_dict())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_features_stay_on_the_gpu():
    x = to_device_tensor(np.zeros((4, 1, 8, 8), np.float32), torch.device("cuda"))
    assert x.is_cuda
    assert all(b.is_cuda for b in batches(4, 2, torch.Generator().manual_seed(0), x.device))


def test_features_too_big_for_the_gpu_stay_on_the_host(monkeypatch):
    """Half the free GPU memory is the budget for the cache; beyond it, batches are gathered on the host."""
    x = np.zeros((64, 1, 32, 87), np.float32)  # 712 KB
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda *_: (1_000_000, 8_000_000))  # 1 MB free
    kept = to_device_tensor(x, torch.device("cuda"))
    assert kept.device.type == "cpu" and kept.shape == x.shape


def test_channels_last_option_trains_nhwc_and_saves_a_loadable_model(tmp_path):
    """``train.channels_last`` changes the convolutions' memory layout only: the run trains, checkpoints
    and exports like the default one; the same weights give the same logits in either layout."""
    x, y = _write_cache(tmp_path, np.random.default_rng(0), 24)
    losses = {}
    for flag in (False, True):
        model, params = _model({"train": {**TINY["train"], "channels_last": flag}})
        out = tmp_path / str(flag)
        state = train_model(params, model, _roles(x, y), resolve_targets(params), out / "ckpt", out / "live",
                            tmp_path)
        # with one input channel both layouts have the same strides, so look at the later blocks
        convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d) and m.in_channels > 1]
        assert convs and all(c.weight.is_contiguous() != flag for c in convs)
        losses[flag] = state.history[0]["train/loss"]
        blob = torch.load(out / "ckpt/last.pt", weights_only=True)
        assert set(blob["model"]) == set(model.state_dict())
        save_model_dir(out / "model", model, params, ["a", "b", "c"], {})  # safetensors needs contiguous tensors
        assert load_model_dir(out / "model")[0] is not None
    # Adam turns last-bit gradient differences of near-zero gradients into whole steps, so runs drift apart a little
    assert losses[True] == pytest.approx(losses[False], rel=0.05)
    model, _ = _model()
    model.eval()
    plain = predict_logits(model, torch.from_numpy(x), 8)
    model.to(memory_format=torch.channels_last)
    np.testing.assert_allclose(predict_logits(model, torch.from_numpy(x), 8).numpy(), plain.numpy(), atol=1e-5)
