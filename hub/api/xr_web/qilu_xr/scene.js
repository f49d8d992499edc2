// Scene geometry and input for clients of /api/xr/scenes/{id}: where a panel is, what a ray hits, what pressing means.
// Mirrors the OpenXR bridge (qilu_hub.scenes.geometry / xr_bridge.mapping): panels are quads in their pose's XY
// plane, facing +Z, centred on the pose; u runs left to right, v top to bottom (texture rows).

/** @typedef {{x:number,y:number,z:number,qx:number,qy:number,qz:number,qw:number}} Pose */

export const IDENTITY = Object.freeze({ x: 0, y: 0, z: 0, qx: 0, qy: 0, qz: 0, qw: 1 });

/** @param {Pose} a @param {Pose} b @returns {[number,number,number,number]} */
function qmul(a, b) {
  return [
    a.qw * b.qx + a.qx * b.qw + a.qy * b.qz - a.qz * b.qy,
    a.qw * b.qy - a.qx * b.qz + a.qy * b.qw + a.qz * b.qx,
    a.qw * b.qz + a.qx * b.qy - a.qy * b.qx + a.qz * b.qw,
    a.qw * b.qw - a.qx * b.qx - a.qy * b.qy - a.qz * b.qz,
  ];
}

/** Rotate vector v by the pose's orientation. @param {Pose} q @param {number[]} v @returns {number[]} */
export function rotate(q, v) {
  const { qx: x, qy: y, qz: z, qw: w } = q;
  const tx = 2 * (y * v[2] - z * v[1]), ty = 2 * (z * v[0] - x * v[2]), tz = 2 * (x * v[1] - y * v[0]);
  return [v[0] + w * tx + (y * tz - z * ty), v[1] + w * ty + (z * tx - x * tz), v[2] + w * tz + (x * ty - y * tx)];
}

/** parent ∘ child: the child's pose expressed in the parent's frame. @param {Pose} p @param {Pose} c @returns {Pose} */
export function compose(p, c) {
  const r = rotate(p, [c.x, c.y, c.z]);
  const [qx, qy, qz, qw] = qmul(p, c);
  return { x: p.x + r[0], y: p.y + r[1], z: p.z + r[2], qx, qy, qz, qw };
}

/** @param {Pose} p @returns {Pose} */
export function inverse(p) {
  const c = { x: 0, y: 0, z: 0, qx: -p.qx, qy: -p.qy, qz: -p.qz, qw: p.qw };
  const r = rotate(c, [-p.x, -p.y, -p.z]);
  return { ...c, x: r[0], y: r[1], z: r[2] };
}

/** A yaw-only pose (rotation about +Y). @param {number} deg @returns {Pose} */
export function yaw(deg, x = 0, y = 0, z = 0) {
  const h = (deg * Math.PI) / 360;
  return { x, y, z, qx: 0, qy: Math.sin(h), qz: 0, qw: Math.cos(h) };
}

/** The yaw of a pose's -Z axis projected on the floor, in degrees (what "facing" means when placing). */
export function yawOf(p) {
  const f = rotate(p, [0, 0, -1]);
  return (Math.atan2(-f[0], -f[2]) * 180) / Math.PI;
}

/** Column-major 4x4 matrix of a pose (for WebGL). @param {Pose} p @returns {Float32Array} */
export function matrix(p, sx = 1, sy = 1) {
  const { qx: x, qy: y, qz: z, qw: w } = p;
  const m = new Float32Array(16);
  m[0] = (1 - 2 * (y * y + z * z)) * sx; m[1] = 2 * (x * y + z * w) * sx; m[2] = 2 * (x * z - y * w) * sx;
  m[4] = 2 * (x * y - z * w) * sy; m[5] = (1 - 2 * (x * x + z * z)) * sy; m[6] = 2 * (y * z + x * w) * sy;
  m[8] = 2 * (x * z + y * w); m[9] = 2 * (y * z - x * w); m[10] = 1 - 2 * (x * x + y * y);
  m[12] = p.x; m[13] = p.y; m[14] = p.z; m[15] = 1;
  return m;
}

/** A pose from WebXR's XRRigidTransform-like {position, orientation}. @returns {Pose} */
export function fromTransform(t) {
  const p = t.position, o = t.orientation;
  return { x: p.x, y: p.y, z: p.z, qx: o.x, qy: o.y, qz: o.z, qw: o.w };
}

/**
 * Intersect a ray with a panel quad. @param {number[]} origin @param {number[]} dir @param {Pose} pose
 * @returns {{distance:number,u:number,v:number}|null}
 */
export function rayPanel(origin, dir, pose, width, height) {
  const inv = inverse(pose);
  const o = rotate(inv, [origin[0], origin[1], origin[2]]);
  o[0] += inv.x; o[1] += inv.y; o[2] += inv.z;
  const d = rotate(inv, dir);
  if (Math.abs(d[2]) < 1e-9) return null; // parallel to the panel
  const t = -o[2] / d[2];
  if (t <= 0) return null; // behind the ray's origin
  const x = o[0] + t * d[0], y = o[1] + t * d[1];
  if (Math.abs(x) > width / 2 || Math.abs(y) > height / 2) return null;
  return { distance: t, u: x / width + 0.5, v: 0.5 - y / height };
}

/** The aim ray of a pose (WebXR target rays point down -Z). @param {Pose} p */
export function aimRay(p) {
  return { origin: [p.x, p.y, p.z], dir: rotate(p, [0, 0, -1]) };
}

/** Index into panel.controls of the control under (u, v), or null. */
export function controlAt(panel, u, v) {
  const [w, h] = panel.pixel_size;
  const x = u * w, y = v * h;
  for (let i = 0; i < panel.controls.length; i++) {
    const [x0, y0, x1, y1] = panel.controls[i].rect;
    if (x0 <= x && x < x1 && y0 <= y && y < y1) return i;
  }
  return null;
}

/** Horizontal position of u inside a control's rect, 0..1 (sliders). */
export function fractionIn(panel, control, u) {
  const [x0, , x1] = control.rect;
  return Math.min(1, Math.max(0, (u * panel.pixel_size[0] - x0) / Math.max(1, x1 - x0)));
}

/** A slider's value at fraction f, rounded when the slider's range is whole numbers (as the bridge does). */
export function sliderValue(control, f) {
  const v = control.min + f * (control.max - control.min);
  return Number.isInteger(control.min) && Number.isInteger(control.max) ? Math.round(v) : v;
}

/**
 * What pressing `action` over a panel (and maybe one of its controls) means, per the resolved bindings:
 * {kind:'call', entity_id, command, args} | {kind:'bridge', action, panel} | null.
 * A readout has no actions of its own: the panel's bindings apply, as in the OpenXR bridge.
 */
export function intentFor(action, scene, panel, hit) {
  const index = panel && hit ? controlAt(panel, hit.u, hit.v) : null;
  const control = index !== null ? panel.controls[index] : null;
  const own = control && control.type !== 'readout';
  const binding = own ? control.bindings[action] : (panel ? panel.bindings[action] : scene.bindings[action]);
  if (!binding) return null;
  if (binding.bridge) {
    if (binding.bridge === 'none' || (binding.bridge === 'move_panel' && !panel)) return null;
    return { kind: 'bridge', action: binding.bridge, panel: panel ? panel.id : null };
  }
  if (!own || !binding.call) return null; // a command needs a control to act on
  const args = { ...binding.call.args };
  if (control.type === 'slider' && control.attribute) {
    args[control.attribute] = sliderValue(control, fractionIn(panel, control, hit.u));
  }
  return { kind: 'call', entity_id: control.entity_id, command: binding.call.command, args, panel: panel.id, control: index };
}

/**
 * The panel's pose in the home frame: the scene's (reference ∘ local), or a local move the client keeps.
 * Anchored panels (relative_to: anchor) need the anchor's pose: pass it as `anchorPose`.
 */
export function panelPose(panel, anchorPose = null) {
  const pl = panel.placement;
  if (pl.relative_to === 'anchor') return anchorPose ? compose(anchorPose, pl.local) : pl.local;
  return pl.pose || pl.local; // a device or area with no pose yet: the home origin, as the bridge does
}

/** The reference pose that puts a panel at `homePose` (for "move this panel": the reference moves with it). */
export function referenceFor(panel, homePose) {
  return compose(homePose, inverse(panel.placement.local));
}
