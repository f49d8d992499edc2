"""Value templates from MQTT discovery, rendered over arbitrary payloads."""

from __future__ import annotations

import atheris

INSTRUMENT = ("qilu_hub.mqtt.template",)
SEEDS = [b"{{ value_json.a[0].b | float | round(2) }}\x00{\"a\": [{\"b\": 1.234}]}", b"{{ value | upper }}\x00on"]


def one(data: bytes) -> None:
    from qilu_hub.mqtt.template import MISSING, TemplateError, compile_template

    source, _, payload = data.partition(b"\x00")
    fdp = atheris.FuzzedDataProvider(source)
    text = fdp.ConsumeUnicodeNoSurrogates(len(source))
    try:
        template = compile_template(text)
    except TemplateError as err:
        assert str(err)
        return
    if template is None:
        return
    try:
        value = template.render(payload)
    except TemplateError:
        return
    assert value is MISSING or value is not None or template.uses_json
