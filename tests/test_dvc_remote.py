"""A local-directory DVC remote: pipeline outputs survive a push, a wiped cache and a pull."""

import hashlib
import shutil

import pytest

pytestmark = pytest.mark.integration


def _digest(folder):
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_push_then_pull_round_trips_through_a_local_remote(make_workspace, tmp_path):
    ws = make_workspace()
    ws.run("dvc", "repro", "synthesize")
    data = ws.root / "data/synthetic"
    before = _digest(data)
    assert any(name.endswith(".wav") for name in before)

    remote = tmp_path / "dvc-remote"
    ws.run("dvc", "remote", "add", "-d", "local", str(remote))
    ws.run("dvc", "push", "synthesize")
    assert any(p.is_file() for p in remote.rglob("*")), "push wrote nothing to the remote"

    # a fresh machine: no cache, no outputs; only git (dvc.lock) and the remote
    shutil.rmtree(ws.root / ".dvc/cache")
    shutil.rmtree(data)
    ws.run("dvc", "pull", "synthesize")
    assert _digest(data) == before
    status = ws.run("dvc", "status", "synthesize")
    assert "up to date" in status.stdout, status.stdout
