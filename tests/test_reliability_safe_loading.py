"""Safe loading: no pickle of anything a user can swap; weights via safetensors or torch.load(weights_only=True)."""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path

import pytest
import torch

from _reliability import CLASSES
from fretlab.artifacts.modeldir import ModelDirError, load_model_dir, save_model_dir
from fretlab.train.loop import load_checkpoint

REPO = Path(__file__).resolve().parents[1]
BANNED_MODULES = {"pickle", "cPickle", "dill", "cloudpickle", "joblib", "shelve", "marshal"}


def _unsafe_loads(path: Path, root: Path = REPO) -> list[str]:
    """Unsafe deserialization in one Python file, found from its syntax tree (comments cannot hide or trigger it)."""
    rel = path.relative_to(root).as_posix()
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        where = f"{rel}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.Import | ast.ImportFrom):
            mods = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            found += [f"{where} imports {m}" for m in mods if m.split(".")[0] in BANNED_MODULES]
        if not isinstance(node, ast.Call):
            continue
        name = ast.unparse(node.func)
        kwargs = {k.arg: k.value for k in node.keywords}
        if name.endswith("torch.load"):
            flag = kwargs.get("weights_only")
            if not (isinstance(flag, ast.Constant) and flag.value is True):
                found.append(f"{where} torch.load without weights_only=True")
        if name in {"yaml.load", "yaml.unsafe_load", "yaml.full_load", "yaml.load_all", "yaml.unsafe_load_all"}:
            found.append(f"{where} {name} (use yaml.safe_load)")
        if name.endswith(("np.load", "numpy.load")):
            flag = kwargs.get("allow_pickle")
            if isinstance(flag, ast.Constant) and flag.value is True:
                found.append(f"{where} np.load(allow_pickle=True)")
        if name.endswith(("read_pickle", "to_pickle", "jit.load", "torch.package.PackageImporter")):
            found.append(f"{where} {name}")
    return found


def _python_files() -> list[Path]:
    return sorted(p for pattern in ("src/**/*.py", "stages/**/*.py", "scripts/**/*.py") for p in REPO.glob(pattern))


def test_no_pickle_unsafe_torch_load_or_unsafe_yaml_in_the_code():
    files = _python_files()
    assert any(p.as_posix().endswith("train/loop.py") for p in files)
    problems = [hit for f in files for hit in _unsafe_loads(f)]
    assert not problems, "unsafe deserialization:\n" + "\n".join(problems)


def test_the_scan_catches_each_unsafe_pattern(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text(textwrap.dedent("""
        import pickle
        from joblib import load
        import torch, yaml, numpy as np, pandas as pd

        def bad(p):
            torch.load(p)
            torch.load(p, weights_only=False)
            yaml.load(open(p), Loader=yaml.Loader)
            np.load(p, allow_pickle=True)
            pd.read_pickle(p)

        def good(p):
            torch.load(p, map_location="cpu", weights_only=True)
            yaml.safe_load(open(p))
            np.load(p, mmap_mode="r")
            # pickle.loads(x) in a comment is fine
    """), encoding="utf-8")
    assert len(_unsafe_loads(probe, tmp_path)) == 7


class _Payload:
    """Unpickling this would run code; weights_only loading must refuse it."""

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)


def test_checkpoint_with_pickled_objects_is_refused_not_executed(tmp_path, capsys):
    marker = tmp_path / "code_ran"
    ckpt = tmp_path / "last.pt"
    torch.save({"fingerprint": "fp", "model": {}, "evil": _Payload(marker)}, ckpt)
    assert load_checkpoint(ckpt, "fp") is None
    assert not marker.exists()
    assert "ignoring unreadable checkpoint" in capsys.readouterr().out


def test_truncated_or_foreign_checkpoints_mean_training_from_scratch(tmp_path, capsys):
    ckpt = tmp_path / "last.pt"
    torch.save({"fingerprint": "other", "epoch": 3}, ckpt)
    assert load_checkpoint(ckpt, "fp") is None
    assert "belongs to other params or features" in capsys.readouterr().out
    ckpt.write_bytes(ckpt.read_bytes()[:40])
    assert load_checkpoint(ckpt, "fp") is None
    torch.save({"fingerprint": "fp", "epoch": 3}, ckpt)
    assert load_checkpoint(ckpt, "fp")["epoch"] == 3


def test_model_dir_weights_must_be_safetensors(tmp_path):
    from fretlab.models.classifier import Classifier
    from fretlab.params import parse_params

    params = parse_params({"featurize": {"n_mels": 16}, "model": {"crnn": {"channels": [4], "pools": [[2, 2]],
                                                                           "rnn_hidden": 4, "head_hidden": 4}}})
    model = Classifier(params, 3)
    save_model_dir(tmp_path / "m", model, params, CLASSES, {})
    marker = tmp_path / "code_ran"
    torch.save({"evil": _Payload(marker)}, tmp_path / "m" / "model.safetensors")  # a pickle in disguise
    with pytest.raises(ModelDirError, match=r"model\.safetensors is not a readable safetensors file"):
        load_model_dir(tmp_path / "m")
    assert not marker.exists()
