from qilu_hub.bus import EventBus
from qilu_hub.context import Context
from qilu_hub.states import EVENT_STATE_CHANGED, StateMachine


def test_set_fires_event_with_old_and_new() -> None:
    bus = EventBus()
    states = StateMachine(bus)
    events = []
    bus.listen(EVENT_STATE_CHANGED, events.append)
    ctx = Context("driver:test")
    states.async_set("light.a", "off", {"brightness": 0}, ctx)
    states.async_set("light.a", "on", {"brightness": 255})
    assert [e.data["new_state"].value for e in events] == ["off", "on"]
    assert events[1].data["old_state"].value == "off"
    assert events[0].context is ctx and events[0].data["new_state"].context.origin == "driver:test"


def test_unchanged_write_is_not_an_event_and_last_changed_tracks_value() -> None:
    bus = EventBus()
    states = StateMachine(bus)
    events = []
    bus.listen(EVENT_STATE_CHANGED, events.append)
    first = states.async_set("sensor.t", 20.5, {"unit": "°C"})
    same = states.async_set("sensor.t", 20.5, {"unit": "°C"})
    assert same is first and len(events) == 1
    attr_only = states.async_set("sensor.t", 20.5, {"unit": "°C", "x": 1})
    assert attr_only.last_changed == first.last_changed
    assert attr_only.last_updated >= first.last_updated
    changed = states.async_set("sensor.t", 21.0)
    assert changed.last_changed >= attr_only.last_updated
    assert changed.attributes == {"unit": "°C", "x": 1}  # attributes kept when not given
    forced = states.async_set("sensor.t", 21.0, force_update=True)
    assert forced is not changed and len(events) == 4


def test_remove_fires_with_no_new_state() -> None:
    bus = EventBus()
    states = StateMachine(bus)
    events = []
    states.async_set("switch.x", "on")
    bus.listen(EVENT_STATE_CHANGED, events.append)
    assert states.async_remove("switch.x")
    assert events[0].data["new_state"] is None and states.get("switch.x") is None
    assert not states.async_remove("switch.x")
