"""``render_template``: HA's template functions over the hub, re-rendered on changes, scoped, bounded."""

from __future__ import annotations

from typing import Any

import aiohttp

from .conftest import LIGHT, PLUG, Env
from .test_registry_ws import Ws, connect


async def render(ws: Ws, template: str, **extra: Any) -> tuple[int, Any]:
    """Subscribe; the first event's result (and the subscription id)."""
    await ws.ok("render_template", template=template, **extra)
    sub = ws.next_id
    events = await ws.wait_events(sub, 1)
    assert events, "no first render"
    return sub, events[0]


async def test_template_functions_over_states_and_registries(env: Env, session: aiohttp.ClientSession) -> None:
    ws = await connect(env, session, env.admin)
    light = env.hub.entities.get(LIGHT)
    assert light is not None
    cases: list[tuple[str, Any]] = [
        (f"{{{{ states('{LIGHT}') }}}}", "off"),
        (f"{{{{ is_state('{LIGHT}', 'off') }}}}", True),
        ("{{ states.light.living_room_ceiling_light.state }}", "off"),
        ("{{ states.light | map(attribute='entity_id') | list }}", [LIGHT]),
        ("{{ states | selectattr('domain', 'eq', 'switch') | map(attribute='entity_id') | list | tojson }}", [PLUG]),
        (f"{{{{ area_name('{LIGHT}') }}}} / {{{{ area_id('Living Room') }}}}", "Living Room / living_room"),
        ("{{ area_entities('living_room') }}", sorted(e.entity_id for e in env.hub.entities.all()
                                                     if env.hub.area_of(e.entity_id) == "living_room")),
        (f"{{{{ device_attr(device_id('{LIGHT}'), 'name') }}}}", "Ceiling Light"),
        (f"{{{{ '{LIGHT}' | device_id == '{light.device_id}' }}}}", True),
        ("{{ integration_entities('qilu_hub') | length }}", len(env.hub.entities.all())),
        (f"{{{{ expand('{LIGHT}', '{PLUG}') | map(attribute='entity_id') | list }}}}", [LIGHT, PLUG]),
        ("{{ states('sensor.nothing_here') }}", "unknown"),
        ("{{ labels() }}", []),
        ("{{ '0123' }}", "0123"),  # HA keeps leading zeros as text
        ("{{ answer * 2 }}", 84),
    ]
    for template, expected in cases:
        _, event = await render(ws, template, variables={"answer": 42})
        assert event["result"] == expected, (template, event)
    # the loop clients such as Immersive-Home use to list devices by area
    loop = ("{% for area in areas() %}{{ area_name(area) }}: "
            "{{ area_devices(area) | map('device_attr', 'name') | join(', ') }}\n{% endfor %}")
    _, event = await render(ws, loop)
    assert "Living Room: Ceiling Light, TV Plug" in event["result"]
    assert event["listeners"]["time"] is False
    await ws.ws.close()


async def test_subscription_rerenders_when_what_it_read_changes(env: Env, session: aiohttp.ClientSession) -> None:
    ws = await connect(env, session, env.admin)
    sub, first = await render(ws, f"{{{{ states('{LIGHT}') }}}} in {{{{ area_name('{LIGHT}') }}}}")
    assert first == {"result": "off in Living Room",
                     "listeners": {"all": False, "domains": [], "entities": [LIGHT], "time": False}}
    env.hub.states.async_set(PLUG, "on")  # not read: no event
    env.hub.states.async_set(LIGHT, "on")
    events = await ws.wait_events(sub, 2)
    assert events[1]["result"] == "on in Living Room"
    light = env.hub.entities.get(LIGHT)
    assert light is not None and light.device_id is not None
    env.hub.devices.async_update(light.device_id, area_id="kitchen")  # a registry change it depends on
    events = await ws.wait_events(sub, 3)
    assert events[2]["result"] == "on in Kitchen"
    assert len(ws.events[sub]) == 3
    await ws.ok("unsubscribe_events", subscription=sub)
    env.hub.states.async_set(LIGHT, "off")
    await ws.call("ping")
    await ws.call("ping")
    assert len(ws.events[sub]) == 3  # nothing after unsubscribing
    await ws.ws.close()


async def test_scoped_token_renders_only_its_scope(env: Env, session: aiohttp.ClientSession) -> None:
    ws = await connect(env, session, env.kitchen)
    _, event = await render(ws, "{{ states | map(attribute='entity_id') | list }}")
    assert event["result"] == ["binary_sensor.kitchen_motion", "sensor.kitchen_motion_battery"]
    for template, expected in [
        (f"{{{{ states('{LIGHT}') }}}}", "unknown"),
        (f"{{{{ state_attr('{LIGHT}', 'brightness') }}}}", None),
        ("{{ area_entities('living_room') }}", []),
        ("{{ areas() }}", ["kitchen"]),
        ("{{ integration_entities('qilu_hub') | length }}", 2),
        (f"{{{{ device_id('{LIGHT}') }}}}", None),
    ]:
        _, event = await render(ws, template)
        assert event["result"] == expected, template
    await ws.ws.close()


async def test_bad_and_expensive_templates_are_errors(env: Env, session: aiohttp.ClientSession) -> None:
    ws = await connect(env, session, env.admin)
    for private in ["{{ ''.__class__ }}", "{{ states.__init__ }}", "{{ states.light._view }}"]:
        _, event = await render(ws, private)  # the sandbox's answer: undefined, shown as nothing
        assert event["result"] == "", private
    assert await ws.error("render_template", template="{{ [1].append(2) }}") == "template_error"  # mutation
    for bad in ["{{ states(", "{{ now() }}",
                "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}",
                "{{ 'x' * 999999999 }}", 42]:
        assert await ws.error("render_template", template=bad) in ("template_error", "invalid_format"), bad
    assert await ws.error("render_template", template="{{ 1 }}", variables=[1]) == "invalid_format"
    _, event = await render(ws, "{{ 1 + 1 }}")  # the connection still serves
    assert event["result"] == 2
    await ws.ws.close()


async def test_device_listing_the_way_headset_apps_ask_for_it(env: Env, session: aiohttp.ClientSession) -> None:
    """Immersive-Home lists devices with one render_template (its templates/devices.j2): device ids mapped from
    the states, a namespace gathering a dict per device, the rest under one group. The same shape, in our words."""
    template = (
        "{% set ids = states | map(attribute='entity_id') | map('device_id') | unique | reject('eq', None) | list %}"
        "{% set acc = namespace(found=[]) %}"
        "{% for d in ids %}{% set members = device_entities(d) | list %}"
        "{% if members %}{% set acc.found = acc.found + [{d: {'name': device_attr(d, 'name'), 'entities': members}}] %}"
        "{% endif %}{% endfor %}"
        "{% set loose = namespace(ids=[]) %}"
        "{% for s in states %}{% if device_id(s.entity_id) == None %}{% set loose.ids = loose.ids + [s.entity_id] %}"
        "{% endif %}{% endfor %}"
        "{{ acc.found + [{'other': {'name': 'Other', 'entities': loose.ids}}] }}"
    )
    ws = await connect(env, session, env.admin)
    _, event = await render(ws, template)
    listing = {key: value for item in event["result"] for key, value in item.items()}
    light_device = env.hub.entities.get(LIGHT).device_id  # type: ignore[union-attr]
    assert listing[light_device] == {"name": "Ceiling Light", "entities": [LIGHT]}
    with_device = {e.entity_id for e in env.hub.entities.all() if e.device_id}
    assert set(listing["other"]["entities"]) == {s.entity_id for s in env.hub.states.all()} - with_device
    assert len(listing) == len(env.hub.devices.all()) + 1
    await ws.ws.close()
