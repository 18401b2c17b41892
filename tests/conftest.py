"""Shared fixtures: tiny params and a throwaway git+DVC copy of the working tree."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = str(Path(sys.executable).parent)

# Small enough for CI's 2 cores, large enough for every class to land in every split.
TINY_PARAMS: dict[str, Any] = {
    "synthesize": {"n_events": 200, "n_guitars": 5, "lick_fraction": 0.3},
    "featurize": {"n_mels": 32, "batch_size": 32},
    "model": {"crnn": {"channels": [8, 16], "pools": [[4, 2], [4, 2]], "rnn_hidden": 16, "head_hidden": 16},
              "rf": {"n_estimators": 20}},
    "train": {"epochs": 2, "batch_size": 32},
    "base": {"workers": 1},
    # the check set at 1 velocity, every octave, 0.5-s notes: 2 to 4 pitches per program
    "checkset": {"pitch_step": 12, "velocities": [100], "note_sec": 0.4, "release_sec": 0.1},
}


def pytest_configure(config: pytest.Config) -> None:
    """Before the test processes start: fill numba's cache of librosa's kernels under a lock, so that no two
    processes compile it at once (numba/numba#10128 segfaults the next reader of a mixed pair)."""
    if not hasattr(config, "workerinput"):  # the xdist controller, or a plain run; workers only read the cache
        from fretlab.audio.jit_cache import warm_librosa_kernels

        warm_librosa_kernels()


def deep_update(base: dict[str, Any], updates: dict[str, Any]) -> dict[str, Any]:
    """Recursively merge ``updates`` into ``base`` (in place) and return it."""
    for key, value in updates.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            deep_update(base[key], value)
        else:
            base[key] = value
    return base


def tool_env() -> dict[str, str]:
    """Environment where `python`/`dvc` resolve to this venv and git can commit."""
    env = dict(os.environ)
    env["PATH"] = VENV_BIN + os.pathsep + env.get("PATH", "")
    env.update(GIT_AUTHOR_NAME="fretlab-test", GIT_AUTHOR_EMAIL="test@fretlab.invalid",
               GIT_COMMITTER_NAME="fretlab-test", GIT_COMMITTER_EMAIL="test@fretlab.invalid",
               DVC_NO_ANALYTICS="1", PYTHONUNBUFFERED="1")
    return env


class Workspace:
    """A temporary git repository holding a copy of this project's working tree."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.env = tool_env()

    def run(self, *cmd: str, check: bool = True, timeout: float = 900) -> subprocess.CompletedProcess[str]:
        """Run a command in the workspace; on failure, show its output."""
        proc = subprocess.run(cmd, cwd=self.root, env=self.env, text=True, capture_output=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(f"{' '.join(cmd)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
        return proc

    def params(self) -> dict[str, Any]:
        return yaml.safe_load((self.root / "params.yaml").read_text())

    def set_params(self, updates: dict[str, Any], commit: bool = True) -> None:
        """Merge ``updates`` into params.yaml (and commit, so experiments start from it)."""
        data = deep_update(self.params(), updates)
        (self.root / "params.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
        if commit:
            self.run("git", "add", "params.yaml")
            self.run("git", "commit", "-qm", "test params")


def copy_working_tree(dest: Path) -> None:
    """Copy tracked and untracked-but-not-ignored files (no DVC outputs, no venv)."""
    files = subprocess.run(["git", "ls-files", "-z", "-co", "--exclude-standard"], cwd=REPO, capture_output=True,
                           check=True).stdout.decode().split("\0")
    for rel in filter(None, files):
        src = REPO / rel
        if src.is_file():
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(src.read_bytes())


def new_workspace(root: Path, overrides: dict[str, Any] | None = None) -> Workspace:
    """A git repo at ``root`` with the project, tiny params merged with ``overrides``, committed."""
    root.mkdir()
    copy_working_tree(root)
    (root / "dvc.lock").unlink(missing_ok=True)
    ws = Workspace(root)
    ws.set_params(deep_update(yaml.safe_load(yaml.safe_dump(TINY_PARAMS)), overrides or {}), commit=False)
    ws.run("git", "init", "-q", "-b", "main")
    ws.run("git", "add", "-A")
    ws.run("git", "commit", "-qm", "workspace")
    return ws


@pytest.fixture
def make_workspace(tmp_path: Path) -> Callable[..., Workspace]:
    """Factory: a git repo with the project, tiny params merged with ``overrides``, committed."""

    def factory(overrides: dict[str, Any] | None = None, name: str = "ws") -> Workspace:
        return new_workspace(tmp_path / name, overrides)

    return factory


@pytest.fixture(scope="session")
def tiny_baseline(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project on :data:`TINY_PARAMS` (committed) after one ``dvc repro`` (outputs and dvc.lock not
    committed), run once per session: tests that start from that state copy it (:func:`baseline_workspace`)."""
    ws = new_workspace(tmp_path_factory.mktemp("baseline") / "ws")
    ws.run("dvc", "repro")
    return ws.root


@pytest.fixture
def baseline_workspace(tiny_baseline: Path, tmp_path: Path) -> Workspace:
    """A private copy of :func:`tiny_baseline`: git history, DVC cache, outputs and all (mtimes kept)."""
    return clone_baseline(tiny_baseline, tmp_path / "ws")


def clone_baseline(baseline: Path, dest: Path) -> Workspace:
    """Copy the baseline workspace to ``dest`` (for module-scoped fixtures, which cannot take tmp_path)."""
    shutil.copytree(baseline, dest, symlinks=True)
    return Workspace(dest)


RECIPE_OUTPUTS = ("dvc.lock", "metrics", "plots", "dvclive", "data", "models", "checkpoints", "dvc_plots")


def recipe_workspace(parent: Path, recipe: str, overrides: dict[str, Any]) -> Workspace:
    """A git repo with the project in which ``recipes/<recipe>`` starts from nothing, with ``overrides`` merged
    into its params.yaml and committed; every command runs in the recipe's directory, as the README says."""
    root = parent / "ws"
    root.mkdir()
    copy_working_tree(root)
    (root / "dvc.lock").unlink(missing_ok=True)
    here = root / "recipes" / recipe
    for leftover in RECIPE_OUTPUTS:  # a local run's outputs, copied with the working tree
        path = here / leftover
        shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
    ws = Workspace(here)
    params_file = here / "params.yaml"
    params_file.write_text(yaml.safe_dump(deep_update(yaml.safe_load(params_file.read_text()),
                                                      yaml.safe_load(yaml.safe_dump(overrides))), sort_keys=False))
    ws.run("git", "init", "-q", "-b", "main")
    ws.run("git", "add", "-A")
    ws.run("git", "commit", "-qm", "workspace")
    return ws


def write_untrained_model_dir(out: Path, params: Any, classes: list[str]) -> Path:
    """An untrained but complete model directory, written as the train stage writes one (seeded weights,
    standardization as after training, so the logits are not flat)."""
    import torch

    from fretlab.artifacts.modeldir import save_model_dir
    from fretlab.models.classifier import Classifier

    torch.manual_seed(0)
    model = Classifier(params, len(classes))
    with torch.no_grad():
        model.mean.fill_(-40.0)
        model.std.fill_(20.0)
    save_model_dir(out, model, params, classes, {"best_epoch": 1})
    return out
