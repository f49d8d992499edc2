"""``qilu-hub model train`` and ``eval`` end to end on simulator and tiny Kasteren-format data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hub.cli import main
from hub.recognition.features import DEFAULT_SPEC
from hub.recognition.runtime import SceneModel

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
