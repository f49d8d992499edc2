// node --test for the qilu-xr client library (hub/api/xr_web/qilu_xr), run by test_client_library.py against a
// real hub (QILU_HUB_URL, QILU_HUB_TOKEN); the geometry tests need no hub.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  HubClient, fetchScene, streamUrl, compose, inverse, yaw, rayPanel, aimRay, controlAt, intentFor, panelPose,
  referenceFor, IDENTITY,
} from '../../hub/api/xr_web/qilu_xr/index.js';

const BASE = process.env.QILU_HUB_URL;
const TOKEN = process.env.QILU_HUB_TOKEN;
const LIGHT = 'light.living_room_ceiling_light';
const near = (a, b, eps = 1e-9) => assert.ok(Math.abs(a - b) < eps, `${a} != ${b}`);

test('compose and inverse undo each other', () => {
  const p = compose(yaw(30, 1, 2, 3), yaw(-75, 0.5, 0, -1));
  const back = compose(inverse(p), p);
  for (const k of ['x', 'y', 'z', 'qx', 'qy', 'qz']) near(back[k], IDENTITY[k]);
  near(Math.abs(back.qw), 1);
});

test('a ray hits a panel where the bridge says it does', () => {
  const pose = yaw(0, 0, 1.3, -1);
  const hit = rayPanel([0.1, 1.35, 0], [0, 0, -1], pose, 0.5, 0.3);
  near(hit.distance, 1); near(hit.u, 0.7); near(hit.v, 0.5 - 0.05 / 0.3);
  assert.equal(rayPanel([1, 1.3, 0], [0, 0, -1], pose, 0.5, 0.3), null); // beside it
  assert.equal(rayPanel([0, 1.3, -2], [0, 0, -1], pose, 0.5, 0.3), null); // behind the ray
  const aim = aimRay(yaw(90, 0, 1.3, 0)); // turned left: -Z points to -X
  near(aim.dir[0], -1);
});

test('the resolved scene from a real hub: hits, intents, placement', { skip: !BASE }, async () => {
  const scene = await fetchScene(BASE, 'living_room_vr', { token: TOKEN });
  const panel = scene.panels.find((p) => p.id === 'lights');
  const slider = panel.controls.find((c) => c.type === 'slider');
  const [x0, y0, x1, y1] = slider.rect;
  const [w, h] = panel.pixel_size;
  const hit = { distance: 1, u: (x0 + 0.5 * (x1 - x0)) / w, v: (y0 + y1) / 2 / h };
  assert.equal(controlAt(panel, hit.u, hit.v), panel.controls.indexOf(slider));
  const intent = intentFor('select', scene, panel, hit);
  assert.equal(intent.command, 'turn_on');
  assert.deepEqual(intent.args, { transition: 0.5, brightness: 128 }); // the bridge rounds 127.5 to 128 as well
  const readout = panel.controls.find((c) => c.type === 'readout');
  const rh = { distance: 1, u: (readout.rect[0] + 2) / w, v: (readout.rect[1] + 2) / h };
  assert.deepEqual(intentFor('grab', scene, panel, rh), { kind: 'bridge', action: 'move_panel', panel: 'lights' });
  assert.equal(intentFor('select', scene, panel, rh), null);
  const home = panelPose(panel);
  near(home.y, 1.3);
  const ref = referenceFor(panel, home);
  for (const k of ['x', 'y', 'z']) near(ref[k], 0, 1e-9);
});

test('the stream client follows states, calls, writes poses and gets the scene pushed', { skip: !BASE }, async () => {
  const client = new HubClient({ url: streamUrl(BASE), token: TOKEN, sceneId: 'living_room_vr', entities: [LIGHT] });
  const scenes = [];
  client.onScene = (s) => scenes.push(s);
  await client.start();
  try {
    for (let i = 0; i < 100 && scenes.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(scenes[0].id, 'living_room_vr');
    const before = client.states.get(LIGHT).v;
    const changed = new Promise((resolve) => { client.onState = (id, st) => { if (id === LIGHT) resolve(st.v); }; });
    await client.call(LIGHT, 'toggle');
    assert.equal(await changed, before === 'on' ? 'off' : 'on');
    await assert.rejects(client.call('light.nope', 'toggle'), (e) => e.code === 'not_found');
    // the living room's frame moves: the sofa panel's pose comes back in a pushed scene
    const pushed = new Promise((resolve) => { client.onScene = resolve; });
    const answer = await client.setPose('areas', 'living_room', { x: 1, y: 0, z: -2 });
    assert.equal(answer.pose.x, 1);
    const scene = await pushed;
    const sofa = scene.panels.find((p) => p.id === 'sofa');
    near(sofa.placement.pose.x, 1.8, 1e-6);
    await assert.rejects(client.setPose('areas', 'living_room', { x: 'far' }), (e) => e.code === 'invalid_format');
  } finally {
    client.close();
  }
});
