"""XR_EXT_spatial_anchor (the 2025 cross-vendor spatial-entity extensions) as a third anchor backend.

Flow (OpenXR 1.1 spec, XR_EXT_spatial_entity / XR_EXT_spatial_anchor / XR_EXT_future):
1. at system level the runtime must list XR_SPATIAL_CAPABILITY_ANCHOR_EXT (xrEnumerateSpatialCapabilitiesEXT);
2. a spatial context configured for that capability is created asynchronously (xrCreateSpatialContextAsyncEXT,
   xrPollFutureEXT until READY, xrCreateSpatialContextCompleteEXT);
3. each anchor is created at its stored stage pose (xrCreateSpatialAnchorEXT -> entity id + handle);
4. its refined pose is read from an update snapshot (xrCreateSpatialUpdateSnapshotEXT for the anchor entities,
   then xrQuerySpatialComponentDataEXT with an XrSpatialComponentAnchorListEXT chained, two-call idiom).

Persistence across sessions is the placements file, as for the MSFT/FB backends (the stored pose is where the
anchor is re-created); XR_EXT_spatial_persistence is not used. No headless runtime offers these extensions, so
only the sequencing is tested (tests/xr/test_xr_anchors.py, with the runtime calls stubbed)."""

from __future__ import annotations

import ctypes
from typing import Any

import xr

from .geometry import Pose

EXTENSIONS = ("XR_EXT_spatial_entity", "XR_EXT_spatial_anchor", "XR_EXT_future")
LOCATE_EVERY_FRAMES = 15  # anchors refine slowly; a snapshot per frame would cost more than it shows


def offered(have: set[str]) -> bool:
    return all(e in have for e in EXTENSIONS)


def anchor_capable(instance: Any, system: Any) -> bool:
    caps = xr.enumerate_spatial_capabilities_ext(instance, system)
    return any(int(getattr(c, "value", c)) == xr.SpatialCapabilityEXT.ANCHOR.value for c in caps)


def context_create_info() -> tuple[xr.SpatialContextCreateInfoEXT, Any]:
    """The create info, and the config it points to (keep both alive until the call returns)."""
    cfg = xr.SpatialCapabilityConfigurationAnchorEXT(
        capability=xr.SpatialCapabilityEXT.ANCHOR, enabled_components=[xr.SpatialComponentTypeEXT.ANCHOR]
    )
    # pyopenxr 1.1.6501 leaves this struct's type at 0; the runtime dispatches on it
    cfg.type = xr.StructureType.SPATIAL_CAPABILITY_CONFIGURATION_ANCHOR_EXT.value
    ptr = ctypes.cast(ctypes.pointer(cfg), ctypes.POINTER(xr.SpatialCapabilityConfigurationBaseHeaderEXT))
    return xr.SpatialContextCreateInfoEXT(capability_configs=[ptr]), cfg


def future_ready(instance: Any, future: Any) -> bool:
    res = xr.poll_future_ext(instance, xr.FuturePollInfoEXT(future=future))
    return int(getattr(res.state, "value", res.state)) == xr.FutureStateEXT.READY.value


def snapshot_info(entities: list[Any], base: Any, t: int) -> xr.SpatialUpdateSnapshotCreateInfoEXT:
    arr = (xr.SpatialEntityEXT * len(entities))(*entities)
    return xr.SpatialUpdateSnapshotCreateInfoEXT(
        entity_count=len(entities),
        entities=arr,
        component_types=[xr.SpatialComponentTypeEXT.ANCHOR.value],
        base_space=base,
        time=t,
    )


def _check(code: Any) -> None:
    result = xr.check_result(code)
    if result.is_exception():
        raise result


def query_anchor_poses(snapshot: Any) -> dict[int, Pose]:
    """Tracked anchors in a snapshot: entity id -> pose in the snapshot's base space (two-call idiom; entities
    the runtime is not tracking right now are left out, so their panels keep the last good pose)."""
    fxn = ctypes.cast(
        xr.get_instance_proc_addr(snapshot.instance, "xrQuerySpatialComponentDataEXT"),
        xr.PFN_xrQuerySpatialComponentDataEXT,
    )
    cond = xr.SpatialComponentDataQueryConditionEXT(component_types=[xr.SpatialComponentTypeEXT.ANCHOR.value])
    res = xr.SpatialComponentDataQueryResultEXT()
    _check(fxn(snapshot, ctypes.byref(cond), ctypes.byref(res)))
    n = int(res.entity_id_count_output)
    if n == 0:
        return {}
    ids = (xr.SpatialEntityIdEXT * n)()
    states = (xr.SpatialEntityTrackingStateEXT.ctype() * n)()
    poses = (xr.Posef * n)()
    anchors = xr.SpatialComponentAnchorListEXT(location_count=n, locations=poses)
    res = xr.SpatialComponentDataQueryResultEXT(
        entity_id_capacity_input=n,
        entity_ids=ctypes.cast(ids, ctypes.POINTER(xr.SpatialEntityIdEXT)),
        entity_state_capacity_input=n,
        entity_states=ctypes.cast(states, ctypes.POINTER(xr.SpatialEntityTrackingStateEXT.ctype())),
        next=ctypes.cast(ctypes.pointer(anchors), ctypes.c_void_p),
    )
    _check(fxn(snapshot, ctypes.byref(cond), ctypes.byref(res)))
    out: dict[int, Pose] = {}
    tracking = xr.SpatialEntityTrackingStateEXT.TRACKING.value
    for i in range(min(n, int(res.entity_id_count_output))):
        if int(states[i]) != tracking:
            continue
        p = poses[i]
        out[int(ids[i])] = Pose(
            (p.position.x, p.position.y, p.position.z),
            (p.orientation.x, p.orientation.y, p.orientation.z, p.orientation.w),
        )
    return out
