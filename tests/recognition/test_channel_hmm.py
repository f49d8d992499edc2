"""The channel HMM joined with the forest (``recognition.channel_hmm``): its inputs are the rebuilt HMM's, at
weight 0 it is that HMM, the exported file runs as the numpy reference does, and the CLI writes and scores it.
Simulated homes only (no real dataset in tests)."""

from __future__ import annotations

import json
from datetime import UTC
from pathlib import Path

import numpy as np
import pytest

from qilu_hub.recognition.channel_hmm import channel_columns, fit_channel_hmm
from qilu_hub.recognition.datasets import load_dataset
from qilu_hub.recognition.evaluation import (
    Home,
    channel_binary,
    figures,
    hmm_predictions,
    home_from_dataset,
    homes_training_set,
    with_channel_hmm,
)
from qilu_hub.recognition.features import DEFAULT_SPEC
from qilu_hub.recognition.review import review_windows
from qilu_hub.recognition.simulator import SimConfig, simulate
from qilu_hub.recognition.training import Matrix, TrainConfig, build_matrix, fit, to_onnx

CONFIG = TrainConfig(n_estimators=4, max_depth=6, n_jobs=1)


@pytest.fixture(scope="module")
def homes() -> list[Home]:
    return [home_from_dataset(f"sim{seed}", simulate(SimConfig(days=3, homes=1, seed=seed))) for seed in (1, 2)]


def test_the_hmms_binaries_are_columns_of_the_hubs_features(homes: list[Home]) -> None:
    for home in homes:
        binary = channel_binary(home)
        assert binary.any()
        np.testing.assert_array_equal(home.matrix.X[:, channel_columns(DEFAULT_SPEC)], binary)


def _joined(homes: list[Home], weight: float):  # type: ignore[no-untyped-def]
    train, test = homes
    keep = set(test.scenes)
    rows = homes_training_set([train], keep)
    forest = fit(rows.X, rows.y, CONFIG, sample_weight=rows.sample_weight)
    return forest, with_channel_hmm(forest, rows, CONFIG, [train], keep, weight)


def test_at_weight_zero_it_is_the_rebuilt_hmm_and_the_forest_weight_moves_it(homes: list[Home]) -> None:
    train, test = homes
    m = test.matrix
    forest, alone = _joined(homes, 0.0)
    hmm = hmm_predictions([train], test, set(test.scenes))["causal"]
    proba = forest.predict_proba(m.X)
    pred = np.asarray(alone.labels)[alone.posterior(m.X, proba, m.days).argmax(axis=1)]
    np.testing.assert_array_equal(pred, hmm)
    _, heavy = _joined(homes, 4.0)
    weighted = np.asarray(heavy.labels)[heavy.posterior(m.X, proba, m.days).argmax(axis=1)]
    by_forest = np.asarray(heavy.labels)[proba.argmax(axis=1)]
    assert (weighted != pred).any()
    assert (weighted == by_forest).mean() > (pred == by_forest).mean()  # the forest's evidence counts


def test_the_exported_model_and_its_decoder_give_the_reference_posterior(homes: list[Home], tmp_path: Path) -> None:
    from qilu_hub.recognition.runtime import SceneModel

    forest, joined = _joined(homes, 0.5)
    path = tmp_path / "joined.onnx"
    blob = to_onnx(forest, DEFAULT_SPEC, {"source": "test"}, channel_hmm=joined)
    assert to_onnx(forest, DEFAULT_SPEC, {"source": "test"}, channel_hmm=joined) == blob  # reproducible, byte for byte
    path.write_bytes(blob)
    model = SceneModel.load(path, DEFAULT_SPEC)
    assert model.metadata.decoder["kind"] == "hmm-forward"
    assert model.metadata.extra["channel_hmm"] == "forest weight 0.5"
    m = homes[1].matrix
    expected = joined.posterior(m.X, forest.predict_proba(m.X), m.days)
    raw = model.predict_proba(m.X)
    got = raw.copy()
    for day in dict.fromkeys(m.days.tolist()):  # as the hub runs it: the graph, then the decoder, each day afresh
        rows = m.days == day
        decoder = model.new_decoder()
        assert decoder is not None
        got[rows] = decoder.filter(got[rows])
    np.testing.assert_array_equal(model.decode(raw, m.days), got)  # what model eval and the --only-if-better gate run
    # float32 graph and the forest's float16 leaf table (2**-11) against the float64 reference, through the filter
    assert np.abs(got - expected).max() < 1e-2
    assert (got.argmax(axis=1) == expected.argmax(axis=1)).mean() > 0.999
    # Day review with the live model runs it through the decoder too, from the reviewed stretch's first window.
    home = homes[1]
    times = m.times[:240]
    reviewed = review_windows(model, home.events, times, UTC)
    np.testing.assert_allclose(reviewed, model.decode(model.predict_proba(m.X[:240])), atol=1e-6)
    assert not np.allclose(reviewed, model.predict_proba(m.X[:240]), atol=1e-3)
    with pytest.raises(ValueError, match="own decoder"):
        to_onnx(forest, DEFAULT_SPEC, decoder=model.new_decoder(), channel_hmm=joined)


def test_bad_weights_and_priors_are_refused() -> None:
    X = np.zeros((4, DEFAULT_SPEC.n_features), dtype=np.float32)
    y, days = np.array(["idle", "idle", "cooking", "cooking"]), np.array(["d"] * 4)
    for weight in (-1.0, float("nan")):
        with pytest.raises(ValueError, match="weight"):
            fit_channel_hmm(X, y, days, ["cooking", "idle"], DEFAULT_SPEC, weight, np.ones(2))
    with pytest.raises(ValueError, match="prior"):
        fit_channel_hmm(X, y, days, ["cooking", "idle"], DEFAULT_SPEC, 1.0, np.array([1.0, 0.0]))


def test_cli_trains_and_scores_the_joined_model(two_homes: list[tuple[Path, Path]], tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    from qilu_hub.cli import main
    from qilu_hub.recognition.runtime import SceneModel

    (d1, m1), (d2, m2) = two_homes
    out = tmp_path / "m.onnx"
    assert main(["model", "train", "--source", "simulator", "--days", "1", "--homes", "1", "--home", str(d1), str(m1),
                 "--trees", "2", "--channel-hmm", "0.25", "--no-progress", "--out", str(out)]) == 0
    report = json.loads(capsys.readouterr().out)
    model = SceneModel.load(out, DEFAULT_SPEC)
    assert model.new_decoder() is not None
    # The HMM learns on every day the forest does: the home's and the simulator's.
    real = len(home_from_dataset("home1", load_dataset(d1, m1)).matrix.y)
    assert report["rows"] > real
    assert model.metadata.extra["channel_hmm"] == f"forest weight 0.25, HMM on {report['rows']} slices"
    assert main(["model", "train", "--source", "simulator", "--days", "1", "--home", str(d1), str(m1),
                 "--channel-hmm", "0.25", "--decoder", "--out", str(tmp_path / "no.onnx")]) == 2
    assert "cannot be combined with --decoder" in capsys.readouterr().err
    assert not (tmp_path / "no.onnx").exists()
    result = tmp_path / "loho.json"
    assert main(["model", "eval", "--cv", "leave-one-home-out", "--source", str(d1), "--mapping", str(m1),
                 "--home", str(d2), str(m2), "--trees", "2", "--boot", "20", "--channel-hmm", "0",
                 "--compare-model", str(out),
                 "--json", str(result), "--png", str(tmp_path / "cm.png"), "--no-progress"]) == 0
    capsys.readouterr()
    scored = json.loads(result.read_text())
    assert scored["channel_hmm"] == 0.0
    for row in scored["homes"].values():  # at weight 0 ours is the rebuilt HMM, slice for slice
        assert row["ours"]["class_accuracy"] == row["hmm_causal"]["class_accuracy"]
        assert row["ours_minus_hmm_causal"]["class_ci95"] == [0.0, 0.0]
    # A finished model is scored as the hub runs it: through its decoder, restarted each day.
    home = home_from_dataset("home2", load_dataset(d2, m2))
    m = home.matrix
    raw = model.predict_proba(m.X)
    decided = np.asarray(model.labels)[model.decode(raw, m.days).argmax(axis=1)]
    assert (decided != np.asarray(model.labels)[raw.argmax(axis=1)]).any()  # the decoder changes decisions here
    scored_as = np.where(np.isin(decided, home.scenes), decided, "idle")  # scenes the home lacks count as idle
    expected = figures(m.y, scored_as, m.days, home.scenes, n_boot=0)["class_accuracy"]
    assert scored["homes"]["home2"]["model:m.onnx"]["class_accuracy"] == expected
    assert main(["model", "eval", "--cv", "leave-one-day-out", "--source", str(d1), "--mapping", str(m1),
                 "--channel-hmm", "1"]) == 2


def test_the_hmm_learns_every_scene_on_the_simulated_days_too() -> None:
    """A real home that never labels ``guests`` trained beside simulated days that label it and show ``eating``
    their own way: a simulated day's eating and guests are both recognised.  Learnt on real days only, with
    guests taught by the simulated days alone, eating's emissions came from the real home and the simulated
    day's eating was called guests (as the bundled model did on simulated days)."""
    spec = DEFAULT_SPEC
    changed = channel_columns(spec)
    kitchen, dining, living = changed[:3]

    def matrix(runs: list[tuple[str, int, list[int]]], day: str) -> Matrix:
        X = np.zeros((sum(n for _label, n, _on in runs), spec.n_features), dtype=np.float32)
        y: list[str] = []
        for label, n, on in runs:
            X[len(y):len(y) + n, on] = 1
            y += [label] * n
        return Matrix(X, np.array(y), np.array([day] * len(y)), np.arange(len(y)))

    real = Home("real", matrix([("idle", 20, []), ("eating", 20, [kitchen])], "d1"), [], spec)
    simulated = matrix([("idle", 10, []), ("eating", 10, [dining]), ("guests", 40, [dining, living])], "d1")
    rows = homes_training_set([real], None, [simulated])
    forest = fit(rows.X, rows.y, CONFIG, sample_weight=rows.sample_weight)
    assert [str(c) for c in forest.classes_] == ["eating", "guests", "idle"]
    joined = with_channel_hmm(forest, rows, CONFIG, [real], None, 0.0, [simulated])
    windows = np.zeros((2, spec.n_features), dtype=np.float32)
    windows[0, dining] = 1  # the simulated day's eating
    windows[1, [dining, living]] = 1  # its guests
    decided = np.asarray(joined.labels)[joined.scores(windows, np.full((2, 3), 1 / 3)).argmax(axis=1)]
    assert decided.tolist() == ["eating", "guests"]
    # Every day counts the same, simulated or real: idle's transitions are both days' counts, add-one
    # (19 + 9 idle -> idle, 1 + 1 idle -> eating, none to guests).
    np.testing.assert_allclose(np.exp(joined.log_transition[2]), np.array([3, 1, 29]) / 33)


def test_counting_homes_the_same_keeps_a_home_with_many_days_from_outvoting_one_with_few() -> None:
    """``count_homes``: each training home (each extra matrix) counts the same in the HMM, as the forest weighs
    them.  One home of one day cooks with the kitchen sensor firing; another, of nine days, cooks without it.
    Counted by days the kitchen fires in a tenth of cooking; counted by homes, in half."""
    spec = DEFAULT_SPEC
    kitchen = channel_columns(spec)[0]

    def matrix(days: int, cooking_on: list[int]) -> Matrix:
        X = np.zeros((20 * days, spec.n_features), dtype=np.float32)
        y = np.array((["idle"] * 10 + ["cooking"] * 10) * days)
        X[np.flatnonzero(y == "cooking")[:, None], cooking_on] = 1
        return Matrix(X, y, np.repeat([f"d{d}" for d in range(days)], 20), np.arange(len(y)))

    few = Home("few", matrix(1, [kitchen]), [], spec)
    many = Home("many", matrix(9, []), [], spec)
    rows = homes_training_set([few, many])
    forest = fit(rows.X, rows.y, CONFIG, sample_weight=rows.sample_weight)
    windows = np.zeros((2, spec.n_features), dtype=np.float32)
    windows[0, kitchen] = 1
    flat = np.full((2, 2), 0.5)
    cooking = [str(c) for c in forest.classes_].index("cooking")

    def log_odds_of_the_kitchen_firing_when_cooking(count_homes: bool) -> float:
        joined = with_channel_hmm(forest, rows, CONFIG, [few, many], None, 0.0, count_homes=count_homes)
        on, off = joined.scores(windows, flat)[:, cooking]
        return float(on - off)

    by_days = log_odds_of_the_kitchen_firing_when_cooking(False)
    by_homes = log_odds_of_the_kitchen_firing_when_cooking(True)
    np.testing.assert_allclose(by_days, np.log(11 / 91))  # add-one: (10 + 1) / (100 + 2) against 91 / 102
    np.testing.assert_allclose(by_homes, 0.0, atol=1e-9)  # 50 + 1 against 50 + 1


def test_cli_counts_homes_in_the_hmm_when_asked(two_homes: list[tuple[Path, Path]], tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    """``--hmm-counts homes`` (train and eval) reaches the HMM: the same forest decodes differently, the provenance
    says so, and leave-one-home-out scores what ``leave_one_home_out(hmm_count_homes=True)`` scores."""
    from qilu_hub.cli import main
    from qilu_hub.recognition.evaluation import leave_one_home_out
    from qilu_hub.recognition.runtime import SceneModel

    (d1, m1), (d2, m2) = two_homes
    common = ["model", "train", "--source", "simulator", "--days", "1", "--homes", "3", "--home", str(d1), str(m1),
              "--trees", "2", "--channel-hmm", "0.5", "--no-progress"]
    models = {}
    for counts in ("days", "homes"):
        out = tmp_path / f"{counts}.onnx"
        assert main([*common, "--hmm-counts", counts, "--out", str(out)]) == 0
        models[counts] = SceneModel.load(out, DEFAULT_SPEC)
    capsys.readouterr()
    assert models["homes"].metadata.extra["channel_hmm"].endswith(", each home counted the same")
    assert not models["days"].metadata.extra["channel_hmm"].endswith("the same")
    m = home_from_dataset("home2", load_dataset(d2, m2)).matrix
    decoded = {c: model.decode(model.predict_proba(m.X), m.days) for c, model in models.items()}
    assert not np.allclose(decoded["days"], decoded["homes"])  # the same forest (seed, rows, weights), other counts
    assert main(["model", "train", "--source", "simulator", "--days", "1", "--hmm-counts", "homes",
                 "--out", str(tmp_path / "no.onnx")]) == 2
    assert "give --channel-hmm" in capsys.readouterr().err

    result = tmp_path / "loho.json"
    assert main(["model", "eval", "--cv", "leave-one-home-out", "--source", str(d1), "--mapping", str(m1),
                 "--home", str(d2), str(m2), "--trees", "2", "--boot", "0", "--channel-hmm", "0.5",
                 "--hmm-counts", "homes", "--simulator-days", "1", "--simulator-homes", "3", "--seed", "4",
                 "--json", str(result), "--png", str(tmp_path / "cm.png"), "--no-progress"]) == 0
    capsys.readouterr()
    scored = json.loads(result.read_text())
    assert scored["hmm_counts"] == "homes" and scored["simulator"] == {"days_per_home": 1, "homes": 3, "seed": 4}
    homes = [home_from_dataset("home1", load_dataset(d1, m1)), home_from_dataset("home2", load_dataset(d2, m2))]
    sim = [build_matrix(simulate(SimConfig(days=1, homes=3, seed=4)), progress=False)]
    config = TrainConfig(n_estimators=2, seed=4)
    expected = leave_one_home_out(homes, config, sim, n_boot=0, hmm=False, channel_hmm=0.5, hmm_count_homes=True)
    for name, row in expected.items():
        assert scored["homes"][name]["ours"]["class_accuracy"] == row["ours"]["class_accuracy"]


def test_deciding_balanced_divides_the_filtered_posterior_by_the_hmms_class_frequencies(
        homes: list[Home], tmp_path: Path) -> None:
    """``balanced``: the reference posterior is the plain one divided by the transitions' stationary distribution;
    at weight 0 it decides as the rebuilt HMM deciding balanced (``hmm_predictions(balanced=True)``); the
    exported file's decoder carries that prior and the hub's decoding decides as the reference does."""
    from qilu_hub.recognition.decoder import stationary_distribution
    from qilu_hub.recognition.runtime import SceneModel

    train, test = homes
    m = test.matrix
    keep = set(test.scenes)
    rows = homes_training_set([train], keep)
    forest = fit(rows.X, rows.y, CONFIG, sample_weight=rows.sample_weight)
    proba = forest.predict_proba(m.X)
    plain = with_channel_hmm(forest, rows, CONFIG, [train], keep, 0.5)
    balanced = with_channel_hmm(forest, rows, CONFIG, [train], keep, 0.5, balanced=True)
    prior = stationary_distribution(np.exp(plain.log_transition))
    np.testing.assert_allclose(balanced.decision_prior(), prior)
    assert plain.decision_prior() is None
    expected = plain.posterior(m.X, proba, m.days) / prior
    expected /= expected.sum(axis=1, keepdims=True)
    got = balanced.posterior(m.X, proba, m.days)
    np.testing.assert_allclose(got, expected)
    assert (got.argmax(axis=1) != plain.posterior(m.X, proba, m.days).argmax(axis=1)).any()

    alone = with_channel_hmm(forest, rows, CONFIG, [train], keep, 0.0, balanced=True)
    hmm = hmm_predictions([train], test, keep, balanced=True)
    assert set(hmm) == {"offline", "causal", "causal_balanced"}
    np.testing.assert_array_equal(np.asarray(alone.labels)[alone.posterior(m.X, proba, m.days).argmax(axis=1)],
                                  hmm["causal_balanced"])
    assert (hmm["causal_balanced"] != hmm["causal"]).any()
    assert set(hmm_predictions([train], test, keep)) == {"offline", "causal"}

    path = tmp_path / "balanced.onnx"
    path.write_bytes(to_onnx(forest, DEFAULT_SPEC, {"source": "test"}, channel_hmm=balanced))
    model = SceneModel.load(path, DEFAULT_SPEC)
    np.testing.assert_allclose(model.metadata.decoder["decision_prior"], prior, atol=1e-8)
    decoded = model.decode(model.predict_proba(m.X), m.days)
    assert np.abs(decoded - got).max() < 1e-2  # float32 graph against the float64 reference, as for the plain file
    assert (decoded.argmax(axis=1) == got.argmax(axis=1)).mean() > 0.999


def test_cli_decides_balanced_when_asked(two_homes: list[tuple[Path, Path]], tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    """``--decide balanced`` reaches the file (its decoder and provenance) and leave-one-home-out, which scores the
    rebuilt HMM deciding so beside the plain one; without ``--channel-hmm`` it is refused."""
    from qilu_hub.cli import main
    from qilu_hub.recognition.evaluation import leave_one_home_out
    from qilu_hub.recognition.runtime import SceneModel

    (d1, m1), (d2, m2) = two_homes
    out = tmp_path / "balanced.onnx"
    assert main(["model", "train", "--source", "simulator", "--days", "1", "--homes", "3", "--home", str(d1), str(m1),
                 "--trees", "2", "--channel-hmm", "0.5", "--decide", "balanced", "--no-progress",
                 "--out", str(out)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["decision"] == "balanced"
    model = SceneModel.load(out, DEFAULT_SPEC)
    assert model.metadata.extra["channel_hmm"].endswith(", decides balanced")
    assert "decision_prior" in model.metadata.decoder
    for command in ("train", "eval"):
        extra = ["--cv", "leave-one-home-out"] if command == "eval" else []
        assert main(["model", command, *extra, "--source", "simulator", "--days", "1", "--decide", "balanced",
                     "--out" if command == "train" else "--json", str(tmp_path / "no")]) == 2
        assert "give --channel-hmm" in capsys.readouterr().err

    result = tmp_path / "loho.json"
    assert main(["model", "eval", "--cv", "leave-one-home-out", "--source", str(d1), "--mapping", str(m1),
                 "--home", str(d2), str(m2), "--trees", "2", "--boot", "0", "--channel-hmm", "0.5",
                 "--decide", "balanced", "--json", str(result), "--png", str(tmp_path / "cm.png"),
                 "--no-progress"]) == 0
    capsys.readouterr()
    scored = json.loads(result.read_text())
    assert scored["decide"] == "balanced"
    assert scored["mean_over_homes_hmm_causal_balanced"]["homes"] == 2
    homes = [home_from_dataset("home1", load_dataset(d1, m1)), home_from_dataset("home2", load_dataset(d2, m2))]
    expected = leave_one_home_out(homes, TrainConfig(n_estimators=2, seed=0), n_boot=0, channel_hmm=0.5,
                                  balanced=True)
    for name, row in expected.items():
        for who in ("ours", "hmm_causal", "hmm_causal_balanced"):
            assert scored["homes"][name][who]["class_accuracy"] == row[who]["class_accuracy"]
        assert "ours_minus_hmm_causal_balanced" in scored["homes"][name]
