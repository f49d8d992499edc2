"""Cost of one template render (µs, median of several runs): MQTT value templates on each message, and
``render_template`` over a hub with 1,000 states, through the bounded jinja2 sandbox of ``hub/templates.py``.

Prints JSON. Usage: python bench/templates.py [--renders N] [--runs R]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable

from qilu_hub.core import Hub
from qilu_hub.mqtt.template import compile_template
from qilu_hub.templates import HubView, compile_hub_template, render_hub

STATES = 1000
PAYLOAD = b'{"temperature": 21.56, "humidity": 40, "battery": 97, "linkquality": 120}'
VALUE_TEMPLATES = {
    "path": "{{ value_json.temperature }}",
    "path_filter": "{{ value_json.temperature | round(1) }}",
    "condition": "{% if value_json.battery > 20 %}ok{% else %}low{% endif %}",
}
HUB_TEMPLATES = {
    "one_state": "{{ states('sensor.entity_7') }}",
    "domain_count": "{{ states.sensor | selectattr('state', 'eq', '5') | list | count }}",
}


def median_us(render: Callable[[], object], renders: int, runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        for _ in range(renders):
            render()
        times.append((time.perf_counter() - start) / renders * 1e6)
    return round(statistics.median(times), 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--renders", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    out: dict[str, object] = {"unit": "µs per render", "runs": args.runs}
    for name, source in VALUE_TEMPLATES.items():
        template = compile_template(source)
        assert template is not None
        out[f"mqtt_{name}"] = median_us(lambda t=template: t.render(PAYLOAD), args.renders, args.runs)
    with tempfile.TemporaryDirectory() as directory:
        hub = Hub(directory, {}, recorder=False)
        for i in range(STATES):
            hub.states.async_set(f"sensor.entity_{i}", i % 10, {"unit_of_measurement": "W"})
        for name, source in HUB_TEMPLATES.items():
            compiled = compile_hub_template(source)
            renders = args.renders if name == "one_state" else max(1, args.renders // 100)
            out[f"hub_{name}_{STATES}_states"] = median_us(
                lambda c=compiled: render_hub(c, HubView(hub)), renders, args.runs)
        hub.storage.close()
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
