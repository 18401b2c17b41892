"""The playlist-continuation recipe (recipes/playlists) end to end through DVC, on tiny params.

One module-scoped workspace: `dvc repro` (synthesize -> split_playlists -> train_recommender -> evaluate_recommender),
`dvc status`, then `fretlab recommend` on the trained model. The title-off variant is checked in test_recommend.py
and measured by scripts/playlists_results.py (a `dvc exp run` here would cost CI ~30 s more).
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pandas as pd
import pytest

from conftest import recipe_workspace

pytestmark = pytest.mark.integration

MODELS = ("set_transformer", "popularity", "item_knn", "title_only", "als")
TINY: dict[str, Any] = {
    "synthesize_playlists": {"n_songs": 120, "n_artists": 14, "n_users": 30, "n_playlists": 240, "length": [4, 12]},
    "recommender": {"embedding": 16, "song_hidden": 16, "sab_blocks": 1, "title_buckets": 256, "negatives": 8,
                    "epochs": 2, "batch_size": 32},
    "recommender_baselines": {"knn_neighbours": 20, "als_factors": 8, "als_iterations": 3},
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    ws = recipe_workspace(tmp_path_factory.mktemp("playlists"), "playlists", TINY)
    recipe = ws.root
    out: dict[str, Any] = {"repro": ws.run("dvc", "repro").stdout}
    out["status"] = json.loads(ws.run("dvc", "status", "--json").stdout or "{}")
    out["test"] = json.loads((recipe / "metrics" / "test.json").read_text())
    out["split"] = pd.read_csv(recipe / "data" / "split" / "playlists.csv", keep_default_na=False)
    out["plots"] = pd.read_csv(recipe / "plots" / "models.csv")
    songs = pd.read_csv(recipe / "data" / "split" / "songs.csv")["song_id"].tolist()
    (recipe / "mine.txt").write_text(f"title: gym 💪\n{songs[0]}\n{songs[1]}\n", encoding="utf-8")
    out["recommend"] = subprocess.run([sys.executable, "-m", "fretlab.app.cli", "recommend", "mine.txt", "-k", "4"],
                                      cwd=recipe, env=ws.env, text=True, capture_output=True)
    out["songs"] = songs[:2]
    return out


def test_repro_runs_every_stage_and_leaves_a_clean_status(runs):
    for stage in ("synthesize", "split_playlists", "train_recommender", "evaluate_recommender"):
        assert f"Running stage '{stage}'" in runs["repro"], runs["repro"]
    assert runs["status"] == {}


def test_every_model_is_scored_on_the_same_hidden_songs(runs):
    split = runs["split"]
    test = split[split["split"] == "test"]
    assert set(runs["test"]) == set(MODELS) and runs["plots"]["model"].tolist() == list(MODELS)
    for name in MODELS:
        m = runs["test"][name]
        assert m["n_playlists"] == len(test)
        assert {"r_precision_hidden", "r_precision_all", "ndcg@10", "recall@10", "coverage@10",
                "popular_share@10"} <= set(m)
        assert set(m["r_precision_hidden_by_title"]) == {"informative", "uninformative"}
        assert 0.0 <= m["r_precision_hidden"] <= 1.0
    assert (test["hidden"].str.len() > 0).all() and (split.loc[split["split"] == "train", "hidden"] == "").all()
    # popularity recommends the 10 most played songs not in the playlist: at most 10 + 6 visible songs overall,
    # and the top 1 % (1 song of 120) takes one slot of 10 wherever it is not visible
    pop = runs["test"]["popularity"]
    assert 10 / 120 <= pop["coverage@10"] <= 16 / 120
    assert 0.05 < pop["popular_share@10"] <= 0.1


def test_recommend_runs_on_the_trained_model(runs):
    proc = runs["recommend"]
    assert proc.returncode == 0, proc.stderr
    picks = [r["song_id"] for r in json.loads(proc.stdout)["recommendations"]]
    assert len(picks) == 4 and not set(picks) & set(runs["songs"])
