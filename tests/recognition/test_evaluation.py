"""Cross-validation as a command: figures (pooled, per-day, bootstrap over days), leave-one-day-out,
leave-one-home-out with its baselines, and the days-of-labels learning curve, on simulated homes written
to disk in the recorder-export format with their own mapping files (no real dataset in tests)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from qilu_hub.recognition.evaluation import figures, majority_baseline, paired_difference
from qilu_hub.recognition.simulator import SimConfig, simulate

from .exported_homes import export_home


def test_figures_pooled_vs_per_day_and_intervals() -> None:
    # Day 1: 8 idle slices all right, 2 cooking both wrong; day 2: 2 idle right, 2 cooking right.
    y = np.array(["idle"] * 8 + ["cooking"] * 2 + ["idle"] * 2 + ["cooking"] * 2)
    pred = np.array(["idle"] * 8 + ["idle"] * 2 + ["idle"] * 2 + ["cooking"] * 2)
    days = np.array(["d1"] * 10 + ["d2"] * 4)
    f = figures(y, pred, days, n_boot=500)
    assert f["timeslice_accuracy"] == round(12 / 14, 4)
    assert f["class_accuracy"] == round((1.0 + 2 / 4) / 2, 4)  # pooled recall: idle 10/10, cooking 2/4
    assert f["per_day_mean"]["class_accuracy"] == round((0.5 + 1.0) / 2, 4)  # day 1: (1 + 0) / 2, day 2: 1
    assert f["per_day_mean"]["timeslice_accuracy"] == round((0.8 + 1.0) / 2, 4)
    lo, hi = f["class_ci95"]
    assert lo < f["class_accuracy"] < hi or lo == hi == f["class_accuracy"]
    assert lo >= 0.5 - 1e-9 and hi <= 1.0  # resampling days: all-day-1 (0.5) to all-day-2 (1.0)
    assert f["per_class_accuracy"] == {"cooking": 0.5, "idle": 1.0}
    assert f["n_days"] == 2 and f["n_slices"] == 14
    assert list(majority_baseline(y)) == ["idle"] * 14


def test_paired_difference_over_the_same_days() -> None:
    rng = np.random.default_rng(0)
    y = rng.choice(["idle", "cooking", "sleeping"], size=600)
    days = np.repeat([f"d{i}" for i in range(6)], 100)
    worse = np.where(rng.random(600) < 0.3, "idle", y)  # wrong on about a third of non-idle slices
    same = paired_difference(y, y, y, days, ["cooking", "idle", "sleeping"], n_boot=200)
    assert same == {"timeslice_ci95": [0.0, 0.0], "class_ci95": [0.0, 0.0]}
    better = paired_difference(y, y, worse, days, ["cooking", "idle", "sleeping"], n_boot=200)
    assert better["class_ci95"][0] > 0 and better["timeslice_ci95"][0] > 0
    # No resamples, no interval (as figures gives), instead of an error.
    assert paired_difference(y, y, worse, days, ["cooking", "idle", "sleeping"], n_boot=0) == {
        "timeslice_ci95": [], "class_ci95": []}


def test_block_bootstrap_keeps_runs_of_consecutive_days() -> None:
    from qilu_hub.recognition.evaluation import day_resample_weights

    rng = np.random.default_rng(0)
    single = day_resample_weights(10, 200, rng)
    assert single.shape == (200, 10) and np.all(single.sum(axis=1) == 10)
    whole = day_resample_weights(10, 50, rng, block_days=10)  # one block of every day, wrapped around
    assert np.all(whole == 1)
    weekly = day_resample_weights(14, 300, rng, block_days=7)  # two runs of 7 consecutive days (circular)
    assert np.all(weekly.sum(axis=1) == 14)
    for row in weekly:
        drawn = np.flatnonzero(row)
        # A run of 7 covers days s..s+6 (mod 14): every drawn day's successor or predecessor is drawn too.
        assert all(row[(d + 1) % 14] or row[(d - 1) % 14] for d in drawn)
    # Runs move a day's neighbours with it, so fewer distinct resamples than single days (mostly 2 runs).
    assert len({tuple(r) for r in weekly}) < len({tuple(r) for r in day_resample_weights(14, 300, rng)})


def test_eval_leave_one_home_out(two_homes: list[tuple[Path, Path]], tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    from qilu_hub.cli import main

    (d1, m1), (d2, m2) = two_homes
    out, png = tmp_path / "loho.json", tmp_path / "cm.png"
    assert main(["model", "eval", "--cv", "leave-one-home-out", "--source", str(d1), "--mapping", str(m1),
                 "--home", str(d2), str(m2), "--trees", "3", "--boot", "50", "--json", str(out),
                 "--png", str(png), "--no-progress"]) == 0
    result = json.loads(out.read_text())
    assert json.loads(capsys.readouterr().out) == result
    assert set(result["homes"]) == {"home1", "home2"}
    row = result["homes"]["home1"]
    assert row["trained_on"] == ["home2"]  # never the home it is scored on
    assert len(row["ours_minus_hmm_causal"]["class_ci95"]) == 2
    for who in ("ours", "majority_class", "hmm_causal", "hmm_offline"):
        f = row[who]
        assert 0 <= f["class_accuracy"] <= 1 and len(f["class_ci95"]) == 2 and "per_day_mean" in f
    assert row["majority_class"]["class_accuracy"] == pytest.approx(1 / len(row["scenes"]), abs=1e-4)
    assert png.read_bytes()[:4] == b"\x89PNG"
    # A home that calls its eating idle: by default nothing is trained to say eating when it is scored;
    # with --all-scenes the models learn eating from the other home, and saying it there counts as idle.
    no_eating = tmp_path / "home2_no_eating.yaml"
    no_eating.write_text(m2.read_text().replace("  eating: eating\n", "  eating: idle\n"))
    scored = {}
    for flags in ([], ["--all-scenes"]):
        assert main(["model", "eval", "--cv", "leave-one-home-out", "--source", str(d1), "--mapping", str(m1),
                     "--home", str(d2), str(no_eating), "--trees", "3", "--boot", "20", "--json", str(out),
                     "--png", str(png), "--no-progress", *flags]) == 0
        capsys.readouterr()
        scored[bool(flags)] = json.loads(out.read_text())
    assert "eating" not in scored[True]["homes"]["home2_no_eating"]["scenes"]
    assert scored[False]["train_scenes"] == "the scored home's"
    assert scored[True]["train_scenes"] == "every scene the training homes label"
    assert scored[True]["homes"]["home2_no_eating"]["ours"] != scored[False]["homes"]["home2_no_eating"]["ours"]
    assert scored[True]["homes"]["home1"] == scored[False]["homes"]["home1"]  # home1 labels every scene home2 does


def test_eval_leave_one_day_out_and_days_of_labels(two_homes: list[tuple[Path, Path]], tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    from qilu_hub.cli import main

    (d1, m1), (d2, m2) = two_homes
    curve_png = tmp_path / "curve.png"
    assert main(["model", "eval", "--cv", "days-of-labels", "--source", str(d1), "--mapping", str(m1),
                 "--home", str(d2), str(m2), "--trees", "3", "--boot", "20", "--label-days", "1", "2",
                 "--repeats", "2", "--target-weight", "3", "--png", str(tmp_path / "cm.png"),
                 "--curve-png", str(curve_png)]) == 0
    result = json.loads(capsys.readouterr().out)
    lodo = result["leave_one_day_out"]
    assert lodo["n_days"] >= 4 and lodo["per_day_mean"]["class_accuracy"] > 0
    alone, helped = result["days_of_labels"]
    assert [p["days"] for p in alone["curve"]] == [1, 2] and alone["with_other_homes"] == []
    assert [p["days"] for p in helped["curve"]] == [0, 1, 2] and helped["with_other_homes"] == ["home2"]
    assert helped["target_weight"] == 3.0 and alone["target_weight"] is None
    assert alone["reference_all_other_days"]["class_accuracy"] == lodo["class_accuracy"]
    assert curve_png.read_bytes()[:4] == b"\x89PNG"
    # The household's days weighing one home per labelled day, as model train weighs them.
    assert main(["model", "eval", "--cv", "days-of-labels", "--source", str(d1), "--mapping", str(m1),
                 "--home", str(d2), str(m2), "--trees", "3", "--boot", "20", "--label-days", "2",
                 "--repeats", "1", "--per-day-weight", "1", "--png", str(tmp_path / "cm.png"),
                 "--curve-png", str(curve_png)]) == 0
    helped = json.loads(capsys.readouterr().out)["days_of_labels"][1]
    assert helped["per_day_weight"] == 1.0 and helped["target_weight"] is None
    assert helped["class_balance"] == "per-home" and alone["class_balance"] is None


def test_eval_defaults_to_what_train_would_ship(two_homes: list[tuple[Path, Path]], tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    """days-of-labels beside other homes scores what model train writes for a household's days beside them:
    the household forest preset (48 trees, leaves of at least 20 slices) and the prior correction its labelled
    days choose; alone, or with the options given, it scores what was asked."""
    from qilu_hub.cli import main

    (d1, m1), (d2, m2) = two_homes
    common = ["model", "eval", "--cv", "days-of-labels", "--source", str(d1), "--mapping", str(m1), "--trees", "3",
              "--boot", "10", "--label-days", "1", "--repeats", "1", "--png", str(tmp_path / "cm.png"),
              "--curve-png", str(tmp_path / "curve.png")]
    assert main([*common, "--home", str(d2), str(m2)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["forest"] == "leaf20_48trees" and result["config"]["min_samples_leaf"] == 20
    assert result["days_of_labels"][1]["prior_correction"] == "auto"
    assert result["days_of_labels"][1]["per_day_weight"] == 1.0 and result["days_of_labels"][1]["target_weight"] is None
    assert main([*common, "--home", str(d2), str(m2), "--forest", "default", "--prior-correction", "0.5"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["forest"] == "default" and result["config"]["min_samples_leaf"] == 5
    assert result["days_of_labels"][1]["prior_correction"] == 0.5
    assert main(common) == 0  # one home's days alone: what model train --source DATA writes
    alone = json.loads(capsys.readouterr().out)
    assert alone["forest"] == "default" and alone["days_of_labels"][0]["prior_correction"] is None
    assert main([*common, "--prior-correction", "-1"]) == 2
    assert "between 0 and 4" in capsys.readouterr().err


def test_eval_cv_refuses_one_home(two_homes: list[tuple[Path, Path]], capsys: pytest.CaptureFixture[str]) -> None:
    from qilu_hub.cli import main

    (d1, m1), _ = two_homes
    assert main(["model", "eval", "--cv", "leave-one-home-out", "--source", str(d1), "--mapping", str(m1)]) == 2
    assert "at least two homes" in capsys.readouterr().err


def test_eval_restricts_training_homes_and_scores_a_finished_model(
    two_homes: list[tuple[Path, Path]], trained: tuple[object, Path], tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The shipping question: trained only on homes whose terms allow it, scored on all, beside the bundled
    model as it is."""
    from qilu_hub.cli import main

    (d1, m1), (d2, m2) = two_homes
    third = export_home(simulate(SimConfig(days=3, homes=1, seed=5)), tmp_path / "home5")
    _model, onnx = trained
    assert main(["model", "eval", "--cv", "leave-one-home-out", "--source", str(d1), "--mapping", str(m1),
                 "--home", str(d2), str(m2), "--home", str(third[0]), str(third[1]), "--train-homes", "home2",
                 "--compare-model", str(onnx), "--trees", "2", "--boot", "10", "--no-hmm",
                 "--png", str(tmp_path / "cm.png")]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["homes"]["home1"]["trained_on"] == ["home2"]
    assert result["homes"]["home5"]["trained_on"] == ["home2"]
    assert result["homes"]["home2"]["trained_on"] == [] and result["homes"]["home2"]["ours"] is None
    assert "model:scene.onnx" in result["homes"]["home1"]
    assert main(["model", "eval", "--cv", "leave-one-home-out", "--source", str(d1), "--mapping", str(m1),
                 "--home", str(d2), str(m2), "--train-homes", "nowhere"]) == 2


def test_train_with_other_homes(two_homes: list[tuple[Path, Path]], tmp_path: Path,
                                capsys: pytest.CaptureFixture[str]) -> None:
    from qilu_hub.cli import main
    from qilu_hub.recognition.features import DEFAULT_SPEC
    from qilu_hub.recognition.runtime import SceneModel

    (d1, m1), (d2, m2) = two_homes
    out = tmp_path / "m.onnx"
    assert main(["model", "train", "--source", "simulator", "--days", "2", "--homes", "1", "--home", str(d1), str(m1),
                 "--home", str(d2), str(m2), "--trees", "2", "--no-progress", "--out", str(out)]) == 0
    report = json.loads(capsys.readouterr().out)
    model = SceneModel.load(out, DEFAULT_SPEC)
    assert model.metadata.extra["homes"] == "home1, home2" and report["slices"] > 3 * 1440


def _household_calling_cooking_eating(tmp_path: Path) -> tuple[Any, Path, Path]:
    """Three simulated days as the hub records them, labelled by a household that calls its kitchen time
    "eating" (the other homes call it cooking) and never labels its nights."""
    sim = simulate(SimConfig(days=3, homes=1, seed=7))
    history, labels = tmp_path / "history.jsonl", tmp_path / "labels.jsonl"
    history.write_text("".join(json.dumps({"ts": e.ts, "area": e.area, "capability": e.capability,
                                           "value": "on" if e.active else "off", "entity_id": e.source}) + "\n"
                               for e in sim.events))
    until = sim.start + 3 * 86400  # the simulator pads the last home with an event-free day
    own = {"cooking": "eating", "sleeping": None}  # its own word for cooking; nights never labelled
    labels.write_text("".join(
        json.dumps({"start": iv.start, "end": min(iv.end, until), "label": own.get(iv.label, iv.label)}) + "\n"
        for iv in sim.intervals if iv.start < until and own.get(iv.label, iv.label) is not None))
    return sim, history, labels


def test_household_days_outweigh_other_homes_and_keep_unlabelled_scenes(
    two_homes: list[tuple[Path, Path]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Adaptation: a household that calls its kitchen time "eating" (the other homes call it cooking) gets
    "eating" on its days once it has labelled a few, while "sleeping", which it never labelled, is still
    recognised from the other homes."""
    from qilu_hub.cli import main
    from qilu_hub.recognition.evaluation import household_weight
    from qilu_hub.recognition.features import DEFAULT_SPEC
    from qilu_hub.recognition.runtime import SceneModel
    from qilu_hub.recognition.training import build_matrix

    assert household_weight(0) == 0 and household_weight(1) < household_weight(3) < household_weight(7)
    sim, history, labels = _household_calling_cooking_eating(tmp_path)
    out = tmp_path / "household.onnx"
    (d1, m1), (d2, m2) = two_homes
    assert main(["model", "train", "--source", "recorder", "--data", str(history), "--labels", str(labels),
                 "--bootstrap-days", "0", "--home", str(d1), str(m1), "--home", str(d2), str(m2),
                 "--no-progress", "--out", str(out)]) == 0
    report = json.loads(capsys.readouterr().out)
    # The household preset as it ships (leaf20_48trees, 48 trees): cut to 8 trees, its leaves of at least 20
    # slices over these two small simulated homes lose the unlabelled nights (0.10); on real homes it keeps
    # them at least as well as the default forest (bench/recognition_adaptation_unlabelled.py).
    model = SceneModel.load(out, DEFAULT_SPEC)
    truth = build_matrix(sim, DEFAULT_SPEC)  # the simulator's own words, all day
    pred = np.asarray(model.labels)[model.predict_proba(truth.X).argmax(axis=1)]
    kitchen, night = pred[truth.y == "cooking"], pred[truth.y == "sleeping"]
    assert np.mean(kitchen == "eating") > 0.5 and np.mean(kitchen == "eating") > np.mean(kitchen == "cooking")
    assert np.mean(night == "sleeping") > 0.5
    # By default the household's labelled days chose the prior correction it decides with (HOUSEHOLD_PRIOR).
    assert report["prior_choice"]["folds"] == 3 and report["prior_correction"] == report["prior_choice"]["power"]
    assert (model.class_bias is None) == (report["decision"] == "plain") == (report["prior_correction"] == 0)
    # With it, each scene's training weight is divided out: the two scenes the household (weighing three homes)
    # never uses, "sleeping" and its neighbours' word "cooking", have the least weight and get the largest boost.
    assert main(["model", "train", "--source", "recorder", "--data", str(history), "--labels", str(labels),
                 "--bootstrap-days", "0", "--home", str(d1), str(m1), "--home", str(d2), str(m2), "--trees", "4",
                 "--prior-correction", "--no-progress", "--out", str(out)]) == 0
    assert json.loads(capsys.readouterr().out)["prior_correction"] == 1.0
    bias = SceneModel.load(out, DEFAULT_SPEC).class_bias
    assert bias is not None
    offset = dict(zip(bias.labels, np.round(bias.offsets, 4), strict=True))
    assert {scene for scene, v in offset.items() if v == max(offset.values())} == {"cooking", "sleeping"}, offset



def test_the_households_labelled_days_choose_its_prior_correction(
    two_homes: list[tuple[Path, Path]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--prior-correction auto: each of the household's three labelled days is predicted by a forest trained on
    the other two beside the other homes, each power decides on it, and the power that recognises those days
    best is the one the written model decides with (its class bias, said in the report and the provenance)."""
    from qilu_hub.cli import main
    from qilu_hub.recognition.features import DEFAULT_SPEC
    from qilu_hub.recognition.runtime import SceneModel
    from qilu_hub.recognition.training import PRIOR_POWERS

    _, history, labels = _household_calling_cooking_eating(tmp_path)
    out = tmp_path / "household.onnx"
    (d1, m1), (d2, m2) = two_homes
    household = ["model", "train", "--source", "recorder", "--data", str(history), "--labels", str(labels),
                 "--home", str(d1), str(m1), "--home", str(d2), str(m2), "--trees", "4", "--no-progress",
                 "--out", str(out)]
    assert main([*household, "--bootstrap-days", "0", "--prior-correction", "auto"]) == 0
    report = json.loads(capsys.readouterr().out)
    choice = report["prior_choice"]
    assert choice["folds"] == 3 and set(choice["held_out_class_accuracy"]) == {f"{p:g}" for p in PRIOR_POWERS}
    best = max(choice["held_out_class_accuracy"].values())
    first_best = next(float(p) for p, v in choice["held_out_class_accuracy"].items() if v == best)
    assert report["prior_correction"] == choice["power"] == first_best
    model = SceneModel.load(out, DEFAULT_SPEC)
    assert model.metadata.extra["prior_correction"].startswith(f"power {first_best:g}, chosen on 3 folds")
    # It decides as the same run with that power given would: the same class bias, or none for power 0.
    fixed = tmp_path / "fixed.onnx"
    assert main([*household[:-1], str(fixed), "--bootstrap-days", "0", "--prior-correction", str(first_best)]) == 0
    assert json.loads(capsys.readouterr().out)["decision"] == report["decision"]
    written, given = model.class_bias, SceneModel.load(fixed, DEFAULT_SPEC).class_bias
    assert (written is None) == (given is None) == (first_best == 0)
    if written is not None and given is not None:
        assert written.labels == given.labels and np.allclose(written.offsets, given.offsets)
    # With simulated bootstrap days the folds hold out the household's days only (three), never a simulated one.
    assert main([*household, "--bootstrap-days", "2", "--prior-correction", "auto"]) == 0
    assert json.loads(capsys.readouterr().out)["prior_choice"]["folds"] == 3
    with pytest.raises(SystemExit) as refused:
        main([*household, "--prior-correction", "sometimes"])
    assert refused.value.code == 2 and "neither a power" in capsys.readouterr().err
    # The learning curve scores what train writes: the power chosen on each draw's labelled days.
    assert main(["model", "eval", "--cv", "days-of-labels", "--source", str(d1), "--mapping", str(m1), "--home",
                 str(d2), str(m2), "--trees", "3", "--boot", "10", "--label-days", "2", "--repeats", "2",
                 "--prior-correction", "auto", "--png", str(tmp_path / "cm.png"),
                 "--curve-png", str(tmp_path / "curve.png")]) == 0
    helped = json.loads(capsys.readouterr().out)["days_of_labels"][1]
    assert helped["prior_correction"] == "auto"
    two_days = next(p for p in helped["curve"] if p["days"] == 2)
    assert len(two_days["prior_powers_chosen"]) == 2 and set(two_days["prior_powers_chosen"]) <= set(PRIOR_POWERS)


def test_household_labels_win_where_another_home_labels_the_same_minutes_otherwise(
    two_homes: list[tuple[Path, Path]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Per-home class balance: a household whose first labelled day is sensor for sensor one of the other homes'
    days (the same simulated home) calls its meals "relaxing" where that home says "eating".  Balanced within
    each home, the household's few "relaxing" minutes weigh a seventh of its home (it labels seven scenes) and
    win; balanced over all homes pooled, "relaxing" is a common scene (the other homes' evenings), so each of
    its minutes is cheap and the other home's "eating" takes about half of them."""
    from qilu_hub.cli import main
    from qilu_hub.recognition.features import DEFAULT_SPEC
    from qilu_hub.recognition.runtime import SceneModel
    from qilu_hub.recognition.training import build_matrix

    sim = simulate(SimConfig(days=3, homes=1, seed=1))  # two_homes' first home, as the household
    history, labels = tmp_path / "history.jsonl", tmp_path / "labels.jsonl"
    history.write_text("".join(json.dumps({"ts": e.ts, "area": e.area, "capability": e.capability,
                                           "value": "on" if e.active else "off", "entity_id": e.source}) + "\n"
                               for e in sim.events))
    until = sim.start + 86400  # one labelled day
    own = {"eating": "relaxing", "relaxing": None}
    labels.write_text("".join(
        json.dumps({"start": iv.start, "end": min(iv.end, until), "label": own.get(iv.label, iv.label)}) + "\n"
        for iv in sim.intervals if iv.start < until and own.get(iv.label, iv.label) is not None))
    (d1, m1), (d2, m2) = two_homes
    truth = build_matrix(sim, DEFAULT_SPEC)
    meals = (truth.y == "eating") & (truth.times < until)
    relaxing = {}
    for balance in ("per-home", "pooled"):
        out = tmp_path / f"{balance}.onnx"
        assert main(["model", "train", "--source", "recorder", "--data", str(history), "--labels", str(labels),
                     "--bootstrap-days", "0", "--home", str(d1), str(m1), "--home", str(d2), str(m2),
                     "--class-balance", balance, "--trees", "8", "--no-progress", "--out", str(out)]) == 0
        capsys.readouterr()
        model = SceneModel.load(out, DEFAULT_SPEC)
        assert model.metadata.extra["class_balance"] == balance
        pred = np.asarray(model.labels)[model.predict_proba(truth.X[meals]).argmax(axis=1)]
        relaxing[balance] = float(np.mean(pred == "relaxing"))
    assert relaxing["per-home"] > 0.8 and relaxing["per-home"] > relaxing["pooled"] + 0.2, relaxing


def test_only_if_better_beside_other_homes(two_homes: list[tuple[Path, Path]], tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    """The retraining gate trains its candidate as the real run does (beside the --home homes, the household
    forest preset, scenes balanced within each home) and still keeps a better model in use."""
    from qilu_hub.cli import main
    from qilu_hub.recognition.features import DEFAULT_SPEC
    from qilu_hub.recognition.runtime import SceneModel
    from qilu_hub.recognition.training import TrainConfig, build_matrix, fit, to_onnx

    sim = simulate(SimConfig(days=3, homes=1, seed=7))
    history, labels = tmp_path / "history.jsonl", tmp_path / "labels.jsonl"
    history.write_text("".join(json.dumps({"ts": e.ts, "area": e.area, "capability": e.capability,
                                           "value": "on" if e.active else "off", "entity_id": e.source}) + "\n"
                               for e in sim.events))
    until = sim.start + 3 * 86400
    labels.write_text("".join(json.dumps({"start": iv.start, "end": min(iv.end, until), "label": iv.label}) + "\n"
                              for iv in sim.intervals if iv.start < until))
    (d1, m1), (d2, m2) = two_homes
    out = tmp_path / "household.onnx"
    crude = build_matrix(simulate(SimConfig(days=2, homes=1, seed=1)).relabel(
        lambda label: "away" if label == "away" else "idle"), DEFAULT_SPEC)
    out.write_bytes(to_onnx(fit(crude.X, crude.y, TrainConfig(n_estimators=2, n_jobs=1)), DEFAULT_SPEC))
    train = ["model", "train", "--source", "recorder", "--data", str(history), "--labels", str(labels),
             "--bootstrap-days", "0", "--home", str(d1), str(m1), "--home", str(d2), str(m2), "--no-progress",
             "--only-if-better", "--out", str(out)]
    assert main([*train, "--trees", "8"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["written"] and report["gate"]["accepted"]
    assert report["gate"]["candidate"]["class_accuracy"] > report["gate"]["current"]["class_accuracy"]
    extra = SceneModel.load(out, DEFAULT_SPEC).metadata.extra
    assert extra["class_balance"] == "per-home"
    assert "min_samples_leaf=20" in extra["config"]  # the household preset (leaf20_48trees), --trees overriding
    good = out.read_bytes()
    assert main([*train, "--trees", "1", "--depth", "1", "--min-leaf", "500"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["written"] is False and out.read_bytes() == good


def test_a_homes_unlabelled_time_is_spread_over_the_scenes_it_never_labels() -> None:
    from qilu_hub.recognition.evaluation import spread_unlabelled

    y = np.array(["away", "idle", "idle", "cooking"])
    rows, labels, share = spread_unlabelled(y, {"away", "idle", "cooking", "relaxing", "eating"})
    assert rows.tolist() == [0, 1, 1, 1, 2, 2, 2, 3]
    assert labels.tolist() == ["away", "idle", "eating", "relaxing", "idle", "eating", "relaxing", "cooking"]
    np.testing.assert_allclose(share, [1, 1 / 3, 1 / 3, 1 / 3, 1 / 3, 1 / 3, 1 / 3, 1])
    # A home that labels every scene the model learns keeps its rows as they are.
    rows, labels, share = spread_unlabelled(y, {"away", "idle", "cooking"})
    assert rows.tolist() == [0, 1, 2, 3] and labels.tolist() == y.tolist() and share.tolist() == [1.0] * 4


def test_class_balance_counts_slices_not_the_rows_a_slice_was_spread_over() -> None:
    from qilu_hub.recognition.training import class_weights

    y = np.array(["away", "idle", "relaxing", "idle", "relaxing"])
    weights = class_weights(y, share=np.array([1, 0.5, 0.5, 0.5, 0.5]))
    # One slice of each class: each weighs as one slice in total.
    assert weights[0] == pytest.approx(weights[1] * 0.5 * 2) and weights[1] == pytest.approx(weights[2])
    assert class_weights(y).tolist() != weights.tolist()


def _toy_home(name: str, rows: list[tuple[float, str, int]]) -> Any:
    """A home of one feature: (value, label, how many slices)."""
    from qilu_hub.recognition.evaluation import Home
    from qilu_hub.recognition.training import Matrix

    X = np.array([[v] for v, _label, n in rows for _ in range(n)], dtype=np.float32)
    y = np.array([label for _v, label, n in rows for _ in range(n)])
    days = np.arange(len(y)) // 50
    return Home(name, Matrix(X, y, days, np.arange(len(y)) * 60.0), [])


def test_a_home_that_never_labels_a_scene_does_not_teach_against_it() -> None:
    """Home X labels relaxing (feature 1 or 3); home Y never does, so its resident's relaxing (feature 1)
    is in its idle time.  Taken as idle, Y outvotes X at feature 1; left open, relaxing is recognised."""
    from qilu_hub.recognition.evaluation import train_on_homes
    from qilu_hub.recognition.training import TrainConfig

    x = _toy_home("x", [(0.0, "idle", 200), (1.0, "relaxing", 50), (3.0, "relaxing", 50), (2.0, "sleeping", 100)])
    y = _toy_home("y", [(1.0, "idle", 300), (2.0, "sleeping", 100)])
    config = TrainConfig(n_estimators=4, n_jobs=1)
    probe = np.array([[1.0]], dtype=np.float32)
    assert train_on_homes([x, y], config).predict(probe).tolist() == ["idle"]
    assert train_on_homes([x, y], config, open_unlabelled=True).predict(probe).tolist() == ["relaxing"]
    # Y's own idle time away from feature 1 is still idle.
    assert train_on_homes([x, y], config, open_unlabelled=True).predict(np.array([[0.0]])).tolist() == ["idle"]


def test_train_with_other_homes_leaving_their_unlabelled_time_open(
    two_homes: list[tuple[Path, Path]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from qilu_hub.cli import main
    from qilu_hub.recognition.features import DEFAULT_SPEC
    from qilu_hub.recognition.runtime import SceneModel

    (d1, m1), (d2, m2) = two_homes
    common = ["model", "train", "--source", "simulator", "--days", "2", "--homes", "1", "--home", str(d1), str(m1),
              "--home", str(d2), str(m2), "--trees", "2", "--no-progress"]
    assert main([*common, "--out", str(tmp_path / "idle.onnx")]) == 0
    idle = json.loads(capsys.readouterr().out)
    assert main([*common, "--unlabelled", "open", "--out", str(tmp_path / "open.onnx")]) == 0
    opened = json.loads(capsys.readouterr().out)
    assert opened["slices"] == idle["slices"] == idle["rows"]  # the same slices,
    assert opened["rows"] > opened["slices"]  # the homes' idle ones spread over the scenes they never label
    assert SceneModel.load(tmp_path / "open.onnx", DEFAULT_SPEC).metadata.extra["unlabelled"] == "open"
    assert main([*common, "--unlabelled", "open", "--decoder", "--out", str(tmp_path / "x.onnx")]) == 2
    assert "--unlabelled open cannot be combined" in capsys.readouterr().err
    assert not (tmp_path / "x.onnx").exists()


def test_leave_one_home_out_can_train_on_every_scene_as_a_hub_does() -> None:
    """A scored home that never labels ``eating`` (it calls that time idle): by default the models learn its
    scenes only; with ``all_scenes`` they learn eating from the training home, as a hub that does not know the
    home's scenes yet would, and an eating decision there is scored as idle."""
    from dataclasses import replace

    from qilu_hub.recognition.baselines import fit_hmm
    from qilu_hub.recognition.evaluation import channel_binary, home_from_dataset, leave_one_home_out
    from qilu_hub.recognition.training import TrainConfig, fit

    trainer = home_from_dataset("trainer", simulate(SimConfig(days=3, homes=1, seed=1)))
    scored = home_from_dataset("scored", simulate(SimConfig(days=3, homes=1, seed=2)))
    scored = replace(scored, matrix=replace(scored.matrix, y=np.where(scored.matrix.y == "eating", "idle",
                                                                      scored.matrix.y)))
    assert "eating" in trainer.scenes and "eating" not in scored.scenes
    config = TrainConfig(n_estimators=4, max_depth=6, n_jobs=1)
    m = scored.matrix
    by_default: dict[str, Any] = {}
    every: dict[str, Any] = {}
    home_only = leave_one_home_out([trainer, scored], config, n_boot=20, predictions=by_default)["scored"]
    all_scenes = leave_one_home_out([trainer, scored], config, n_boot=20, predictions=every,
                                    all_scenes=True)["scored"]
    forest = fit(trainer.matrix.X, trainer.matrix.y, config)
    raw = forest.predict(m.X)
    assert (raw == "eating").any()  # the trainer's eating, learnt, and said in the scored home
    expected = np.where(raw == "eating", "idle", raw)
    np.testing.assert_array_equal(every["scored"], expected)
    assert all_scenes["ours"]["class_accuracy"] == figures(m.y, expected, m.days, scored.scenes, 0)["class_accuracy"]
    assert (every["scored"] != by_default["scored"]).any()
    # The HMM baseline learns eating too, and its eating decisions count as idle.
    hmm = fit_hmm(channel_binary(trainer), trainer.matrix.y, trainer.matrix.days, sorted(trainer.scenes))
    causal = np.concatenate([hmm.predict(channel_binary(scored)[m.days == d], causal=True)
                             for d in dict.fromkeys(m.days.tolist())])
    causal = np.where(causal == "eating", "idle", causal)
    scored_hmm = figures(m.y, causal, m.days, scored.scenes, 0)["class_accuracy"]
    assert all_scenes["hmm_causal"]["class_accuracy"] == scored_hmm
    assert home_only["hmm_causal"]["class_accuracy"] != scored_hmm
