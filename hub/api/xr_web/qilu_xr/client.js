// A client of the hub's msgpack stream (/api/stream, docs/stream.md) for XR pages and engines: authenticates,
// subscribes to states and to a resolved XR scene, calls commands and writes poses, and reconnects (re-authenticating
// and re-subscribing) after the hub restarts or the network drops. Runs in browsers and in Node (pass WebSocket).
import { encode } from './vendor/msgpack/encode.mjs';
import { decode } from './vendor/msgpack/decode.mjs';

const RETRY_MIN_MS = 250;
const RETRY_MAX_MS = 5000;
const CALL_TIMEOUT_MS = 10000;

/**
 * @typedef {{v:any,a:Record<string,any>,lc?:number,lu?:number}} EntityState
 * @typedef {{url:string, token?:string, credential?:() => Promise<string>, WebSocket?:any, sceneId?:string|null,
 *   entities?:string[]|null, poses?:boolean}} ClientOptions
 */

export class HubClient {
  /** @param {ClientOptions} options */
  constructor(options) {
    this.url = options.url;
    this._credential = options.credential || (async () => options.token || '');
    this._WebSocket = options.WebSocket || globalThis.WebSocket;
    this.sceneId = options.sceneId ?? null;
    this.entities = options.entities ?? null;
    this.wantPoses = !!options.poses;
    /** @type {Map<string, EntityState>} */
    this.states = new Map();
    /** @type {any} the resolved scene (GET /api/xr/scenes/{id}), kept current */
    this.scene = null;
    this.poses = { devices: {}, areas: {} };
    this.status = 'idle';
    this.onState = (entityId, state) => {};
    this.onScene = (scene) => {};
    this.onPoses = (poses) => {};
    this.onStatus = (status, detail) => {};
    this._ws = null;
    this._nextId = 100;
    this._pending = new Map();
    this._closed = false;
    this._retry = RETRY_MIN_MS;
    this._timer = null;
    this.connects = 0;
  }

  /** Connect (and keep reconnecting until close()). Resolves once the first subscription snapshot arrived. */
  start() {
    this._closed = false;
    return new Promise((resolve) => { this._firstSnapshot = resolve; this._open(); });
  }

  close() {
    this._closed = true;
    clearTimeout(this._timer);
    if (this._ws) this._ws.close();
    this._setStatus('closed');
  }

  _setStatus(status, detail) {
    this.status = status;
    this.onStatus(status, detail);
  }

  async _open() {
    if (this._closed) return;
    this._setStatus('connecting');
    let secret;
    try {
      secret = await this._credential();
    } catch (err) {
      this._scheduleRetry(`no credential: ${err}`);
      return;
    }
    const ws = new this._WebSocket(this.url);
    ws.binaryType = 'arraybuffer';
    this._ws = ws;
    ws.onopen = () => ws.send(encode({ type: 'auth', access_token: secret }));
    ws.onmessage = (ev) => this._receive(decode(new Uint8Array(ev.data)));
    ws.onclose = (ev) => {
      if (this._ws !== ws) return;
      this._ws = null;
      for (const [, p] of this._pending) p.reject(new Error('connection closed'));
      this._pending.clear();
      this._scheduleRetry(ev.reason || `closed (${ev.code})`);
    };
    ws.onerror = () => {}; // onclose follows and retries
  }

  _scheduleRetry(reason) {
    if (this._closed) return;
    this._setStatus('offline', reason);
    clearTimeout(this._timer);
    this._timer = setTimeout(() => this._open(), this._retry);
    this._retry = Math.min(RETRY_MAX_MS, this._retry * 2);
  }

  _send(msg) {
    if (this._ws && this._ws.readyState === 1) this._ws.send(encode(msg));
  }

  _request(msg) {
    const id = this._nextId++;
    return new Promise((resolve, reject) => {
      if (!this._ws || this._ws.readyState !== 1) { reject(new Error('not connected')); return; }
      const timer = setTimeout(() => { this._pending.delete(id); reject(new Error('no answer')); }, CALL_TIMEOUT_MS);
      this._pending.set(id, {
        resolve: (v) => { clearTimeout(timer); resolve(v); },
        reject: (e) => { clearTimeout(timer); reject(e); },
      });
      this._send({ ...msg, id });
    });
  }

  _receive(msg) {
    switch (msg.type) {
      case 'auth_ok':
        this._retry = RETRY_MIN_MS;
        this.connects++;
        this._setStatus('online');
        this._send({ type: 'subscribe', id: 1, ...(this.entities ? { entities: this.entities } : {}), poses: this.wantPoses });
        if (this.sceneId) this._send({ type: 'xr/subscribe_scene', id: 2, scene_id: this.sceneId });
        return;
      case 'auth_invalid':
        this._setStatus('unauthorized', msg.message);
        return;
      case 'snapshot': {
        const seen = new Set(Object.keys(msg.states));
        for (const id of [...this.states.keys()]) if (!seen.has(id)) { this.states.delete(id); this.onState(id, null); }
        for (const [id, st] of Object.entries(msg.states)) this._setState(id, st);
        if (this._firstSnapshot) { this._firstSnapshot(); this._firstSnapshot = null; }
        return;
      }
      case 'delta':
        for (const [id, st] of Object.entries(msg.states)) this._setState(id, st);
        for (const id of msg.removed || []) { this.states.delete(id); this.onState(id, null); }
        return;
      case 'poses':
        Object.assign(this.poses.devices, msg.devices);
        Object.assign(this.poses.areas, msg.areas);
        this.onPoses(msg);
        return;
      case 'scene':
        this._setScene(msg.scene || null);
        return;
      case 'result': {
        if (msg.id === 2 && msg.success && msg.result) { this._setScene(msg.result.scene); return; }
        const p = this._pending.get(msg.id);
        if (!p) return;
        this._pending.delete(msg.id);
        if (msg.success) p.resolve(msg.result);
        else p.reject(Object.assign(new Error(msg.error.message), { code: msg.error.code }));
        return;
      }
      default:
    }
  }

  _setState(id, st) {
    const old = this.states.get(id);
    this.states.set(id, st);
    if (!old || old.lu !== st.lu || old.v !== st.v) this.onState(id, st);
  }

  _setScene(scene) {
    if (scene && this.scene && scene.version === this.scene.version) return;
    this.scene = scene;
    this.onScene(scene);
  }

  /** Send a command to an entity; resolves when the hub has run it. */
  call(entityId, command, args = {}) {
    return this._request({ type: 'call', entity_id: entityId, command, args });
  }

  /** Write a device's or an area's pose in the home frame ({x,y,z,qx,qy,qz,qw}). kind: 'devices' | 'areas'. */
  setPose(kind, key, pose) {
    return this._request({ type: 'xr/set_pose', kind, key, pose });
  }

  /** The immersive scenes this token may see: [{id, description, panels, version}]. */
  scenes() {
    return this._request({ type: 'xr/scenes' });
  }
}
