"""``qilu-hub model train`` and ``eval`` end to end on simulator and tiny Kasteren-format data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qilu_hub.cli import main
from qilu_hub.recognition.features import DEFAULT_SPEC
from qilu_hub.recognition.runtime import SceneModel

from .test_datasets import write_kasteren


def test_train_then_eval_on_simulator(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out, png = tmp_path / "m.onnx", tmp_path / "cm.png"
    common = ["--days", "3", "--homes", "1", "--no-progress"]
    assert main(["model", "train", *common, "--trees", "6", "--out", str(out)]) == 0
    info = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert info["bytes"] == out.stat().st_size < 1_000_000
    assert SceneModel.load(out, DEFAULT_SPEC).labels == info["labels"]
    assert main(["model", "eval", *common, "--seed", "5", "--model", str(out), "--png", str(png)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert 0.0 <= result["timeslice_accuracy"] <= 1.0 and "class_accuracy" in result
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_train_on_kasteren_format(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = write_kasteren(tmp_path)
    out = tmp_path / "k.onnx"
    assert main(["model", "train", "--source", "kasteren", "--data", str(data), "--trees", "4",
                 "--out", str(out), "--raw-labels"]) == 0
    assert "prepare breakfast" in SceneModel.load(out, DEFAULT_SPEC).labels


def test_forest_preset_with_explicit_override(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = write_kasteren(tmp_path)
    out = tmp_path / "k.onnx"
    assert main(["model", "train", "--source", "kasteren", "--data", str(data), "--forest", "leaf20_48trees",
                 "--trees", "3", "--per-device", "--out", str(out), "--no-progress"]) == 0
    config = SceneModel.load(out, DEFAULT_SPEC).metadata.extra["config"]
    assert "n_estimators=3" in config and "min_samples_leaf=20" in config  # preset, then --trees on top
    assert main(["model", "train", "--source", "kasteren", "--data", str(data), "--forest", "huge",
                 "--out", str(out)]) == 2
    assert "unknown --forest 'huge'" in capsys.readouterr().err


def test_class_bias_is_learnt_and_embedded(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "b.onnx"
    assert main(["model", "train", "--days", "3", "--homes", "1", "--trees", "4", "--class-bias",
                 "--bias-target", "0.5", "0.5", "--out", str(out), "--no-progress"]) == 0
    info = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    scene = SceneModel.load(out, DEFAULT_SPEC)
    assert scene.class_bias is not None and scene.class_bias.labels == scene.labels
    assert info["class_bias"] == [round(v, 6) for v in scene.class_bias.offsets.tolist()]


def test_errors_are_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["model", "train", "--source", "kasteren", "--data", str(tmp_path), "--out",
                 str(tmp_path / "x.onnx")]) == 1
    assert "expected kasterenSenseData" in capsys.readouterr().err
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"nope")
    assert main(["model", "eval", "--days", "1", "--homes", "1", "--model", str(bad)]) == 1


def test_eval_on_casas_format_with_sensor_areas(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = tmp_path / "m.onnx"
    assert main(["model", "train", "--days", "2", "--homes", "1", "--trees", "4", "--out", str(model),
                 "--no-progress"]) == 0
    capsys.readouterr()  # drop the train summary
    data = tmp_path / "milan.txt"
    data.write_text(
        "2009-10-16 08:00:00.000001 M019 ON Kitchen_Activity begin\n"
        "2009-10-16 08:03:00.000001 M019 OFF\n"
        "2009-10-16 08:20:00.000001 M019 ON Kitchen_Activity end\n"
        "2009-10-16 23:00:00.000001 M021 ON Sleep begin\n"
        "2009-10-17 07:00:00.000001 M021 OFF Sleep end\n"
    )
    areas = tmp_path / "areas.json"
    areas.write_text(json.dumps({"M019": "kitchen", "M021": "bedroom"}))
    png = tmp_path / "casas.png"
    assert main(["model", "eval", "--source", "casas", "--data", str(data), "--sensor-areas", str(areas),
                 "--model", str(model), "--png", str(png), "--no-progress"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert {"cooking", "sleeping", "idle"} <= set(result["per_class_accuracy"])
    assert png.is_file()


def test_per_device_model_with_decoder_trains_and_evaluates(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = write_kasteren(tmp_path)
    out, png = tmp_path / "k.onnx", tmp_path / "cm.png"
    common = ["--source", "kasteren", "--data", str(data), "--raw-labels", "--no-progress"]
    assert main(["model", "train", *common, "--trees", "4", "--per-device", "--decoder", "--out", str(out)]) == 0
    info = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert info["decoder"] is True and info["feature_spec"] != DEFAULT_SPEC.version
    model = SceneModel.load(out, DEFAULT_SPEC)
    assert model.spec.sources and model.spec.version == info["feature_spec"]
    decoder = model.new_decoder()
    assert decoder is not None and decoder.labels == model.labels
    assert main(["model", "eval", *common, "--model", str(out), "--png", str(png)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert 0.0 <= result["timeslice_accuracy"] <= 1.0


def _household_export(tmp_path: Path, days: int = 6, seed: int = 5) -> tuple[Path, Path]:
    """A simulated home written as a recorder export (history JSONL) plus the household's labels."""
    from qilu_hub.recognition.simulator import SimConfig, simulate

    ds = simulate(SimConfig(days=days, homes=1, seed=seed))
    history, labels = tmp_path / "history.jsonl", tmp_path / "labels.jsonl"

    def value(cap: str, active: bool) -> object:
        return (100.0 if active else 0.0) if cap == "power" else ("on" if active else "off")

    history.write_text("".join(json.dumps({"ts": e.ts, "area": e.area, "capability": e.capability,
                                           "value": value(e.capability, e.active), "entity_id": e.source}) + "\n"
                               for e in ds.events))
    until = ds.start + days * 86400  # the simulator pads the last home with a day "away" and no events
    labels.write_text("".join(json.dumps({"start": iv.start, "end": min(iv.end, until), "label": iv.label}) + "\n"
                              for iv in ds.intervals if iv.start < until))
    return history, labels


def test_only_if_better_replaces_a_worse_model_and_keeps_a_better_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The scheduled-retraining gate: the newest labelled days are held out, the candidate trained without
    them must recognise them at least as well as the model in use, else the file is left alone."""
    history, labels = _household_export(tmp_path)
    out = tmp_path / "home.onnx"
    household = ["model", "train", "--source", "recorder", "--data", str(history), "--labels", str(labels),
                 "--bootstrap-days", "0", "--no-progress", "--only-if-better", "--out", str(out)]
    # The model in use knows only "away" and "idle": any reasonable retraining beats it.
    from qilu_hub.recognition.simulator import SimConfig, simulate
    from qilu_hub.recognition.training import TrainConfig, build_matrix, fit, to_onnx

    crude = build_matrix(simulate(SimConfig(days=2, homes=1, seed=1)).relabel(
        lambda label: "away" if label == "away" else "idle"), DEFAULT_SPEC)
    out.write_bytes(to_onnx(fit(crude.X, crude.y, TrainConfig(n_estimators=2, n_jobs=1)), DEFAULT_SPEC))
    poor = SceneModel.load(out, DEFAULT_SPEC)
    assert main([*household, "--trees", "8"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    gate = report["gate"]
    assert report["written"] and gate["accepted"] and gate["held_out_slices"] > 0
    assert gate["candidate"]["timeslice_accuracy"] > gate["current"]["timeslice_accuracy"]
    good_bytes = out.read_bytes()
    assert SceneModel.load(out, DEFAULT_SPEC).labels != poor.labels

    # Now the model in use is good (and has even seen the held-out days); a crippled forest loses.
    assert main([*household, "--trees", "1", "--depth", "1", "--min-leaf", "500"]) == 0
    captured = capsys.readouterr()
    report = json.loads(captured.out.strip().splitlines()[-1])
    assert report["written"] is False and report["gate"]["accepted"] is False
    assert "kept" in captured.err
    assert out.read_bytes() == good_bytes  # untouched

    # The gate needs the household's labels.
    assert main(["model", "train", "--days", "2", "--homes", "1", "--only-if-better", "--out", str(out)]) == 2


def test_train_and_eval_a_day_review_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out, png = tmp_path / "review.onnx", tmp_path / "cm.png"
    common = ["--days", "3", "--homes", "1", "--no-progress"]
    assert main(["model", "train", *common, "--trees", "4", "--review", "--out", str(out)]) == 0
    info = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert info["review"] is True and info["bytes"] == out.stat().st_size < 1_000_000
    assert SceneModel.load(out, DEFAULT_SPEC, review=True).lookahead
    # eval recognises the kind and scores it with look-ahead features
    assert main(["model", "eval", *common, "--seed", "5", "--model", str(out), "--png", str(png)]) == 0
    assert 0.0 <= json.loads(capsys.readouterr().out)["timeslice_accuracy"] <= 1.0
    assert main(["model", "train", *common, "--review", "--decoder", "--out", str(out)]) == 2
    assert "--review cannot be combined" in capsys.readouterr().err


def test_only_if_better_scores_the_model_in_use_through_its_decoder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The gate judges the model in use as the hub runs it: a model with a decoder (the bundled one has: its
    channel HMM) through that decoder, restarted each held-out day."""
    import numpy as np

    from qilu_hub.recognition.datasets import load_recorder_export
    from qilu_hub.recognition.training import build_matrix, metrics

    history, labels = _household_export(tmp_path)
    household = ["model", "train", "--source", "recorder", "--data", str(history), "--labels", str(labels),
                 "--bootstrap-days", "0", "--trees", "2", "--no-progress"]
    current = tmp_path / "joined.onnx"
    assert main([*household, "--channel-hmm", "0.5", "--out", str(current)]) == 0
    capsys.readouterr()
    candidate = tmp_path / "new.onnx"
    assert main([*household, "--only-if-better", "--compare-with", str(current), "--out", str(candidate)]) == 0
    gate = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["gate"]
    model = SceneModel.load(current, DEFAULT_SPEC)
    m = build_matrix(load_recorder_export(history, labels), DEFAULT_SPEC, progress=False)
    test = np.isin(m.days, gate["held_out_days"])
    raw = model.predict_proba(m.X[test])
    decided = np.asarray(model.labels)[model.decode(raw, m.days[test]).argmax(axis=1)]
    assert (decided != np.asarray(model.labels)[raw.argmax(axis=1)]).any()  # the decoder changes decisions here
    expected = metrics(m.y[test], decided, model.labels)
    assert gate["current"] == {k: round(expected[k], 4) for k in ("timeslice_accuracy", "class_accuracy")}


def test_only_if_better_for_a_review_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """With --review the gate compares against what reviews now: the review model at --out, or, before there
    is one, a live model (given here with --compare-with, as the bundled one would be)."""
    history, labels = _household_export(tmp_path)
    out, live = tmp_path / "home_review.onnx", tmp_path / "live.onnx"
    household = ["model", "train", "--source", "recorder", "--data", str(history), "--labels", str(labels),
                 "--bootstrap-days", "0", "--no-progress", "--review", "--only-if-better"]
    assert main(["model", "train", "--days", "2", "--homes", "1", "--trees", "1", "--depth", "1", "--min-leaf",
                 "500", "--no-progress", "--out", str(live)]) == 0  # a crippled live model
    capsys.readouterr()
    assert main([*household, "--trees", "8", "--compare-with", str(live), "--out", str(out)]) == 0
    gate = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["gate"]
    assert gate["accepted"] and gate["current_model"] == str(live)
    assert SceneModel.load(out, DEFAULT_SPEC, review=True).lookahead
    good_bytes = out.read_bytes()
    # Now a review model is in use at --out and it is good; a crippled review candidate loses to it.
    assert main([*household, "--trees", "1", "--depth", "1", "--min-leaf", "500", "--out", str(out)]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["written"] is False and report["gate"]["current_model"] == str(out)
    assert report["gate"]["current"]["class_accuracy"] > report["gate"]["candidate"]["class_accuracy"]
    assert out.read_bytes() == good_bytes


def test_train_without_out_writes_where_the_hub_loads_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    """No --out: the model goes into the --config dir (not the working directory, where a checkout's bundled
    model would be overwritten), the hub built from that dir loads it, and a backup carries it."""
    from qilu_hub.backup import _owned_files
    from qilu_hub.recognition.component import DEFAULT_MODEL
    from qilu_hub.recognition.settings import recognizer_from_config

    config, cwd = tmp_path / "config", tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    recognizer = recognizer_from_config({}, config)
    assert recognizer is not None and recognizer.model_path == DEFAULT_MODEL  # nothing trained yet
    assert main(["model", "train", "--days", "2", "--homes", "1", "--trees", "2", "--no-progress",
                 "--config", str(config)]) == 0
    written = Path(json.loads(capsys.readouterr().out.strip().splitlines()[-1])["model"])
    assert written == config / "household_scene.onnx" and written.is_file()
    assert list(cwd.iterdir()) == []
    recognizer = recognizer_from_config({}, config)
    assert recognizer is not None and recognizer.model_path == written
    assert recognizer.review_model_path is None  # no review model trained: the live one reviews
    assert "household_scene.onnx" in _owned_files(config, {})
