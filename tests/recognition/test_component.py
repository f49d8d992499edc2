"""The component inside a real hub: state changes in, sensor.household_scene and scene_recognized out."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from qilu_hub import Hub
from qilu_hub.recognition.component import ENTITY_ID, EVENT_SCENE_RECOGNIZED, SceneRecognizer
from qilu_hub.recognition.features import DEFAULT_SPEC


def _make_hub(tmp_path: Path) -> Hub:
    return Hub(tmp_path / "config", {}, recorder=False)


def _add_entities(hub: Hub) -> dict[str, str]:
    hub.areas.async_get_or_create("Kitchen")
    hub.areas.async_get_or_create("Lounge")
    motion = hub.entities.async_get_or_create(
        unique_id="t:kitchen-motion", capabilities=("motion",), name="Kitchen Motion", device_class="motion",
        area_id="kitchen",
    )
    tv = hub.entities.async_get_or_create(
        unique_id="t:tv-power", capabilities=("power",), name="TV Power", device_class="power", area_id="lounge"
    )
    temp = hub.entities.async_get_or_create(
        unique_id="t:temp", capabilities=("temperature",), name="Temp", device_class="temperature"
    )
    return {"motion": motion.entity_id, "tv": tv.entity_id, "temp": temp.entity_id}


async def test_events_drive_the_scene_entity(tmp_path: Path, trained: tuple[Any, Path]) -> None:
    hub = _make_hub(tmp_path)
    now = [1_700_000_000.0]
    recognizer = SceneRecognizer(trained[1], interval=3600, debounce=0, clock=lambda: now[0])
    hub.add_component(recognizer)
    fired: list[dict[str, Any]] = []
    hub.bus.listen(EVENT_SCENE_RECOGNIZED, lambda e: fired.append(e.data))
    await hub.async_start()
    try:
        ids = _add_entities(hub)
        assert recognizer.channel_for(ids["motion"]) == ("kitchen", "motion")
        assert recognizer.channel_for(ids["tv"]) == ("living_room", "power")  # "Lounge" is the living room
        assert recognizer.channel_for(ids["temp"]) is None
        hub.states.async_set(ids["motion"], "on")
        hub.states.async_set(ids["tv"], 80.0)
        named = dict(zip(DEFAULT_SPEC.feature_names, recognizer.extractor.features(now[0] + 1e9), strict=True))
        assert named["kitchen.motion.active"] == 1.0 and named["living_room.power.active"] == 1.0
        result = recognizer.infer()
        assert result is not None
        state = hub.states.get(ENTITY_ID)
        assert state is not None and state.value == result.label
        assert set(state.attributes["probabilities"]) == set(recognizer.model.labels)  # type: ignore[union-attr]
        assert state.attributes["feature_spec"] == DEFAULT_SPEC.version
        assert isinstance(state.attributes["drivers"], dict)
        assert fired and fired[0]["label"] == result.label and "probabilities" in fired[0]
        recognizer.infer()
        assert len(fired) == 1  # an event only when the recognised scene changes
    finally:
        await hub.async_stop()


async def test_corrupt_model_leaves_hub_running(tmp_path: Path) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x00garbage")
    hub = _make_hub(tmp_path)
    recognizer = SceneRecognizer(bad)
    hub.add_component(recognizer)
    await hub.async_start()
    try:
        state = hub.states.get(ENTITY_ID)
        assert state is not None and state.value == "unavailable"
        assert "could not be loaded" in state.attributes["error"]
        (problem,) = hub.problems.all()  # listed for the household's admin too, naming the file
        assert problem.domain == "recognition" and problem.file == str(bad)
        assert "scene recognition is off" in problem.message
        assert recognizer.infer() is None
        hub.states.async_set("binary_sensor.x", "on")  # the hub still works
        assert hub.states.get("binary_sensor.x") is not None
    finally:
        await hub.async_stop()


async def test_missing_model_says_why(tmp_path: Path) -> None:
    hub = _make_hub(tmp_path)
    hub.add_component(SceneRecognizer(tmp_path / "absent.onnx"))
    await hub.async_start()
    try:
        state = hub.states.get(ENTITY_ID)
        assert state is not None and "does not exist" in state.attributes["error"]
    finally:
        await hub.async_stop()


async def test_relevant_event_triggers_inference_in_the_loop(tmp_path: Path, trained: tuple[Any, Path]) -> None:
    import asyncio

    hub = _make_hub(tmp_path)
    recognizer = SceneRecognizer(trained[1], interval=3600, debounce=0)  # the schedule alone would not fire
    hub.add_component(recognizer)
    published = asyncio.Event()
    hub.bus.listen(EVENT_SCENE_RECOGNIZED, lambda e: published.set())
    await hub.async_start()
    try:
        ids = _add_entities(hub)
        before = recognizer.extractor.features(0.0).copy()
        hub.states.async_set(ids["temp"], 21.5)  # irrelevant: no channel, no wake-up
        assert not recognizer._wake.is_set()
        assert (recognizer.extractor.features(0.0) == before).all()
        hub.states.async_set(ids["motion"], "on")
        await asyncio.wait_for(published.wait(), timeout=30)  # a guard against hanging, not a timing check
        state = hub.states.get(ENTITY_ID)
        assert state is not None and state.value in recognizer.model.labels  # type: ignore[union-attr]
    finally:
        await hub.async_stop()


async def test_devices_already_on_at_start_are_known(tmp_path: Path, trained: tuple[Any, Path]) -> None:
    hub = _make_hub(tmp_path)
    ids = _add_entities(hub)
    hub.states.async_set(ids["tv"], 95.0)  # the TV was on before the recogniser started
    recognizer = SceneRecognizer(trained[1], interval=3600)
    hub.add_component(recognizer)
    await hub.async_start()
    try:
        named = dict(zip(DEFAULT_SPEC.feature_names, recognizer.extractor.features(1e10), strict=True))
        assert named["living_room.power.active"] == 1.0
        assert named["kitchen.motion.active"] == 0.0
    finally:
        await hub.async_stop()


async def test_per_device_model_with_decoder(tmp_path: Path, sim_dataset: Any) -> None:
    """A home-trained model with a device block and an HMM decoder: the component extracts the model's
    spec and filters through the decoder (one committed step per window, previews in between)."""
    from qilu_hub.recognition.training import TrainConfig, build_matrix, fit, fit_decoder, to_onnx

    hub = _make_hub(tmp_path)
    ids = _add_entities(hub)
    spec = DEFAULT_SPEC.with_sources([ids["motion"], ids["tv"], *{e.source for e in sim_dataset.events}])
    matrix = build_matrix(sim_dataset, spec)
    model = fit(matrix.X, matrix.y, TrainConfig(n_estimators=4, max_depth=6, n_jobs=1))
    labels = [str(c) for c in model.classes_]
    decoder = fit_decoder(matrix.y, matrix.days, labels)
    path = tmp_path / "home.onnx"
    path.write_bytes(to_onnx(model, spec, decoder=decoder))

    now = [1_700_000_000.0]
    recognizer = SceneRecognizer(path, interval=3600, debounce=0, clock=lambda: now[0])
    hub.add_component(recognizer)
    await hub.async_start()
    try:
        assert recognizer.spec == spec and recognizer.decoder is not None
        hub.states.async_set(ids["tv"], 80.0)
        named = dict(zip(spec.feature_names, recognizer.extractor.features(now[0]), strict=True))
        assert named[f"device.{ids['tv']}.active"] == 1.0 and named[f"device.{ids['tv']}.last_fired"] == 1.0
        assert hub.states.get(ENTITY_ID) is None
        # The decoder reads the model's probabilities unrounded (the displayed table is rounded).
        expected = decoder.update(recognizer.model.predict_proba(  # type: ignore[union-attr]
            recognizer.extractor.features(now[0]))[0])
        first = recognizer.infer()
        assert first is not None
        state = hub.states.get(ENTITY_ID)
        assert state is not None and state.attributes["feature_spec"] == spec.version
        # The smoother's first update takes the decoder's posterior as is.
        assert first.probabilities == {c: round(float(p), 4) for c, p in zip(labels, expected, strict=True)}
        committed = recognizer._decoded_at
        assert committed is not None
        now[0] += 5  # an inference soon after an event: a preview, the filter does not advance
        recognizer.infer()
        assert recognizer._decoded_at == committed
        now[0] += 3 * 60  # three windows later: committed, three transition steps
        recognizer.infer()
        assert recognizer._decoded_at == committed + 3 * 60
    finally:
        await hub.async_stop()


async def test_a_retrained_model_file_is_picked_up_without_restart(
    tmp_path: Path, trained: tuple[Any, Path], sim_dataset: Any
) -> None:
    """`model train --out` over the running hub's model file: the next inference uses the new model; a
    broken file written over it is refused and the loaded model stays."""
    import os
    import shutil

    from qilu_hub.recognition.component import EVENT_MODEL_LOADED
    from qilu_hub.recognition.training import TrainConfig, build_matrix, fit, to_onnx

    path = tmp_path / "home.onnx"
    shutil.copy(trained[1], path)
    hub = _make_hub(tmp_path)
    recognizer = SceneRecognizer(path, interval=3600, debounce=0)
    hub.add_component(recognizer)
    loaded: list[dict[str, Any]] = []
    hub.bus.listen(EVENT_MODEL_LOADED, lambda e: loaded.append(e.data))
    await hub.async_start()
    try:
        assert not recognizer.check_model_file()  # unchanged: nothing to do
        recognizer.infer()
        assert len(hub.states.get(ENTITY_ID).attributes["probabilities"]) > 2  # type: ignore[union-attr]

        two = sim_dataset.relabel(lambda label: "sleeping" if label == "sleeping" else "idle")
        matrix = build_matrix(two, DEFAULT_SPEC)
        partial = tmp_path / ".home.onnx.partial"
        partial.write_bytes(to_onnx(fit(matrix.X, matrix.y, TrainConfig(n_estimators=4, n_jobs=1)), DEFAULT_SPEC))
        os.replace(partial, path)
        assert recognizer.check_model_file()
        assert loaded == [{"model": str(path), "labels": ["idle", "sleeping"]}]
        recognizer.infer()
        state = hub.states.get(ENTITY_ID)
        assert state is not None and set(state.attributes["probabilities"]) == {"idle", "sleeping"}

        assert hub.problems.all() == []
        path.write_bytes(b"\x00not a model")
        assert not recognizer.check_model_file()
        assert recognizer.error is not None and "could not be loaded" in recognizer.error
        assert recognizer.model is not None and recognizer.model.labels == ["idle", "sleeping"]
        assert recognizer.infer() is not None and len(loaded) == 1
        (problem,) = hub.problems.all()
        assert problem.file == str(path) and "the loaded model keeps working" in problem.message
        shutil.copy(trained[1], path)
        assert recognizer.check_model_file() and hub.problems.all() == []  # a usable file clears it
    finally:
        await hub.async_stop()


async def test_a_model_missing_at_start_is_used_once_it_appears(tmp_path: Path, trained: tuple[Any, Path]) -> None:
    import asyncio
    import shutil

    path = tmp_path / "home.onnx"
    hub = _make_hub(tmp_path)
    hub.add_component(SceneRecognizer(path, interval=0.05, debounce=0))
    await hub.async_start()
    try:
        assert hub.states.get(ENTITY_ID).value == "unavailable"  # type: ignore[union-attr]
        shutil.copy(trained[1], path)
        for _ in range(500):  # the schedule notices the file; no restart
            if hub.states.get(ENTITY_ID).value != "unavailable":  # type: ignore[union-attr]
                break
            await asyncio.sleep(0.01)
        state = hub.states.get(ENTITY_ID)
        assert state is not None and state.value != "unavailable" and "probabilities" in state.attributes
    finally:
        await hub.async_stop()
