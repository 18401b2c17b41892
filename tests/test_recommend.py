"""Playlist continuation (recipes/playlists): losses, metrics, sampling, generator, split, `fretlab recommend`."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.metrics import ndcg_score

from fretlab.app.cli import main as cli
from fretlab.params import PlaylistSplit, Recommender, SynthesizePlaylists, load_params, parse_params
from fretlab.recommend.data import hide_songs, split_playlists
from fretlab.recommend.losses import bce_loss, softmax_loss, warp_loss
from fretlab.recommend.metrics import coverage, ndcg_at_k, popular_share, popular_songs, r_precision, recall_at_k
from fretlab.recommend.model import SetTransformer, title_batch, title_item_tokens
from fretlab.recommend.modeldir import load_recommender, save_recommender
from fretlab.recommend.sampling import top_p
from fretlab.recommend.synthetic import THEMES, WORDS, make_catalogue, make_playlists
from fretlab.recommend.titles import words
from fretlab.recommend.training import (
    cooccurrence_cosine,
    length_buckets,
    make_optimizer,
    mask_playlist,
    title_song_distribution,
)

REPO = Path(__file__).resolve().parents[1]

# --- the hybrid WARP loss on a 4-song vocabulary, by hand ------------------------------------------------------
# scores s = [2.0, 0.5, 1.0, -1.0]; positives: song 0 (visible, seen weight 0.5) and song 1 (hidden, weight 1.0)
# negatives: song 0 -> [2, 3]; song 1 -> [2, 0], where 0 is in the playlist, so that sample is invalid
LOGITS = torch.tensor([[2.0, 0.5, 1.0, -1.0]])
POS, POS_W = torch.tensor([[0, 1]]), torch.tensor([[0.5, 1.0]])
NEG = torch.tensor([[[2, 3], [2, 0]]])
VALID = torch.tensor([[[True, True], [True, False]]])


@pytest.mark.parametrize(("margin", "rank_weighting", "expected"), [
    # margin 1: song 0 clears both negatives (1-2+1 = 0, 1-2-1 < 0); song 1 vs song 2: 1-0.5+1 = 1.5 (its only valid
    # negative). (0.5*0 + 1.0*1.5) / (0.5+1.0) = 1.0
    (1.0, False, 1.0),
    # rank weighting: song 1 violates 1 of 1 valid negatives; V - |playlist| = 2 -> rank 2 -> log(1+2); song 0: log(1)=0
    (1.0, True, 1.5 * math.log(3.0) / 1.5),
    # margin 0.5: song 1 vs song 2: 0.5-0.5+1 = 1.0 -> 1.0*1.0 / 1.5
    (0.5, False, 1.0 / 1.5),
])
def test_warp_loss_matches_a_hand_computed_value(margin, rank_weighting, expected):
    loss = warp_loss(LOGITS, POS, POS_W, NEG, VALID, margin, rank_weighting)
    assert float(loss) == pytest.approx(expected, rel=1e-6)


def test_warp_seen_and_hidden_weights_shift_the_loss():
    # the hidden song carries all the hinge: raising the seen weight (song 0, hinge 0) dilutes it
    assert float(warp_loss(LOGITS, POS, torch.tensor([[1.5, 1.0]]), NEG, VALID, 1.0, False)) == pytest.approx(1.5 / 2.5)
    assert float(warp_loss(LOGITS, POS, torch.tensor([[0.5, 0.0]]), NEG, VALID, 1.0, False)) == 0.0


def test_bce_and_softmax_variants_by_hand():
    logits = torch.tensor([[0.0, math.log(3.0)]])  # softmax: [1/4, 3/4]
    weights = torch.tensor([[0.0, 1.0]])
    assert float(softmax_loss(logits, weights)) == pytest.approx(-math.log(0.75))
    # positive song 1: -log sigmoid(log 3) = log(4/3); negative song 0: -log(1 - 0.5) = log 2
    assert float(bce_loss(logits, weights)) == pytest.approx(math.log(4 / 3) + math.log(2.0))


# --- metrics -------------------------------------------------------------------------------------------------------
def test_r_precision_by_hand():
    assert r_precision([5, 3, 9, 1, 7], [3, 7, 8]) == pytest.approx(1 / 3)  # R = 3: {5, 3, 9} holds only 3
    assert r_precision([7, 3, 8, 1], [3, 7, 8]) == 1.0
    assert r_precision([1, 2], []) == 0.0


def test_ndcg_matches_sklearn_and_recall_by_hand():
    rng = np.random.default_rng(0)
    for _ in range(20):
        scores = rng.permutation(30).astype(float)
        relevant = rng.choice(30, size=int(rng.integers(1, 8)), replace=False)
        truth = np.isin(np.arange(30), relevant).astype(float)
        ranked = np.argsort(-scores)
        for k in (1, 5, 10):
            assert ndcg_at_k(ranked, relevant, k) == pytest.approx(ndcg_score([truth], [scores], k=k))
    assert recall_at_k([4, 2, 0, 6], [2, 6], 3) == 0.5


def test_coverage_and_popular_share_by_hand():
    recs = np.array([[0, 1], [0, 2]])
    assert coverage(recs, 10) == pytest.approx(0.3)
    counts = np.array([1, 9, 3, 0, 0, 0, 0, 0, 0, 0])
    assert popular_songs(counts, 0.1).tolist() == [1]  # 1 % of 10 songs rounds to 1, at least one
    assert popular_songs(counts, 0.2).tolist() == [1, 2]
    assert popular_share(recs, np.array([0])) == 0.5  # song 0 takes 2 of the 4 slots


# --- sampling, batching, masking ---------------------------------------------------------------------------------
def test_top_p_draws_only_from_the_nucleus():
    scores = torch.log(torch.tensor([[0.5, 0.3, 0.1, 0.05, 0.05]]))
    gen = torch.Generator().manual_seed(0)
    for _ in range(20):  # p = 0.7: the nucleus is songs 0 and 1 (0.5 < 0.7, 0.8 >= 0.7)
        assert set(top_p(scores, 1, 0.7, gen)[0].tolist()) <= {0, 1}
    assert sorted(top_p(scores, 2, 0.7, gen)[0].tolist()) == [0, 1]
    assert len(set(top_p(scores, 3, 0.1, gen)[0].tolist())) == 3  # k widens a too-small nucleus


def test_buckets_keep_similar_lengths_and_cover_every_playlist():
    lengths = np.array([5, 6, 7, 15, 16, 30, 31, 32, 5, 6])
    batches = length_buckets(lengths, 8, 2, np.random.default_rng(0))
    assert sorted(np.concatenate(batches).tolist()) == list(range(10))
    assert all(len(set(lengths[b] // 8)) == 1 for b in batches)


def test_masking_hides_a_share_in_range_and_keeps_one_visible():
    rng = np.random.default_rng(0)
    songs = np.arange(20)
    for _ in range(50):
        visible, hidden = mask_playlist(songs, (0.1, 0.5), rng)
        assert 2 <= len(hidden) <= 10 and len(visible) + len(hidden) == 20
        assert not set(visible) & set(hidden)
    assert [len(p) for p in mask_playlist(np.arange(2), (0.1, 0.2), rng)] == [1, 1]


# --- the generator and the split ---------------------------------------------------------------------------------
TINY = SynthesizePlaylists(n_songs=200, n_artists=20, n_users=30, n_playlists=300, length=(5, 15))


@pytest.fixture(scope="module")
def synthetic():
    songs = make_catalogue(TINY, 7)
    return songs, make_playlists(TINY, songs, 7)


def test_generator_has_popularity_skew_themed_songs_and_both_kinds_of_title(synthetic):
    songs, playlists = synthetic
    counts = np.bincount([int(s[1:]) for p in playlists["songs"] for s in p.split()], minlength=len(songs))
    top = np.sort(counts)[::-1]
    assert top[:10].sum() > 3 * 10 * counts.mean()  # Zipf: the 5 % most played songs take over 15 % of the plays
    by_id = songs.set_index("song_id")["theme"]
    on_theme = np.mean([np.mean([by_id[s] == t for s in p.split()])
                        for p, t in zip(playlists["songs"], playlists["theme"], strict=True)])
    assert 0.6 < on_theme < 0.99  # mostly the playlist's theme, with noise
    assert set(playlists["theme"]) <= set(THEMES)
    informative = playlists[playlists["title_informative"]]
    vocab = {w for t in THEMES for phrase in WORDS[t] for w in words(phrase)}
    hits = np.mean([bool(set(words(t)) & vocab) for t in informative["title"]])
    assert 0.4 < hits < 0.98  # theme words, except misspelled or emoji-only titles
    assert not any(set(words(t)) & vocab for t in playlists.loc[~playlists["title_informative"], "title"])


def test_split_is_by_playlist_and_hidden_sets_are_seeded(synthetic):
    _, playlists = synthetic
    cfg = PlaylistSplit(hidden_share=0.5)
    a, b = split_playlists(playlists, cfg, 3), split_playlists(playlists, cfg, 3)
    assert a.equals(b)
    assert (a["hidden"] == "").eq(a["split"] == "train").all()
    held = a[a["split"] != "train"]
    for songs, hidden in zip(held["songs"], held["hidden"], strict=True):
        s, h = songs.split(), hidden.split()
        assert set(h) < set(s) and len(h) == max(1, min(round(0.5 * len(s)), len(s) - 1))
    other = hide_songs([s.split() for s in playlists["songs"]], a["split"].to_numpy(), cfg, 4)
    assert other != a["hidden"].tolist()  # another seed, other hidden songs


def test_params_sections_are_typed_and_optional():
    load_params(REPO / "params.yaml")  # the guitar default needs none of the new sections
    with pytest.raises(ValueError, match=r"did you mean 'recommender\.negatives'"):
        parse_params({"recommender": {"negative": 10}})
    with pytest.raises(ValueError, match="mask_ratio"):
        parse_params({"recommender": {"mask_ratio": [0.5, 0.2]}})


# --- the model, the title switch and `fretlab recommend` ------------------------------------------------------------
def _model(title: bool, n_songs: int = 30) -> SetTransformer:
    torch.manual_seed(0)
    cfg = Recommender(embedding=16, song_hidden=16, heads=4, sab_blocks=1, title=title, title_buckets=64)
    return SetTransformer(cfg, torch.randn(n_songs, 11)).eval()


def test_title_off_ignores_the_title_and_title_on_uses_it():
    songs = torch.tensor([[0, 1, 2], [0, 1, 2]])
    on, off = _model(True), _model(False)
    titles = ["gym workout", "sad songs"]
    with torch.no_grad():
        a = on(songs, title_batch(titles, on.cfg))
        b = off(songs, title_batch(titles, off.cfg))
    assert not torch.allclose(a[0], a[1])
    assert torch.allclose(b[0], b[1])
    assert title_batch(titles, off.cfg).count_nonzero() == 0


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    out = tmp_path / "model"
    save_recommender(out, _model(True), [f"s{i:05d}" for i in range(30)], {"best_epoch": 1})
    return out


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    rc = cli(["recommend", *argv])
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_recommend_prints_k_new_songs_and_samples_with_top_p(tmp_path, model_dir, capsys):
    playlist = tmp_path / "p.txt"
    playlist.write_text("# my run\ntitle: Gym 💪\ns00001\ns00002  # a comment\n\ns00003\n", encoding="utf-8")
    rc, out, _ = _run(capsys, str(playlist), "--model-dir", str(model_dir), "-k", "5")
    result = json.loads(out)
    picks = [r["song_id"] for r in result["recommendations"]]
    assert rc == 0 and result["title"] == "Gym 💪" and result["n_songs"] == 3
    assert len(set(picks)) == 5 and not set(picks) & {"s00001", "s00002", "s00003"}
    scores = [r["score"] for r in result["recommendations"]]
    assert scores == sorted(scores, reverse=True)
    model, _ = load_recommender(model_dir)
    assert model.n_songs == 30
    sampled = [json.loads(_run(capsys, str(playlist), "--model-dir", str(model_dir), "-k", "5", "--top-p", "0.9",
                               "--seed", str(s))[1]) for s in (1, 1, 2)]
    assert sampled[0] == sampled[1] and sampled[0]["mode"] == "top_p"
    assert not {r["song_id"] for r in sampled[2]["recommendations"]} & {"s00001", "s00002", "s00003"}


def test_recommend_from_a_title_alone(tmp_path, model_dir, capsys):
    playlist = tmp_path / "title_only.txt"
    playlist.write_text("title: rainy day\n")
    rc, out, _ = _run(capsys, str(playlist), "--model-dir", str(model_dir), "-k", "3")
    assert rc == 0 and len(json.loads(out)["recommendations"]) == 3


@pytest.mark.parametrize(("text", "message"), [
    ("s00001\ns99999\nzzz\n", "2 song id(s) not in the model's catalogue: s99999, zzz"),
    ("", "empty playlist"),
    ("# only a comment\n\n", "empty playlist"),
    ("title: x\ns00001\ns00002, s00003\n", "line 3: malformed line 's00002, s00003'"),
    ("title: a\ntitle: b\n", "line 2: a second title"),
])
def test_recommend_bad_input_is_a_one_line_error_with_exit_status_2(tmp_path, model_dir, capsys, text, message):
    playlist = tmp_path / "bad.txt"
    playlist.write_text(text)
    rc, out, err = _run(capsys, str(playlist), "--model-dir", str(model_dir))
    assert rc == 2 and out == ""
    assert message in err and str(playlist) in err and err.count("\n") == 1


def test_recommend_without_a_model_dir_names_it(tmp_path, capsys):
    playlist = tmp_path / "p.txt"
    playlist.write_text("s00001\n")
    rc, _, err = _run(capsys, str(playlist), "--model-dir", str(tmp_path / "nowhere"))
    assert rc == 2 and "missing model.safetensors" in err


def test_item_item_term_is_the_mean_over_visible_songs_without_the_diagonal():
    model = SetTransformer(Recommender(embedding=8, song_hidden=8, sab_blocks=1, heads=2, item_item=True),
                           torch.rand(3, 4))
    with torch.no_grad():
        model.item_item.copy_(torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]]))
    # visible {0, 1}: s0 = (0 + 4) / 2, s1 = (2 + 0) / 2, s2 = (3 + 6) / 2; visible {2} (padded): row 2, diagonal 0
    got = model.item_item_scores(torch.tensor([[0, 1], [2, -1]]))
    assert torch.allclose(got, torch.tensor([[2.0, 1.0, 4.5], [7.0, 8.0, 0.0]]))


def test_cooccurrence_warm_start_is_the_training_cosine_by_hand():
    # playlists {0, 1} and {0, 1, 2}: songs 0 and 1 are in both (cosine 1), song 2 in one (cosine 1/sqrt 2)
    sim = cooccurrence_cosine([np.array([0, 1]), np.array([0, 1, 2])], 3)
    r = 1 / math.sqrt(2)
    assert torch.allclose(sim, torch.tensor([[0.0, 1.0, r], [1.0, 0.0, r], [r, r, 0.0]]))


# --- the title prior (title_item) and the zero-initialized head ---------------------------------------------------
WIDE = {"embedding": 8, "song_hidden": 8, "sab_blocks": 1, "heads": 2, "title_encoder": "words", "title_buckets": 64,
        "title_item": True, "title_item_buckets": 16, "head_zero_init": True}


def test_title_prior_is_p_song_given_token_by_hand():
    cfg = Recommender(**WIDE)
    titles, playlists = ["gym", "gym run", "sad"], [np.array([0, 1]), np.array([1, 2]), np.array([3])]
    prior = title_song_distribution(titles, playlists, 4, cfg)
    row = {w: int(title_item_tokens(title_batch([w], cfg)[0], cfg)[0]) for w in ("gym", "run", "sad")}
    assert len(set(row.values())) == 3, "the test words must not collide in 16 buckets"
    # "gym" titles hold songs {0, 1} and {1, 2}: counts 1, 2, 1 of 4; "run": {1, 2}; "sad": {3}
    assert torch.allclose(prior[row["gym"]], torch.tensor([0.25, 0.5, 0.25, 0.0]))
    assert torch.allclose(prior[row["run"]], torch.tensor([0.0, 0.5, 0.5, 0.0]))
    assert torch.allclose(prior[row["sad"]], torch.tensor([0.0, 0.0, 0.0, 1.0]))
    assert prior[0].abs().sum() == 0  # padding


def test_with_a_silent_head_the_logits_are_the_title_prior_and_title_off_drops_it():
    cfg = Recommender(**WIDE)
    model = SetTransformer(cfg, torch.rand(4, 3)).eval()
    prior = title_song_distribution(["gym", "gym run", "sad"], [np.array([0, 1]), np.array([1, 2]), np.array([3])],
                                    4, cfg)
    with torch.no_grad():
        model.title_item.weight.copy_(prior)
        songs = torch.tensor([[0], [0], [0]])
        logits = model(songs, title_batch(["gym run", "", "sad"], cfg))
    def tokens(title: str) -> torch.Tensor:
        return title_item_tokens(title_batch([title], cfg)[0], cfg)

    assert torch.allclose(logits[0], prior[tokens("gym run")].mean(0))  # the mean over the title's tokens, no more
    assert torch.allclose(logits[1], torch.zeros(4))  # no title: the prior is masked out
    assert torch.allclose(logits[2], prior[tokens("sad")].mean(0))
    off = SetTransformer(cfg.model_copy(update={"title": False}), torch.rand(4, 3)).eval()
    with torch.no_grad():
        off.title_item.weight.copy_(prior)
        assert torch.allclose(off(songs, title_batch(["gym run", "", "sad"], off.cfg)), torch.zeros(3, 4))


def test_a_fixed_title_prior_is_not_trained():
    cfg = Recommender(**{**WIDE, "title_item_train": False})
    model = SetTransformer(cfg, torch.rand(4, 3))
    opt = make_optimizer(model, cfg)
    trained = {id(p) for group in opt.param_groups for p in group["params"]}
    assert id(model.title_item.weight) not in trained and id(model.head.weight) in trained
    before = model.title_item.weight.detach().clone() + 1.0
    with torch.no_grad():
        model.title_item.weight.copy_(before)
    loss = model(torch.tensor([[0, 1]]), title_batch(["gym"], cfg)).square().sum()
    loss.backward()
    opt.step()
    assert torch.equal(model.title_item.weight, before)
