// The hub's WebXR client (/xr/): the scene the hub resolves (GET /api/xr/scenes/{id}), drawn as panels in
// immersive-vr or immersive-ar (passthrough), driven by controllers or hands (select = trigger or pinch, grab =
// squeeze, menu = B/Y), with live states from the msgpack stream (qilu-xr). Only panels whose entities changed
// are painted again. Placement: panels moved by hand stay where they were put (a persistent WebXR anchor where the
// browser offers one, else this browser's storage); panels tied to a device or an area move that device or area
// in the hub's spatial registry, where the OpenXR bridge sees it too; the menu places a device at the controller
// and aligns the home frame to the room.
import {
  HubClient, streamUrl, compose, inverse, yaw, yawOf, matrix, fromTransform, rayPanel, controlAt, fractionIn,
  sliderValue, intentFor, panelPose, referenceFor, IDENTITY,
} from './qilu_xr/index.js';
import { paintPanel } from './panels.js';
import { Renderer, mul4 } from './render.js';

const params = new URLSearchParams(location.search);
const $ = (id) => document.getElementById(id);
const RAY_LENGTH = 3;
const CPU_SAMPLES = 600;
const MENU_ID = '__menu';

// What tests and the benchmark read (frame counts, latencies in frames, probes); cheap to keep.
const stats = {
  frames: 0, selects: 0, calls: 0, mode: null, blend: null, space: null, session: 0, status: 'idle',
  selectLatency: [], stateArrived: {}, stateDrawn: {}, repaints: {}, cpuMs: [], firstFrameMs: null,
  probes: {}, placed: [], moved: [], errors: [],
};
window.xrStats = stats;

const app = {
  client: null, scene: null, entries: new Map(), byEntity: new Map(), offline: true,
  session: null, refSpace: null, renderer: null, gl: null, home: { ...IDENTITY },
  menu: null, armed: null, drags: new Map(), moves: new Map(), frameTasks: [], buttons: new Map(),
  probes: [], pendingSelects: [], enteredAt: 0, firstDrawn: false, lastHits: new Map(),
};
window.qiluXr = app;
/** Where a control's point (fraction fu across it) is in the session's space: for tests and the benchmark. */
app.controlPoint = (panelId, index, fu = 0.5) => {
  const entry = panelId === MENU_ID ? app.menu : app.entries.get(panelId);
  const c = entry.def.controls[index];
  const [w, h] = entry.def.pixel_size;
  const u = (c.rect[0] + fu * (c.rect[2] - c.rect[0])) / w, v = (c.rect[1] + c.rect[3]) / 2 / h;
  const p = compose(worldPose(entry), { ...IDENTITY, x: (u - 0.5) * entry.def.width_m, y: (0.5 - v) * entry.def.height_m });
  return { x: p.x, y: p.y, z: p.z };
};
app.panelWorld = (panelId) => worldPose(panelId === MENU_ID ? app.menu : app.entries.get(panelId));

function report(err) {
  console.error(err);
  stats.errors.push(String(err && err.message ? err.message : err));
  $('status').textContent = `error: ${err && err.message ? err.message : err}`;
}

function storageKey(kind, panelId) {
  return `qilu-xr/${kind}/${app.scene ? app.scene.id : ''}/${panelId}`;
}

function loadJson(key) {
  try { return JSON.parse(localStorage.getItem(key) || 'null'); } catch { return null; }
}

// -- scene and states ----------------------------------------------------------------------------------------------
function definitionKey(panel) {
  const { placement, ...rest } = panel;
  return JSON.stringify(rest);
}

function setScene(scene) {
  if (!scene) { $('status').textContent = 'this scene is gone'; return; }
  const old = app.entries;
  app.scene = scene;
  app.entries = new Map();
  app.byEntity = new Map();
  for (const panel of scene.panels) {
    const prev = old.get(panel.id);
    const entry = prev || { canvas: document.createElement('canvas'), texture: null, dirty: true, override: null,
      anchor: null, anchorPose: null };
    if (prev && definitionKey(prev.def) !== definitionKey(panel)) entry.dirty = true;
    if (prev && JSON.stringify(prev.def.placement) !== JSON.stringify(panel.placement)
        && ['device', 'area'].includes(panel.placement.relative_to)) entry.override = null; // the hub's pose wins now
    if (!prev) entry.override = loadJson(storageKey('panel', panel.id));
    entry.def = panel;
    app.entries.set(panel.id, entry);
    for (const c of panel.controls) {
      if (!app.byEntity.has(c.entity_id)) app.byEntity.set(c.entity_id, new Set());
      app.byEntity.get(c.entity_id).add(panel.id);
    }
  }
  for (const [id, entry] of old) if (!app.entries.has(id) && app.renderer) app.renderer.forget(entry);
  if (app.menu) buildMenu(app.menu.pose);
  stats.sceneVersion = scene.version;
  $('status').textContent = `${scene.id}: ${scene.panels.length} panel(s)`;
}

function onState(entityId) {
  stats.stateArrived[entityId] = { frame: stats.frames, t: performance.now() };
  for (const rec of app.pendingSelects) if (rec.entity === entityId && rec.arrived === undefined) rec.arrived = stats.frames;
  const panels = app.byEntity.get(entityId);
  if (panels) for (const id of panels) app.entries.get(id).dirty = true;
}

function onStatus(status, detail) {
  stats.status = status;
  const offline = status !== 'online';
  if (offline !== app.offline) {
    app.offline = offline;
    for (const entry of app.entries.values()) entry.dirty = true;
  }
  $('connection').textContent = detail ? `${status} (${detail})` : status;
}

async function ticket() {
  // The page cannot read its HttpOnly cookie: it asks for a single-use ticket for each WebSocket connection.
  const r = await fetch('/api/dashboard/ws_ticket', { method: 'POST', credentials: 'same-origin' });
  if (!r.ok) throw new Error(`ticket: HTTP ${r.status}`);
  return (await r.json()).ticket;
}

// -- placement ---------------------------------------------------------------------------------------------------
/** Where a panel is in the session's space. */
function worldPose(entry) {
  if (entry.sessionPose) return entry.sessionPose; // the menu: placed in front of the user
  if (entry.anchorPose) return entry.anchorPose;
  return compose(app.home, entry.override || panelPose(entry.def));
}

function toHome(sessionPose) {
  return compose(inverse(app.home), sessionPose);
}

function restoreHome() {
  const stored = loadJson('qilu-xr/home');
  app.home = stored || { ...IDENTITY };
}

function saveHome(pose) {
  app.home = pose;
  localStorage.setItem('qilu-xr/home', JSON.stringify(pose));
}

async function anchorAt(frame, sessionPose, key) {
  // A WebXR anchor keeps the panel fixed to the room as tracking corrects itself; a persistent one (Quest) finds
  // it again in the next session. Without anchors, the home-frame pose in storage is what we have.
  if (!frame.createAnchor) return null;
  const t = new XRRigidTransform({ x: sessionPose.x, y: sessionPose.y, z: sessionPose.z },
    { x: sessionPose.qx, y: sessionPose.qy, z: sessionPose.qz, w: sessionPose.qw });
  const anchor = await frame.createAnchor(t, app.refSpace);
  if (anchor && anchor.requestPersistentHandle) {
    const oldHandle = localStorage.getItem(key);
    if (oldHandle && app.session.deletePersistentAnchor) app.session.deletePersistentAnchor(oldHandle).catch(() => {});
    localStorage.setItem(key, await anchor.requestPersistentHandle());
  }
  return anchor;
}

async function restoreAnchors(session) {
  if (!session.restorePersistentAnchor) return;
  for (const [id, entry] of app.entries) {
    const handle = localStorage.getItem(storageKey('anchor', id));
    if (!handle) continue;
    try {
      entry.anchor = await session.restorePersistentAnchor(handle);
    } catch (err) {
      localStorage.removeItem(storageKey('anchor', id)); // gone from the headset: the stored pose still applies
    }
  }
}

function finishMove(move) {
  const entry = app.entries.get(move.panel);
  if (!entry) return;
  const sessionPose = move.current;
  const homePose = toHome(sessionPose);
  const pl = entry.def.placement;
  stats.moved.push({ panel: move.panel, pose: homePose, relative_to: pl.relative_to });
  if (pl.relative_to === 'device' || pl.relative_to === 'area') {
    // The panel is tied to a device or a room: moving it moves that device or room in the hub's registry.
    entry.override = homePose;
    app.client.setPose(`${pl.relative_to}s`, pl.ref, referenceFor(entry.def, homePose)).catch(report);
    return;
  }
  entry.override = homePose;
  entry.anchorPose = null;
  entry.anchor = null;
  localStorage.setItem(storageKey('panel', move.panel), JSON.stringify(homePose));
  app.frameTasks.push(async (frame) => {
    entry.anchor = await anchorAt(frame, sessionPose, storageKey('anchor', move.panel));
  });
}

function placeDevice(deviceId, grip, aim) {
  // The device is where the controller is; its +Z (the side its panels face) towards the user.
  const home = toHome(grip);
  const pose = yaw(yawOf(toHome(aim)), home.x, home.y, home.z);
  stats.placed.push({ device: deviceId, pose });
  return app.client.setPose('devices', deviceId, pose).then((answer) => {
    stats.placed[stats.placed.length - 1].answer = answer;
  }, report);
}

function alignHome(grip, aim) {
  // The home frame's origin goes to the floor under the controller, its -Z along the controller's aim.
  saveHome(yaw(yawOf(aim), grip.x, 0, grip.z));
  app.frameTasks.push(async (frame) => { await anchorAt(frame, app.home, 'qilu-xr/home-anchor'); });
}

// -- the menu (a client panel: place devices, align the home frame) ----------------------------------------------------
function buildMenu(pose) {
  const items = [{ label: 'Align home here', action: 'align' }];
  for (const [id, name] of Object.entries(app.scene.devices || {})) items.push({ label: `Place: ${name}`, action: 'place', device: id });
  items.push({ label: 'Close', action: 'close' });
  const w = 480, rowH = 56, titleH = 60;
  const controls = items.map((it, i) => ({
    ...it, type: 'button', entity_id: '', index: i, bindings: {}, rect: [8, titleH + i * rowH + 4, w - 8, titleH + (i + 1) * rowH],
  }));
  const h = titleH + items.length * rowH + 8;
  const def = { id: MENU_ID, title: 'Menu', width_m: 0.4, height_m: (0.4 * h) / w, pixel_size: [w, h],
    title_rect: [0, 0, w, titleH], controls, bindings: {}, placement: { relative_to: 'stage', local: IDENTITY } };
  const prev = app.menu;
  app.menu = { def, canvas: prev ? prev.canvas : document.createElement('canvas'), texture: prev ? prev.texture : null,
    dirty: true, sessionPose: pose, pose };
}

function toggleMenu(viewer) {
  if (app.menu) { closeMenu(); return; }
  const head = fromTransform(viewer.transform);
  const y = yawOf(head);
  const fwd = yaw(y);
  buildMenu(compose(yaw(y, head.x, head.y - 0.15, head.z), { ...fwd, x: 0, y: 0, z: -0.7, qx: 0, qy: 0, qz: 0, qw: 1 }));
}

function closeMenu() {
  if (app.menu && app.renderer) app.renderer.forget(app.menu);
  app.menu = null;
  app.armed = null;
}

function menuPress(control) {
  if (control.action === 'close') { closeMenu(); return; }
  app.armed = control;
  app.menu.dirty = true;
  app.menu.note = control.action === 'align' ? 'Select where the home origin is' : `Select where ${control.label.slice(7)} is`;
}

// -- input --------------------------------------------------------------------------------------------------------
function aimOf(frame, source) {
  const p = frame.getPose(source.targetRaySpace, app.refSpace);
  return p ? fromTransform(p.transform) : null;
}

function gripOf(frame, source) {
  const p = frame.getPose(source.gripSpace || source.targetRaySpace, app.refSpace);
  return p ? fromTransform(p.transform) : null;
}

function visibleEntries() {
  const list = [...app.entries.values()];
  if (app.menu) list.push(app.menu);
  return list;
}

function pick(aim) {
  const origin = [aim.x, aim.y, aim.z];
  const f = [0, 0, -1];
  const { qx: x, qy: y, qz: z, qw: w } = aim;
  // -Z of the aim, as qilu_xr.rotate would give it (inlined: this runs per input source per frame)
  const tx = 2 * (y * f[2] - z * f[1]), ty = 2 * (z * f[0] - x * f[2]), tz = 2 * (x * f[1] - y * f[0]);
  const dir = [f[0] + w * tx + (y * tz - z * ty), f[1] + w * ty + (z * tx - x * tz), f[2] + w * tz + (x * ty - y * tx)];
  let best = null;
  for (const entry of visibleEntries()) {
    const hit = rayPanel(origin, dir, worldPose(entry), entry.def.width_m, entry.def.height_m);
    if (hit && (!best || hit.distance < best.hit.distance)) best = { entry, hit };
  }
  return { origin, dir, best };
}

function onPress(action, ev) {
  try {
    const aim = aimOf(ev.frame, ev.inputSource);
    if (!aim) return;
    const { best } = pick(aim);
    if (action === 'select') stats.selects++;
    stats.lastPress = { action, hit: best ? best.entry.def.id : null, u: best && best.hit.u, v: best && best.hit.v };
    if (best && best.entry === app.menu) {
      const i = controlAt(app.menu.def, best.hit.u, best.hit.v);
      if (action === 'select' && i !== null) menuPress(app.menu.def.controls[i]);
      return;
    }
    if (app.armed && action === 'select') {
      const grip = gripOf(ev.frame, ev.inputSource);
      const armed = app.armed;
      closeMenu();
      if (armed.action === 'place') placeDevice(armed.device, grip, aim);
      else alignHome(grip, aim);
      return;
    }
    const def = best ? best.entry.def : null;
    const intent = intentFor(action, app.scene, def, best ? best.hit : null);
    if (!intent) return;
    if (intent.kind === 'bridge') {
      if (intent.action === 'toggle_menu') toggleMenu(ev.frame.getViewerPose(app.refSpace));
      else if (intent.action === 'move_panel' && best) {
        const current = worldPose(best.entry);
        app.moves.set(ev.inputSource, { panel: def.id, relative: compose(inverse(aim), current), current });
      }
      return;
    }
    sendCall(intent);
    const control = def.controls[intent.control];
    if (control.type === 'slider') {
      app.drags.set(ev.inputSource, { entry: best.entry, control, sent: intent.args[control.attribute], intent,
        inFlight: false, latest: null });
    }
  } catch (err) {
    report(err);
  }
}

function sendCall(intent) {
  stats.calls++;
  const rec = { entity: intent.entity_id, frame: stats.frames, t: performance.now() };
  app.pendingSelects.push(rec);
  if (app.pendingSelects.length > 64) app.pendingSelects.shift();
  return app.client.call(intent.entity_id, intent.command, intent.args).catch(report);
}

function onRelease(action, ev) {
  if (action === 'select') {
    const drag = app.drags.get(ev.inputSource);
    app.drags.delete(ev.inputSource);
    if (drag && drag.latest !== null && drag.latest !== drag.sent) dragSend(drag, drag.latest);
  } else {
    const move = app.moves.get(ev.inputSource);
    app.moves.delete(ev.inputSource);
    if (move) finishMove(move);
  }
}

function dragSend(drag, value) {
  // One call in flight per drag; the latest value waits for it (a slow hub sees the last position, not a backlog).
  if (drag.inFlight) { drag.latest = value; return; }
  drag.inFlight = true;
  drag.sent = value;
  drag.latest = null;
  const args = { ...drag.intent.args, [drag.control.attribute]: value };
  sendCall({ ...drag.intent, args }).finally(() => {
    drag.inFlight = false;
    if (drag.latest !== null && drag.latest !== drag.sent) dragSend(drag, drag.latest);
  });
}

function updateInputs(frame, viewer) {
  const rays = [];
  for (const source of app.session.inputSources) {
    const aim = aimOf(frame, source);
    if (!aim) continue;
    const { origin, dir, best } = pick(aim);
    const len = best ? best.hit.distance : RAY_LENGTH;
    rays.push([origin[0], origin[1], origin[2], origin[0] + dir[0] * len, origin[1] + dir[1] * len, origin[2] + dir[2] * len]);
    const drag = app.drags.get(source);
    if (drag) {
      const hit = rayPanel(origin, dir, worldPose(drag.entry), drag.entry.def.width_m, drag.entry.def.height_m);
      if (hit) {
        const value = sliderValue(drag.control, fractionIn(drag.entry.def, drag.control, hit.u));
        if (value !== drag.sent) dragSend(drag, value);
      }
    }
    const move = app.moves.get(source);
    if (move) {
      move.current = compose(aim, move.relative);
      const entry = app.entries.get(move.panel);
      if (entry) { entry.anchorPose = null; entry.override = toHome(move.current); }
    }
    // menu: B / Y (xr-standard button 5) or A / X (4), on the press
    const pad = source.gamepad;
    const pressed = !!(pad && ((pad.buttons[5] && pad.buttons[5].pressed) || (pad.buttons[4] && pad.buttons[4].pressed)));
    if (pressed && !app.buttons.get(source)) {
      const intent = intentFor('menu', app.scene, best && best.entry !== app.menu ? best.entry.def : null, best ? best.hit : null);
      if (intent && intent.kind === 'bridge' && intent.action === 'toggle_menu') toggleMenu(viewer);
      else if (intent && intent.kind === 'call') sendCall(intent);
    }
    app.buttons.set(source, pressed);
  }
  return rays;
}

// -- frame loop ---------------------------------------------------------------------------------------------------
function repaint() {
  const frame = stats.frames;
  for (const [id, entry] of app.entries) {
    if (!entry.dirty) continue;
    entry.dirty = false;
    paintPanel(entry.canvas, entry.def, app.client.states, { offline: app.offline });
    app.renderer.upload(entry, entry.canvas);
    stats.repaints[id] = (stats.repaints[id] || 0) + 1;
    for (const c of entry.def.controls) {
      const arrived = stats.stateArrived[c.entity_id];
      const st = app.client.states.get(c.entity_id);
      if (arrived) stats.stateDrawn[c.entity_id] = { frame, arrivedFrame: arrived.frame, v: st ? st.v : null, attrs: st ? st.a : null };
    }
  }
  if (app.menu && app.menu.dirty) {
    app.menu.dirty = false;
    paintPanel(app.menu.canvas, app.menu.def, new Map(), { note: app.menu.note });
    app.renderer.upload(app.menu, app.menu.canvas);
  }
  // selects whose new state arrived are drawn now: count frames from the press
  const now = performance.now();
  app.pendingSelects = app.pendingSelects.filter((rec) => {
    if (rec.arrived === undefined) return true;
    stats.selectLatency.push({ frames: frame - rec.frame, ms: now - rec.t, entity: rec.entity });
    return false;
  });
}

function project(pv, viewport, p) {
  const x = pv[0] * p[0] + pv[4] * p[1] + pv[8] * p[2] + pv[12];
  const y = pv[1] * p[0] + pv[5] * p[1] + pv[9] * p[2] + pv[13];
  const w = pv[3] * p[0] + pv[7] * p[1] + pv[11] * p[2] + pv[15];
  return [viewport.x + ((x / w + 1) / 2) * viewport.width, viewport.y + ((y / w + 1) / 2) * viewport.height];
}

function readProbes(pv, viewport) {
  // Tests ask for the pixel under a control's centre in the first view, read back in the frame it was drawn.
  const gl = app.gl;
  for (const probe of app.probes) {
    const entry = app.entries.get(probe.panel);
    if (!entry) continue;
    const c = entry.def.controls[probe.control];
    const [w, h] = entry.def.pixel_size;
    // off the label (drawn from the left, centred vertically): near the right end, low in the control
    const fu = probe.fu ?? 0.95, fv = probe.fv ?? 0.85;
    const u = (c.rect[0] + fu * (c.rect[2] - c.rect[0])) / w, v = (c.rect[1] + fv * (c.rect[3] - c.rect[1])) / h;
    const local = { ...IDENTITY, x: (u - 0.5) * entry.def.width_m, y: (0.5 - v) * entry.def.height_m };
    const p = compose(worldPose(entry), local);
    const [px, py] = project(pv, viewport, [p.x, p.y, p.z]);
    const out = new Uint8Array(4);
    gl.readPixels(Math.round(px), Math.round(py), 1, 1, gl.RGBA, gl.UNSIGNED_BYTE, out);
    stats.probes[probe.name] = { frame: stats.frames, rgba: [...out] };
  }
}

function onFrame(time, frame) {
  const session = frame.session;
  session.requestAnimationFrame(onFrame);
  const t0 = performance.now();
  stats.frames++;
  const tasks = app.frameTasks.splice(0);
  for (const task of tasks) task(frame).catch(report);
  const viewer = frame.getViewerPose(app.refSpace);
  if (!viewer) return;
  for (const entry of app.entries.values()) {
    if (entry.anchor && frame.trackedAnchors && frame.trackedAnchors.has(entry.anchor)) {
      const p = frame.getPose(entry.anchor.anchorSpace, app.refSpace);
      if (p && !entry.override) entry.anchorPose = fromTransform(p.transform);
      else if (p && [...app.moves.values()].every((m) => app.entries.get(m.panel) !== entry)) {
        entry.anchorPose = fromTransform(p.transform);
        entry.override = null;
      }
    }
  }
  const rays = updateInputs(frame, viewer);
  repaint();
  const layer = session.renderState.baseLayer;
  const transparent = stats.blend !== 'opaque';
  app.renderer.begin(layer.framebuffer, layer.framebufferWidth, layer.framebufferHeight,
    transparent ? [0, 0, 0, 0] : [0.08, 0.09, 0.1, 1]);
  const panels = visibleEntries().map((e) => ({ texture: e.texture, model: matrix(worldPose(e), e.def.width_m, e.def.height_m) }));
  let first = true;
  for (const view of viewer.views) {
    const vp = layer.getViewport(view);
    const pv = mul4(view.projectionMatrix, view.transform.inverse.matrix);
    app.renderer.view(vp, pv, panels, rays);
    if (first && app.probes.length) readProbes(pv, vp);
    first = false;
  }
  if (!app.firstDrawn && [...app.entries.values()].every((e) => e.texture)) {
    app.firstDrawn = true;
    stats.firstFrameMs = performance.now() - app.enteredAt;
  }
  stats.cpuMs.push(performance.now() - t0);
  if (stats.cpuMs.length > CPU_SAMPLES) stats.cpuMs.shift();
}

async function enter(mode) {
  if (app.session) return;
  app.enteredAt = performance.now();
  app.firstDrawn = false;
  const session = await navigator.xr.requestSession(mode, {
    optionalFeatures: ['local-floor', 'anchors', 'hand-tracking', 'hit-test'],
  });
  app.session = session;
  stats.session++;
  stats.mode = mode;
  stats.blend = session.environmentBlendMode || 'opaque';
  await app.gl.makeXRCompatible();
  session.updateRenderState({ baseLayer: new XRWebGLLayer(session, app.gl, { alpha: true }) });
  try {
    app.refSpace = await session.requestReferenceSpace('local-floor');
    stats.space = 'local-floor';
  } catch {
    app.refSpace = await session.requestReferenceSpace('local'); // heights then count from the head
    stats.space = 'local';
  }
  restoreHome();
  for (const entry of app.entries.values()) { entry.anchor = null; entry.anchorPose = null; }
  await restoreAnchors(session);
  session.addEventListener('selectstart', (ev) => onPress('select', ev));
  session.addEventListener('selectend', (ev) => onRelease('select', ev));
  session.addEventListener('squeezestart', (ev) => onPress('grab', ev));
  session.addEventListener('squeezeend', (ev) => onRelease('grab', ev));
  session.addEventListener('end', () => {
    app.session = null;
    app.drags.clear();
    app.moves.clear();
    closeMenu();
    stats.mode = null;
  });
  session.requestAnimationFrame(onFrame);
}

async function main() {
  if (params.get('iwer') === '1') {
    // Tests and desktop development: Meta's IWER emulates a Quest 3 (the test serves this file; the hub does not).
    const { XRDevice, metaQuest3 } = await import('./emulator/iwer.js');
    const device = new XRDevice(metaQuest3, { stereoEnabled: true });
    device.installRuntime({ forceInstall: true });
    window.xrDevice = device;
  }
  const canvas = $('gl');
  app.gl = canvas.getContext('webgl2', { xrCompatible: true, alpha: true, antialias: false });
  if (!app.gl) throw new Error('WebGL2 is not available');
  app.renderer = new Renderer(app.gl);
  const list = await (await fetch('/api/xr/scenes', { credentials: 'same-origin' })).json();
  const select = $('scene');
  for (const s of list.scenes) select.add(new Option(`${s.id} (${s.panels} panels)`, s.id));
  const sceneId = params.get('scene') || (list.scenes[0] && list.scenes[0].id);
  if (!sceneId) { $('status').textContent = 'no immersive scene: add one to the scene files (docs/xr.md)'; return; }
  select.value = sceneId;
  select.addEventListener('change', () => { location.search = `?scene=${encodeURIComponent(select.value)}`; });
  const client = new HubClient({ url: streamUrl(location.origin), credential: ticket, sceneId });
  app.client = client;
  client.onState = onState;
  client.onScene = setScene;
  client.onStatus = onStatus;
  await client.start();
  for (let i = 0; i < 200 && !app.scene; i++) await new Promise((r) => setTimeout(r, 10));
  const modes = { 'enter-vr': 'immersive-vr', 'enter-ar': 'immersive-ar' };
  for (const [id, mode] of Object.entries(modes)) {
    const supported = navigator.xr ? await navigator.xr.isSessionSupported(mode) : false;
    $(id).disabled = !supported;
    $(id).addEventListener('click', () => enter(mode).catch(report));
  }
  if (!navigator.xr) $('status').textContent += ' · this browser offers no WebXR here (HTTPS needed: docs/xr.md)';
  window.appReady = true;
}

main().catch((err) => { report(err); window.appError = String(err); });
