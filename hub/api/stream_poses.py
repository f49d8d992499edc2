"""Device poses and area frames for stream subscriptions that ask for them (``"poses": true``).

XR clients place panels relative to an appliance or a room; the registries hold those poses (``Device.pose``,
``Area.pose``, in the home's frame). A subscription gets every pose its token may see right after its
snapshot, then only the ones that changed, coalesced like states (see docs/stream.md, "Poses")."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..model import Pose
from .auth import Principal

if TYPE_CHECKING:
    from ..core import Hub

DEVICE = "devices"
AREA = "areas"
PoseKey = tuple[str, str]  # (DEVICE | AREA, id)


def pose_entry(pose: Pose | None) -> dict[str, Any] | None:
    return pose.to_dict() if pose is not None else None


def device_visible(hub: Hub, principal: Principal, device_id: str) -> bool:
    """A scoped token sees a device when it may see one of the device's entities."""
    if principal.unrestricted:
        return True
    return any(principal.can_see(e.entity_id) for e in hub.entities.for_device(device_id))


def area_visible(hub: Hub, principal: Principal, area_id: str) -> bool:
    """A scoped token sees an area it is scoped to, or one holding an entity it may see."""
    if principal.unrestricted:
        return True
    if principal.scopes.areas is not None and area_id in principal.scopes.areas:
        return True
    return any(
        hub.entities.area_of(e) == area_id and principal.can_see(e.entity_id) for e in hub.entities.all()
    )


def current_poses(hub: Hub, principal: Principal) -> dict[PoseKey, dict[str, Any] | None]:
    """Every pose the token may see (devices and areas without a pose are listed as None)."""
    out: dict[PoseKey, dict[str, Any] | None] = {}
    for device in hub.devices.all():
        if device_visible(hub, principal, device.id):
            out[(DEVICE, device.id)] = pose_entry(device.pose)
    for area in hub.areas.all():
        if area_visible(hub, principal, area.id):
            out[(AREA, area.id)] = pose_entry(area.pose)
    return out


def poses_message(sub_id: Any, poses: dict[PoseKey, dict[str, Any] | None]) -> dict[str, Any]:
    msg: dict[str, Any] = {"type": "poses", "id": sub_id, DEVICE: {}, AREA: {}}
    for (kind, key), pose in poses.items():
        msg[kind][key] = pose
    return msg
