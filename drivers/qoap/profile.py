"""The Qilu Open Appliance Profile (QOAP), version 1.1: constants and validators shared by the
generic driver, the simulator and the conformance kit. The specification is docs/appliance-profile.md.

1.1 adds the identity proof (§8): the appliance holds an Ed25519 key; the hub pins its public key at
adoption and, when the appliance is announced at another address, follows it only if the appliance
there signs a fresh challenge, bound to that address, with the pinned key.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from typing import Any

from qilu_hub.sdk import CAPABILITIES, CommandError, domain_for, merged_attributes

PROFILE_NAME = "qoap"
PROFILE_VERSION = "1.1"
IDENTITY_SINCE = (1, 1)  # the first version with the identity proof (§8)
MDNS_TYPE = "_qoap._tcp.local."
BASE_PATH = "/qoap"
DESCRIPTION_PATH = f"{BASE_PATH}/description"
STATE_PATH = f"{BASE_PATH}/state"
COMMAND_PATH = f"{BASE_PATH}/command"
WS_PATH = f"{BASE_PATH}/ws"
RESTART_PATH = f"{BASE_PATH}/restart"
IDENTITY_PATH = f"{BASE_PATH}/identity"
IDENTITY_ALG = "ed25519"
IDENTITY_CONTEXT = b"qoap-identity-v1"
CHALLENGE_BYTES = 32  # what the hub sends
MIN_CHALLENGE_BYTES, MAX_CHALLENGE_BYTES = 16, 64  # what an appliance accepts
MSGPACK_CONTENT_TYPE = "application/msgpack"

# BLE flavour (docs/appliance-profile.md §7; drivers/qoap/ble.py).
BLE_SERVICE_UUID = "7e1a0001-5143-4f41-9000-716f61700001"
BLE_DESCRIPTION_CHAR_UUID = "7e1a0002-5143-4f41-9000-716f61700001"
BLE_STATE_CHAR_UUID = "7e1a0003-5143-4f41-9000-716f61700001"
BLE_COMMAND_CHAR_UUID = "7e1a0004-5143-4f41-9000-716f61700001"
BLE_CHAR_UUIDS = (BLE_DESCRIPTION_CHAR_UUID, BLE_STATE_CHAR_UUID, BLE_COMMAND_CHAR_UUID)

TXT_REQUIRED = ("id", "model", "mf", "pv", "caps")
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{3,63}$")
_PV_RE = re.compile(r"^1\.\d+$")  # this hub speaks major version 1
_KEY_RE = re.compile(r"^[a-z0-9_]{1,32}$")


def txt_errors(properties: Mapping[str, str | None]) -> list[str]:
    """What is wrong with an advertisement's TXT record (empty list: conforms)."""
    errors = [f"TXT key {key!r} is missing" for key in TXT_REQUIRED if not properties.get(key)]
    device_id = properties.get("id")
    if device_id and not _ID_RE.match(device_id):
        errors.append(f"TXT id {device_id!r} must be 4-64 characters of A-Z a-z 0-9 . _ -")
    pv = properties.get("pv")
    if pv and not _PV_RE.match(pv):
        errors.append(f"TXT pv {pv!r} is not a 1.x profile version")
    for name in filter(None, (properties.get("caps") or "").split(",")):
        if name not in CAPABILITIES:
            errors.append(f"TXT caps names unknown capability {name!r}")
    return errors


def caps_summary(description: Mapping[str, Any]) -> str:
    """The TXT ``caps`` value for a description: its capabilities, sorted, comma-separated."""
    names = {c for entity in description.get("entities", ()) for c in entity.get("capabilities", ())}
    return ",".join(sorted(names))


def description_errors(description: Any) -> list[str]:
    """Check a /qoap/description document against the profile and the capability catalogue."""
    if not isinstance(description, Mapping):
        return ["description is not a JSON object"]
    errors: list[str] = []
    profile = description.get("profile")
    if not isinstance(profile, Mapping) or profile.get("name") != PROFILE_NAME:
        errors.append('profile.name must be "qoap"')
    elif not isinstance(profile.get("version"), str) or not _PV_RE.match(profile["version"]):
        errors.append("profile.version must be 1.x")
    device = description.get("device")
    if not isinstance(device, Mapping):
        errors.append("device is missing")
    else:
        for key in ("id", "name", "manufacturer", "model"):
            if not isinstance(device.get(key), str) or not device[key]:
                errors.append(f"device.{key} must be a non-empty string")
    entities = description.get("entities")
    if not isinstance(entities, list) or not entities:
        return [*errors, "entities must be a non-empty list"]
    seen: set[str] = set()
    for i, entity in enumerate(entities):
        where = f"entities[{i}]"
        if not isinstance(entity, Mapping):
            errors.append(f"{where} is not an object")
            continue
        entity_key = entity.get("key")
        if not isinstance(entity_key, str) or not _KEY_RE.match(entity_key):
            errors.append(f"{where}.key must match [a-z0-9_]{{1,32}}")
        elif entity_key in seen:
            errors.append(f"{where}.key {entity_key!r} is repeated")
        else:
            seen.add(entity_key)
        if not isinstance(entity.get("name"), str) or not entity["name"]:
            errors.append(f"{where}.name must be a non-empty string")
        names = entity.get("capabilities")
        if not isinstance(names, list) or not names:
            errors.append(f"{where}.capabilities must be a non-empty list")
            continue
        unknown = [n for n in names if not isinstance(n, str) or n not in CAPABILITIES]
        if unknown:
            errors.append(f"{where} uses unknown capabilities {unknown}")
            continue
        try:
            domain_for(names)
        except (ValueError, KeyError) as err:
            errors.append(f"{where}: {err}")
    return errors


def state_errors(capabilities: list[str], value: Any, attributes: Mapping[str, Any]) -> list[str]:
    """Check one entity's reported state and attributes against its capabilities' value specs."""
    errors: list[str] = []
    primary = next((CAPABILITIES[n] for n in capabilities if not CAPABILITIES[n].modifier),
                   CAPABILITIES[capabilities[0]])
    try:
        primary.state.check("state", value)
    except CommandError as err:
        errors.append(f"state {value!r}: {err.message}")
    for name, spec in merged_attributes(capabilities).items():
        if name in attributes and attributes[name] is not None:
            try:
                spec.check(name, attributes[name])
            except CommandError as err:
                errors.append(f"attribute {err.message}")
    return errors


# -- identity (§8) ----------------------------------------------------------------------------------------


def version_tuple(pv: str | None) -> tuple[int, int] | None:
    """``"1.1"`` -> ``(1, 1)``; None for anything else."""
    match = re.match(r"^(\d+)\.(\d+)$", pv or "")
    return (int(match[1]), int(match[2])) if match else None


def has_identity(pv: str | None) -> bool:
    """Whether an appliance of profile version ``pv`` must prove its identity (§8)."""
    version = version_tuple(pv)
    return version is not None and version >= IDENTITY_SINCE


def format_address(host: str, port: int) -> str:
    """An endpoint as both sides write it into the signed message: ``10.0.0.5:80``, ``[fe80::1]:80``."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def identity_message(device_id: str, address: str, challenge: bytes) -> bytes:
    """What the appliance signs: context, its id, the address the request reached it on (its own socket's
    local address), and the hub's challenge. The address binds the proof to the endpoint the hub talks to:
    an impostor that relays the challenge to the real appliance gets a signature for the real address."""
    return b"\n".join((IDENTITY_CONTEXT, device_id.encode(), address.encode(), challenge))


def b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def b64decode(text: object) -> bytes:
    """Standard base64 text to bytes; ValueError for anything else."""
    if not isinstance(text, str):
        raise ValueError("expected base64 text")
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as err:
        raise ValueError(f"not base64: {err}") from None
