"""The ``matter`` component: one client of matter-server, its nodes as the hub's devices and entities.

When the config has a ``matter:`` section that enables it, the component starts the managed server
(:class:`~qilu_hub.matter.server.ManagedServer`) or uses the configured URL, connects with
python-matter-server's client (imported here, on start, and nowhere else) and keeps the connection up.
Every node the server holds becomes devices through :func:`~qilu_hub.appliances.adoption.adopt_device`,
the one door for every source: the node itself (identity from Basic Information: vendor, product,
serial, unique id, so an appliance also seen through its own protocol is one device) and each bridged
endpoint as a device of its own with ``via_device`` the bridge. Endpoints' clusters become entities by
the table in :mod:`.mapping`; attribute reports update their states in the same event loop turn;
a node's availability, or the lost server connection, goes through the one writer of availability.
Commands come validated by the capability catalogue and are translated by :mod:`.mapping`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..appliances.adoption import adopt_device
from ..appliances.availability import availability
from ..capabilities import CommandError
from ..context import Context
from ..registry import registry_batch
from ..states import UNKNOWN
from . import mapping
from .client import client_class
from .codes import parse_setup_code
from .server import ManagedServer, ServerUnavailable
from .settings import MatterSettings

if TYPE_CHECKING:
    import aiohttp
    from matter_server.client import MatterClient
    from matter_server.client.models.node import MatterNode

    from ..core import Hub
    from ..model import Entity

_LOGGER = logging.getLogger(__name__)

DATA_FOLDER = "matter-server"
RECONNECT = (0.5, 30.0)
COMMISSION_TIMEOUT = 120.0
SOURCE = "matter"
SOFTWARE_VERSION_PATHS = frozenset({"0/40/9", "0/40/10"})  # Basic Information SoftwareVersion(String)


@dataclass(slots=True)
class EntityLink:
    node_id: int
    endpoint: int
    row: mapping.Row


@dataclass(slots=True)
class NodeRecord:
    node_id: int
    device_ids: list[str] = field(default_factory=list)  # the node's device first, then bridged ones
    entity_ids: list[str] = field(default_factory=list)
    by_cluster: dict[tuple[int, int], list[str]] = field(default_factory=dict)  # (endpoint, cluster) -> entities
    identifiers: list[tuple[str, str]] = field(default_factory=list)
    available: bool = False
    # "ep/cluster/attr" -> value: the node's attributes as reported. The client keeps reports in its endpoint
    # objects only (its node_data.attributes stays the snapshot of the last node update), so the hub keeps its own.
    attributes: dict[str, Any] = field(default_factory=dict)
    # endpoint (0: the node) -> (what its device was adopted with, the device id): a node updated with nothing
    # new for a device writes nothing (each device write is a synchronous commit; a bridge has a hundred)
    adopted: dict[int, tuple[tuple[Any, ...], str]] = field(default_factory=dict)


def _text(value: Any) -> str | None:
    return value.strip() or None if isinstance(value, str) else None


class MatterController:
    """Hub component ``matter``; inert when the config does not enable Matter."""

    name = "matter"

    def __init__(self, settings: MatterSettings | None = None) -> None:
        self._settings = settings
        self.settings = settings or MatterSettings()
        self.hub: Hub | None = None
        self.server: ManagedServer | None = None
        self.client: MatterClient | None = None
        self.problem: str | None = None
        self.nodes: dict[int, NodeRecord] = {}
        self._links: dict[str, EntityLink] = {}
        self._task: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()
        self._session: aiohttp.ClientSession | None = None
        self._origin = Context("matter")
        self._unregister: list[Any] = []
        # setup code -> its commissioning: one per code, outliving a caller that gives up (a connection's start
        # timeout), so the next attempt waits for the same commissioning instead of starting a second one.
        self._commissioning: dict[str, asyncio.Task[int]] = {}
        self._reads: set[asyncio.Task[None]] = set()
        # (node id, attribute path) -> the last value of a type the client's node model refused (dropped)
        self.refused: dict[tuple[int, str], Any] = {}

    # -- lifecycle --------------------------------------------------------------------------
    async def async_start(self, hub: Hub) -> None:
        self.hub = hub
        if self._settings is None:
            self.settings = MatterSettings.from_config(hub.config.get("matter"), hub.config_dir)
        if not self.settings.enabled:
            return
        try:
            import matter_server.client  # noqa: F401 - fail here, with the fix, not on first use
        except ImportError as err:
            self.problem = f"the Matter client is not installed ({err}): pip install 'qilu-hub[matter]'"
            _LOGGER.error("Matter: %s", self.problem)
            return
        if self.settings.managed:
            self.server = ManagedServer(self.settings, hub.config_dir / DATA_FOLDER)
            try:
                await self.server.async_start()
            except ServerUnavailable as err:
                self.problem = str(err)
                _LOGGER.error("Matter: %s", err)  # the hub runs on; Matter waits for the fix
                self.server = None
                return
        self._task = asyncio.get_running_loop().create_task(self._run(), name="matter-client")

    async def async_stop(self) -> None:
        for read in list(self._reads):
            read.cancel()
        for commissioning in self._commissioning.values():
            commissioning.cancel()
        await asyncio.gather(*self._commissioning.values(), return_exceptions=True)
        self._commissioning.clear()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        await self._close_client()
        if self.server is not None:
            await self.server.async_stop()
            self.server = None

    async def _close_client(self) -> None:
        for unsubscribe in self._unregister:
            unsubscribe()
        self._unregister.clear()
        if self.client is not None:
            with contextlib.suppress(Exception):
                await self.client.disconnect()
            self.client = None
        if self._session is not None:
            await self._session.close()
            self._session = None
        self._connected.clear()

    async def async_wait_connected(self, timeout: float = 30.0) -> None:
        if self.problem is not None and self._task is None:
            raise ServerUnavailable(self.problem)
        if not self.settings.enabled:
            raise ServerUnavailable("Matter is not configured (a matter: section with server: managed or url)")
        await asyncio.wait_for(self._connected.wait(), timeout)

    async def _run(self) -> None:
        import aiohttp

        make_client = client_class()
        delay = RECONNECT[0]
        while True:
            listening: asyncio.Task[None] | None = None
            try:
                self._session = aiohttp.ClientSession()
                self.client = make_client(self.settings.ws_url(), self._session, self.attribute_updated,
                                          self.value_refused)
                await self.client.connect()
                ready = asyncio.Event()
                listening = asyncio.get_running_loop().create_task(self.client.start_listening(ready))
                waiter = asyncio.get_running_loop().create_task(ready.wait())
                await asyncio.wait({listening, waiter}, timeout=60, return_when=asyncio.FIRST_COMPLETED)
                waiter.cancel()
                if not ready.is_set():
                    raise ConnectionError("matter-server did not send its nodes")
                self._subscribe(self.client)
                for node in self.client.get_nodes():
                    self._sync_node(node)
                self.problem = None
                self._connected.set()
                delay = RECONNECT[0]
                _LOGGER.info("Matter: connected to %s (%d nodes)", self.settings.ws_url(), len(self.nodes))
                await listening
            except asyncio.CancelledError:
                if listening is not None:
                    listening.cancel()
                raise
            except Exception as err:  # the server restarts, is not up yet, or went away: try again
                self.problem = f"matter-server at {self.settings.ws_url()}: {type(err).__name__}: {err}"
                _LOGGER.warning("Matter: %s; reconnecting in %.1f s", self.problem, delay)
            self._all_unavailable()
            await self._close_client()
            await asyncio.sleep(delay)
            delay = min(delay * 2, RECONNECT[1])

    def _subscribe(self, client: MatterClient) -> None:
        from matter_server.common.models import EventType

        self._unregister = [
            client.subscribe_events(self._on_node, EventType.NODE_ADDED),
            client.subscribe_events(self._on_node, EventType.NODE_UPDATED),
            client.subscribe_events(self._on_node_removed, EventType.NODE_REMOVED),
        ]

    # -- events -----------------------------------------------------------------------------
    def _on_node(self, _event: Any, node: MatterNode) -> None:
        try:
            self._sync_node(node)
        except Exception:  # one odd node must not end the event dispatch for the others
            _LOGGER.exception("Matter: mapping node %s failed", getattr(node, "node_id", "?"))

    def _on_node_removed(self, _event: Any, node_id: int) -> None:
        self._forget_node(node_id)

    # -- nodes -> devices and entities --------------------------------------------------------
    def _sync_node(self, node: MatterNode) -> None:
        assert self.hub is not None
        node_id = node.node_id
        record = self.nodes.get(node_id) or NodeRecord(node_id)
        self.nodes[node_id] = record
        record.attributes = attrs = dict(node.node_data.attributes)
        hub = self.hub
        try:
            # One transaction and one synchronous commit for the whole node: a bridge's hundred devices and
            # entities cost one fsync, not two hundred, and a failure half-way leaves no half-adopted node.
            with registry_batch(hub.areas, hub.devices, hub.entities):
                entity_ids, by_cluster = self._map_node(record, attrs)
        except BaseException:
            record.adopted.clear()  # the devices it named were undone with the batch
            raise
        for device_id in record.device_ids:
            self.hub.commands.register_device(device_id, self.async_command)
        record.entity_ids = entity_ids
        record.by_cluster = by_cluster
        self._set_availability(record, node.available)
        if node.available:
            for entity_id in entity_ids:
                self._write_state(entity_id, attrs)

    def _map_node(self, record: NodeRecord,
                  attrs: dict[str, Any]) -> tuple[list[str], dict[tuple[int, int], list[str]]]:
        """The node's devices and entities in the registries; its entity ids and which read which cluster."""
        assert self.hub is not None
        node_id = record.node_id
        basic = mapping.EndpointView(attrs, 0)
        vendor, product = basic.get(mapping.BASIC_INFORMATION, 2), basic.get(mapping.BASIC_INFORMATION, 4)
        serial = _text(basic.get(mapping.BASIC_INFORMATION, 15))
        unique = _text(basic.get(mapping.BASIC_INFORMATION, 18)) or serial
        label = _text(basic.get(mapping.BASIC_INFORMATION, 5))
        product_name = _text(basic.get(mapping.BASIC_INFORMATION, 3)) or f"Matter node {node_id}"
        ident = f"{vendor or 0:04X}:{product or 0:04X}:{unique}" if unique else f"node:{node_id}"
        identifiers = [(SOURCE, ident)]
        connections = [("serial", serial)] if serial else []
        root_id = self._adopt(record, 0, name=label or product_name, identifiers=identifiers,
                              connections=connections, manufacturer=_text(basic.get(mapping.BASIC_INFORMATION, 1)),
                              model=product_name, sw_version=_text(basic.get(mapping.BASIC_INFORMATION, 10)))
        record.identifiers = identifiers
        record.device_ids = [root_id]
        entity_ids: list[str] = []
        by_cluster: dict[tuple[int, int], list[str]] = {}
        endpoints = sorted({int(path.split("/", 1)[0]) for path in attrs})
        for endpoint in endpoints:
            if endpoint == 0:
                continue
            server_list = attrs.get(f"{endpoint}/{mapping.DESCRIPTOR}/1") or []
            clusters = {int(c) for c in server_list}
            rows = mapping.entity_rows(clusters)
            device_id = root_id
            view = mapping.EndpointView(attrs, endpoint)
            name_prefix = label or product_name
            if mapping.BRIDGED_BASIC_INFORMATION in clusters:
                b = mapping.BRIDGED_BASIC_INFORMATION
                b_serial = _text(view.get(b, 15))
                b_unique = _text(view.get(b, 18)) or b_serial or f"{ident}/{endpoint}"
                b_name = _text(view.get(b, 5)) or _text(view.get(b, 3)) or f"{name_prefix} {endpoint}"
                device_id = self._adopt(
                    record, endpoint, name=b_name, identifiers=[(SOURCE, f"bridged:{b_unique}")],
                    connections=[("serial", b_serial)] if b_serial else [], manufacturer=_text(view.get(b, 1)),
                    model=_text(view.get(b, 3)), sw_version=_text(view.get(b, 10)), via_device_id=root_id)
                record.device_ids.append(device_id)
                name_prefix = b_name
            for row, caps in rows:
                entity = self.hub.entities.async_get_or_create(
                    unique_id=f"matter:{ident}:{endpoint}:{row.key}", capabilities=caps,
                    name=f"{name_prefix} {row.key}" if len(rows) > 1 else name_prefix, device_id=device_id,
                    device_class=row.device_class, unit=row.unit)
                entity_ids.append(entity.entity_id)
                self._links[entity.entity_id] = EntityLink(node_id, endpoint, row)
                for cluster in mapping.clusters_read(row):
                    by_cluster.setdefault((endpoint, cluster), []).append(entity.entity_id)
        return entity_ids, by_cluster

    def _adopt(self, record: NodeRecord, endpoint: int, *, name: str, identifiers: list[tuple[str, str]],
               connections: list[tuple[str, str]], manufacturer: str | None, model: str | None,
               sw_version: str | None, via_device_id: str | None = None) -> str:
        """The device of a node (endpoint 0) or of a bridged endpoint, adopted again only when what it is
        adopted with changed or the device is gone (merged into another: then found by its identifiers)."""
        assert self.hub is not None
        signature = (name, tuple(identifiers), tuple(connections), manufacturer, model, sw_version, via_device_id)
        known = record.adopted.get(endpoint)
        if known is not None and known[0] == signature and self.hub.devices.get(known[1]) is not None:
            return known[1]
        device = adopt_device(self.hub, source=SOURCE, name=name, identifiers=identifiers, connections=connections,
                              manufacturer=manufacturer, model=model, sw_version=sw_version, driver=SOURCE,
                              via_device_id=via_device_id)
        record.adopted[endpoint] = (signature, device.id)
        return device.id

    def value_refused(self, node_id: int, path: str, value: Any) -> None:
        """An appliance sent a value of the wrong type (OnOff as an integer): the hub does not act on it, says so
        once per attribute, and keeps everything else of the node."""
        if (node_id, path) not in self.refused:
            _LOGGER.warning("Matter: node %s sent %s = %r, not of the type the specification gives it; ignored "
                            "(`qilu-hub firmware-test --matter` shows such faults)", node_id, path, value)
        self.refused[(node_id, path)] = value

    def attribute_updated(self, node_id: int, path: str, value: Any) -> None:
        """One attribute report: the entities reading that cluster get their new state now."""
        record = self.nodes.get(node_id)
        if record is None:
            return
        record.attributes[path] = value
        if path in SOFTWARE_VERSION_PATHS and self.client is not None:
            # New firmware may bring new endpoints or clusters: have the server interview the node again; its
            # NODE_UPDATED maps the node anew (entities added, the device's software version updated).
            interview = asyncio.get_running_loop().create_task(self._interview(self.client, node_id))
            self._reads.add(interview)
            interview.add_done_callback(self._reads.discard)
        endpoint, cluster, _ = path.split("/", 2)
        for entity_id in record.by_cluster.get((int(endpoint), int(cluster)), ()):
            self._write_state(entity_id, record.attributes)

    def _write_state(self, entity_id: str, attrs: dict[str, Any]) -> None:
        assert self.hub is not None
        link = self._links.get(entity_id)
        if link is None:
            return
        try:
            value, attributes = mapping.read(link.row, attrs, link.endpoint)
        except Exception:  # an appliance reporting a wrong type must not take the others down
            _LOGGER.warning("Matter: node %s endpoint %s sent values the %s entity cannot read", link.node_id,
                            link.endpoint, link.row.key, exc_info=True)
            return
        if value is None:  # not given yet, or refused: keep what the entity shows, or say it is not known
            if self.hub.states.get(entity_id) is None:
                self.hub.states.async_set(entity_id, UNKNOWN, attributes, self._origin)
            return
        self.hub.states.async_set(entity_id, value, attributes, self._origin)

    def _set_availability(self, record: NodeRecord, available: bool) -> None:
        assert self.hub is not None
        if available == record.available:
            return
        record.available = available
        if available:
            availability(self.hub).mark_available(record.entity_ids, self._origin)
        else:
            availability(self.hub).mark_unavailable(record.entity_ids, self._origin)

    def _all_unavailable(self) -> None:
        for record in self.nodes.values():
            self._set_availability(record, False)

    def _forget_node(self, node_id: int) -> None:
        assert self.hub is not None
        record = self.nodes.pop(node_id, None)
        if record is None:
            return
        for entity_id in record.entity_ids:
            self._links.pop(entity_id, None)
            availability(self.hub).forget(entity_id)
            if self.hub.entities.get(entity_id) is not None:
                self.hub.entities.async_remove(entity_id)
        # The node's device may have been merged into another since (the inbox's, or a native protocol's): find
        # it by its identifiers.
        device_ids = [d.id for d in self.hub.devices.find(record.identifiers, [])] + record.device_ids[1:]
        for device_id in reversed(device_ids):
            if self.hub.devices.get(device_id) is not None:
                self.hub.devices.async_remove(device_id)
        _LOGGER.info("Matter: node %s removed", node_id)

    # -- commands -----------------------------------------------------------------------------
    async def async_command(self, entity: Entity, command: str, args: dict[str, Any], context: Context) -> None:
        link = self._links.get(entity.entity_id)
        client = self.client
        if link is None or client is None:
            raise CommandError("unavailable", f"{entity.entity_id}: matter-server is not connected")
        record = self.nodes.get(link.node_id)
        if record is None or not record.available:
            raise CommandError("unavailable", f"{entity.entity_id}: Matter node {link.node_id} is not reachable")
        try:
            calls = mapping.commands_for(link.row, link.endpoint, command, args, record.attributes)
        except mapping.UnsupportedCommand as err:
            raise CommandError("not_supported", f"{entity.entity_id} cannot {command} ({err})") from None
        from matter_server.common.models import APICommand

        for call in calls:
            if call.write is not None:
                await client.write_attribute(link.node_id, f"{call.endpoint}/{call.cluster}/{call.write}", call.value)
            else:
                await client.send_command(APICommand.DEVICE_COMMAND, node_id=link.node_id, endpoint_id=call.endpoint,
                                          cluster_id=call.cluster, command_name=call.command,
                                          payload=dict(call.fields))
        # matter-server subscribes with a 1 s minimum report interval: a change less than a second after the node's
        # last report would reach the hub up to a second late. Reading the commanded clusters right away makes the
        # server report what changed now (it signals an attribute update for every value a read changes).
        paths = sorted({f"{call.endpoint}/{call.cluster}/*" for call in calls})
        read = asyncio.get_running_loop().create_task(self._read_back(client, link.node_id, paths))
        self._reads.add(read)
        read.add_done_callback(self._reads.discard)

    @staticmethod
    async def _interview(client: MatterClient, node_id: int) -> None:
        try:
            await client.interview_node(node_id)
            _LOGGER.info("Matter: node %s has new software; interviewed again", node_id)
        except Exception as err:
            _LOGGER.warning("Matter: interviewing node %s after its software update failed: %s", node_id, err)

    @staticmethod
    async def _read_back(client: MatterClient, node_id: int, paths: list[str]) -> None:
        try:
            await client.read_attribute(node_id, paths)
        except Exception as err:  # the subscription's report still comes; this was only to be early
            _LOGGER.debug("Matter: reading back %s of node %s failed: %s", paths, node_id, err)

    # -- commissioning, sharing, removal --------------------------------------------------------
    async def async_commission(self, code: str, timeout: float = COMMISSION_TIMEOUT) -> int:
        """Commission the appliance this setup code opens (QR ``MT:...`` or manual); returns its node id once
        its devices and entities exist. ValueError for a code that is not one; ServerUnavailable without a server."""
        parsed = parse_setup_code(code)  # SetupCodeError (a ValueError) before anything reaches the server
        task = self._commissioning.get(parsed.text)
        if task is None or (task.done() and (task.cancelled() or task.exception() is not None)):
            task = asyncio.get_running_loop().create_task(self._commission(parsed.text, timeout),
                                                          name="matter-commission")
            self._commissioning[parsed.text] = task
        node_id = await asyncio.shield(task)
        self._commissioning.pop(parsed.text, None)
        return node_id

    async def _commission(self, code: str, timeout: float) -> int:
        await self.async_wait_connected()
        assert self.client is not None
        node = await asyncio.wait_for(self.client.commission_with_code(code, network_only=True), timeout)
        if node.node_id not in self.nodes:
            self._sync_node(self.client.get_node(node.node_id))
        return int(node.node_id)

    async def async_open_commissioning_window(self, node_id: int, timeout: int = 300) -> dict[str, Any]:
        """Share a node with another ecosystem: a new pairing code, valid for ``timeout`` seconds."""
        await self.async_wait_connected()
        assert self.client is not None
        params = await self.client.open_commissioning_window(node_id, timeout=timeout)
        return {"manual_code": params.setup_manual_code, "qr_code": params.setup_qr_code, "timeout": timeout}

    async def async_remove_node(self, node_id: int) -> None:
        await self.async_wait_connected()
        assert self.client is not None
        await self.client.remove_node(node_id)
        self._forget_node(node_id)

    def identifiers_of(self, node_id: int) -> list[tuple[str, str]]:
        record = self.nodes.get(node_id)
        return list(record.identifiers) if record else []

    def status(self) -> dict[str, Any]:
        return {
            "enabled": self.settings.enabled, "url": self.settings.ws_url() if self.settings.enabled else None,
            "managed": self.settings.managed, "connected": self._connected.is_set(), "problem": self.problem,
            "server_pid": self.server.pid if self.server else None,
            "server_restarts": self.server.restarts if self.server else 0,
            "refused": sorted(f"{node} {path}" for node, path in self.refused),  # values of the wrong type
            "nodes": {n: {"available": r.available, "devices": len(r.device_ids), "entities": len(r.entity_ids),
                          "device_ids": list(r.device_ids)}
                      for n, r in self.nodes.items()},
        }


def data_dir(config_dir: Path) -> Path:
    return config_dir / DATA_FOLDER
