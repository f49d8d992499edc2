"""Small pose math shared by the OpenXR bridge and the scene API (no numpy: a handful of panels per frame is
cheaper in plain floats)."""

from __future__ import annotations

import math
from dataclasses import dataclass

Vec3 = tuple[float, float, float]
Quat = tuple[float, float, float, float]  # x, y, z, w


def quat_mul(a: Quat, b: Quat) -> Quat:
    ax, ay, az, aw = a
    bx, by, bz, bw = b
    return (
        aw * bx + ax * bw + ay * bz - az * by,
        aw * by - ax * bz + ay * bw + az * bx,
        aw * bz + ax * by - ay * bx + az * bw,
        aw * bw - ax * bx - ay * by - az * bz,
    )


def quat_conj(q: Quat) -> Quat:
    return (-q[0], -q[1], -q[2], q[3])


def rotate(q: Quat, v: Vec3) -> Vec3:
    # v' = v + 2w(u x v) + 2 u x (u x v), u = q.xyz
    x, y, z, w = q
    tx = 2 * (y * v[2] - z * v[1])
    ty = 2 * (z * v[0] - x * v[2])
    tz = 2 * (x * v[1] - y * v[0])
    return (
        v[0] + w * tx + (y * tz - z * ty),
        v[1] + w * ty + (z * tx - x * tz),
        v[2] + w * tz + (x * ty - y * tx),
    )


def yaw_quat(deg: float) -> Quat:
    h = math.radians(deg) / 2
    return (0.0, math.sin(h), 0.0, math.cos(h))


@dataclass(frozen=True)
class Pose:
    position: Vec3 = (0.0, 0.0, 0.0)
    orientation: Quat = (0.0, 0.0, 0.0, 1.0)

    def compose(self, child: Pose) -> Pose:
        """self * child: child's pose expressed in self's parent frame."""
        p = rotate(self.orientation, child.position)
        return Pose(
            (self.position[0] + p[0], self.position[1] + p[1], self.position[2] + p[2]),
            quat_mul(self.orientation, child.orientation),
        )

    def inverse_transform(self, v: Vec3) -> Vec3:
        """A parent-frame point into this pose's local frame."""
        d = (v[0] - self.position[0], v[1] - self.position[1], v[2] - self.position[2])
        return rotate(quat_conj(self.orientation), d)

    def to_dict(self) -> dict[str, float]:
        (x, y, z), (qx, qy, qz, qw) = self.position, self.orientation
        return {"x": x, "y": y, "z": z, "qx": qx, "qy": qy, "qz": qz, "qw": qw}

    @staticmethod
    def from_dict(d: dict[str, float]) -> Pose:
        return Pose(
            (float(d["x"]), float(d["y"]), float(d["z"])),
            (
                float(d.get("qx", 0.0)),
                float(d.get("qy", 0.0)),
                float(d.get("qz", 0.0)),
                float(d.get("qw", 1.0)),
            ),
        )


@dataclass(frozen=True)
class Hit:
    distance: float
    u: float  # 0 at the panel's left edge, 1 at the right
    v: float  # 0 at the top edge, 1 at the bottom (image rows)


def ray_quad(origin: Vec3, direction: Vec3, quad: Pose, width: float, height: float) -> Hit | None:
    """Intersect a ray with an OpenXR quad layer (in its pose's XY plane, facing +Z, centred on the pose)."""
    o = quad.inverse_transform(origin)
    d = rotate(quat_conj(quad.orientation), direction)
    if abs(d[2]) < 1e-9:
        return None  # parallel to the panel
    t = -o[2] / d[2]
    if t <= 0:
        return None  # panel behind the ray origin
    x, y = o[0] + t * d[0], o[1] + t * d[1]
    if abs(x) > width / 2 or abs(y) > height / 2:
        return None
    return Hit(t, x / width + 0.5, 0.5 - y / height)


def aim_ray(aim: Pose) -> tuple[Vec3, Vec3]:
    """OpenXR aim poses point down their -Z axis."""
    return aim.position, rotate(aim.orientation, (0.0, 0.0, -1.0))
