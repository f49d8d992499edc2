"""python-matter-server's client as the hub and the conformance kit use it: :func:`client_class`.

Two things the pinned client (7.0.1) does not do. It tells subscribers the new value of an attribute but not
*which* attribute (one subscription per attribute path of every node would be thousands of callbacks). And it
builds a typed model of every node, raising out of its message loop when a value does not fit the model (an
appliance sending OnOff as an integer): that ends the connection, and the server's dump of all nodes at the next
connect raises again, so one such appliance would cut the hub off from every Matter appliance. Here a value the
model refuses is left out of the model and handed to ``on_refused`` instead; everything else goes on.
The hooks are the few places the pinned version handles these messages.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import aiohttp
    from matter_server.client import MatterClient

_LOGGER = logging.getLogger(__name__)

# (node id, "endpoint/cluster/attribute", value)
AttributeHandler = Callable[[int, str, Any], None]
# what the typed model raises for a value that does not fit it (KeyError: a required value that is null)
_MODEL_ERRORS = (TypeError, ValueError, KeyError)


def refused_values(node: dict[str, Any]) -> dict[str, Any]:
    """The attribute values of ``node`` (the server's node data) that the client's typed model refuses."""
    from matter_server.client.models.node import MatterEndpoint

    # An endpoint of no node, only to try each value on; the model checks one value at a time.
    probe = MatterEndpoint(endpoint_id=0, attributes_data={}, node=None)  # type: ignore[arg-type]
    refused = {}
    for path, value in (node.get("attributes") or {}).items():
        try:
            probe.set_attribute_value(path, value)
        except _MODEL_ERRORS:
            refused[path] = value
    return refused


def client_class() -> Callable[..., MatterClient]:
    """``cls(url, session, on_attribute=None, on_refused=None)``: ``on_attribute`` hears every attribute update
    with its path; ``on_refused`` every value the typed model refused (in a node's data or an update), which then
    reaches neither the model nor ``on_attribute``."""
    from matter_server.client import MatterClient
    from matter_server.client.models.node import MatterNode
    from matter_server.common.helpers.util import dataclass_from_dict
    from matter_server.common.models import EventMessage, EventType, MatterNodeData, SuccessResultMessage

    class HubMatterClient(MatterClient):
        def __init__(self, url: str, session: aiohttp.ClientSession, on_attribute: AttributeHandler | None = None,
                     on_refused: AttributeHandler | None = None) -> None:
            super().__init__(url, session)
            self._on_attribute = on_attribute
            self._on_refused = on_refused
            self._dump_next = False
            receive = self.connection.receive_message_or_raise

            async def receive_fitted() -> Any:
                message = await receive()
                if self._dump_next and isinstance(message, SuccessResultMessage):
                    # start_listening's first answer, every node: the client builds them all before listening
                    self._dump_next = False
                    if isinstance(message.result, list):
                        message.result = [node if self._fits(node) else self._fitted(node)
                                          for node in message.result]
                return message

            self.connection.receive_message_or_raise = receive_fitted  # type: ignore[method-assign]

        async def start_listening(self, init_ready: Any = None) -> None:
            self._dump_next = True
            await super().start_listening(init_ready)

        @staticmethod
        def _fits(node: Any) -> bool:
            try:
                MatterNode(dataclass_from_dict(MatterNodeData, node))
            except _MODEL_ERRORS:
                return False
            return True

        def _fitted(self, node: Any) -> Any:
            if not isinstance(node, dict):
                return node
            refused = refused_values(node)
            for path, value in refused.items():
                self._refused(int(node.get("node_id", 0)), path, value)
            return {**node, "attributes": {p: v for p, v in node["attributes"].items() if p not in refused}}

        def _refused(self, node_id: int, path: str, value: Any) -> None:
            if self._on_refused is not None:
                self._on_refused(node_id, path, value)

        def _handle_event_message(self, msg: EventMessage) -> None:
            try:
                super()._handle_event_message(msg)
            except _MODEL_ERRORS:
                if msg.event in (EventType.NODE_ADDED, EventType.NODE_UPDATED):
                    msg.data = self._fitted(msg.data)
                    super()._handle_event_message(msg)  # what still fails is not a value's type: as before
                elif msg.event == EventType.ATTRIBUTE_UPDATED:
                    node_id, path, value = msg.data
                    self._refused(node_id, path, value)
                else:
                    raise

        def _signal_event(self, event: EventType, data: Any = None, node_id: int | None = None,
                          attribute_path: str | None = None) -> None:
            super()._signal_event(event, data, node_id, attribute_path)
            if (self._on_attribute is not None and event is EventType.ATTRIBUTE_UPDATED and node_id is not None
                    and attribute_path):
                try:
                    self._on_attribute(node_id, attribute_path, data)
                except Exception:  # a bad report costs that report only
                    _LOGGER.exception("Matter: handling report %s of node %s failed", attribute_path, node_id)

    return HubMatterClient
