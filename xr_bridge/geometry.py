"""Pose math, shared with the scene API: see qilu_hub.scenes.geometry (kept here for the bridge's imports)."""

from qilu_hub.scenes.geometry import Hit, Pose, Quat, Vec3, aim_ray, quat_conj, quat_mul, ray_quad, rotate, yaw_quat

__all__ = ["Hit", "Pose", "Quat", "Vec3", "aim_ray", "quat_conj", "quat_mul", "ray_quad", "rotate", "yaw_quat"]
