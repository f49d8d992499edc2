"""Hub federation over MQTT: commands between qilu hubs, their replies, and peers' state documents.

A hub runs a command on an entity another hub exports by publishing a ``call`` to that
hub's call topic with its own id as origin and a reply topic; the owner runs it through its
command router and answers on the reply topic, so the caller hears the peer's verdict
(or a timeout below the command router's own). Peers' state documents carry the hub
where the change started, so changes keep their origin across hubs.

Loop freedom: imported entities are never exported; commands and state documents carry
the origin hub id, and a hub drops what it sent itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from typing import Any

import aiomqtt

from ..capabilities import CommandError
from ..context import Context
from .connection import BridgeStats, MqttClient
from .export import ORIGIN_PREFIX, ExportTopics
from .settings import valid_id
from .template import TemplateError

__all__ = ["QOS_COMMAND", "REPLY", "REPLY_TIMEOUT_S", "Federation", "PeerState"]

QOS_COMMAND = 1
REPLY_TIMEOUT_S = 8.0  # below the command router's 10 s, so the caller hears the peer's answer
REPLY = "_reply"  # cannot clash with an object id: those always hold a domain before "_"


class PeerState:
    """A peer hub's state document, read: the value, attributes, and the context it carries here."""

    __slots__ = ("attributes", "context", "value")

    def __init__(self, value: Any, attributes: dict[str, Any], context: Context) -> None:
        self.value = value
        self.attributes = attributes
        self.context = context


class Federation:
    """The call/reply protocol between hubs, seen from this hub."""

    __slots__ = ("_replies", "_stats", "_topics", "hub_id")

    def __init__(self, topics: ExportTopics, stats: BridgeStats) -> None:
        self._topics = topics
        self.hub_id = topics.hub_id
        self._stats = stats
        self._replies: dict[str, asyncio.Future[dict[str, Any]]] = {}  # call id -> peer's answer

    @property
    def reply_topic(self) -> str:
        return f"{self._topics.base}/{self.hub_id}/{REPLY}"

    # -- calls addressed to us ------------------------------------------------------------
    def reply_address(self, payload: bytes) -> tuple[str, str] | None:
        """Where a federated caller waits for the outcome: (topic, call id), if it asked and looks sane."""
        try:
            data = json.loads(payload)
        except ValueError:
            return None
        if not isinstance(data, dict):
            return None
        topic, call_id = data.get("reply_to"), data.get("id")
        base = self._topics.base
        if (isinstance(topic, str) and isinstance(call_id, str) and topic.startswith(base + "/")
                and topic.endswith("/" + REPLY) and "+" not in topic and "#" not in topic and len(call_id) <= 64):
            return topic, call_id
        return None

    def parse_call(self, payload: bytes) -> tuple[str, dict[str, Any], Context | None]:
        """Command, arguments and context of a peer's call; no context means it is our own call echoed."""
        try:
            data = json.loads(payload)
        except ValueError:
            raise CommandError("invalid_format", "call payload is not JSON") from None
        if not isinstance(data, dict) or not isinstance(data.get("command"), str):
            raise CommandError("invalid_format", "call payload needs a command")
        args = data.get("args") or {}
        if not isinstance(args, dict):
            raise CommandError("invalid_format", "call args must be an object")
        origin = data.get("origin")
        if origin == self.hub_id:
            return data["command"], args, None  # our own command coming back: an echo
        if not isinstance(origin, str) or not valid_id(origin):
            raise CommandError("invalid_format", "call payload needs the origin hub id")
        remote: dict[str, Any] = data["context"] if isinstance(data.get("context"), dict) else {}
        parent = remote.get("id") if isinstance(remote.get("id"), str) else None
        return data["command"], args, Context(f"{ORIGIN_PREFIX}{origin}", parent_id=parent)

    @staticmethod
    async def send_reply(client: MqttClient | None, reply: tuple[str, str], body: dict[str, Any]) -> None:
        if client is not None:
            with contextlib.suppress(aiomqtt.MqttError):
                await client.publish(reply[0], json.dumps({"id": reply[1], **body}), qos=QOS_COMMAND)

    # -- calls we make ----------------------------------------------------------------------
    def on_reply(self, payload: bytes) -> None:
        try:
            data = json.loads(payload)
        except ValueError:
            return
        if isinstance(data, dict) and isinstance(data.get("id"), str):
            future = self._replies.get(data["id"])
            if future is not None and not future.done():
                future.set_result(data)

    async def call_peer(self, client: MqttClient, peer: str | None, call_topic: str, command: str,
                        args: dict[str, Any], context: Context) -> None:
        """Run a command in the peer hub that owns the entity, and wait for its verdict."""
        origin = context.origin[len(ORIGIN_PREFIX):] if context.origin.startswith(ORIGIN_PREFIX) else self.hub_id
        call_id = uuid.uuid4().hex
        body = {"command": command, "args": args, "origin": origin, "id": call_id, "reply_to": self.reply_topic,
                "context": {"id": context.id, "origin": context.origin}}
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._replies[call_id] = future
        try:
            await client.publish(call_topic, json.dumps(body, separators=(",", ":")), qos=QOS_COMMAND)
            self._stats.commands_out += 1
            answer = await asyncio.wait_for(future, REPLY_TIMEOUT_S)
        except aiomqtt.MqttError as err:
            raise CommandError("unavailable", f"MQTT publish failed: {err}") from None
        except TimeoutError:
            raise CommandError("timeout", f"hub {peer} did not answer within {REPLY_TIMEOUT_S:g} s") from None
        finally:
            self._replies.pop(call_id, None)
        if not answer.get("ok"):
            code = answer.get("code") if isinstance(answer.get("code"), str) else "driver_error"
            raise CommandError(str(code), f"hub {peer}: {answer.get('message', 'refused')}")

    # -- peers' states ----------------------------------------------------------------------
    def read_peer_state(self, payload: bytes, peer_hub: str | None) -> PeerState | None:
        """A peer's state document; None for nothing new (empty, or our own change echoed back)."""
        if not payload:
            return None
        try:
            doc = json.loads(payload)
        except ValueError:
            raise TemplateError("peer state is not JSON") from None
        if not isinstance(doc, dict) or "value" not in doc:
            raise TemplateError("peer state lacks a value")
        if doc.get("hub") == self.hub_id:
            self._stats.echoes_ignored += 1
            return None
        origin = doc.get("origin") if isinstance(doc.get("origin"), str) else peer_hub
        remote: dict[str, Any] = doc["context"] if isinstance(doc.get("context"), dict) else {}
        context = Context(f"{ORIGIN_PREFIX}{origin}",
                          parent_id=remote.get("id") if isinstance(remote.get("id"), str) else None)
        return PeerState(doc["value"], dict(doc.get("attributes") or {}), context)
