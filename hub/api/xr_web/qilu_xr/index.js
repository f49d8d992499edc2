// qilu-xr: the hub's XR client library (msgpack stream + scene API + scene geometry), plain ESM, no build step.
// Used by the hub's WebXR page (/xr/) and usable from engines that run JavaScript. Types: index.d.ts.
export { HubClient } from './client.js';
export * from './scene.js';

/**
 * GET a resolved scene over REST (for a first draw before the stream is up, or for clients without WebSockets).
 * @param {string} base the hub's origin, e.g. "https://hub.local:8123"
 * @param {string} sceneId
 * @param {{token?:string, fetch?:typeof fetch}} [options] without a token, the browser's cookie is used
 */
export async function fetchScene(base, sceneId, options = {}) {
  const f = options.fetch || globalThis.fetch;
  const headers = options.token ? { Authorization: `Bearer ${options.token}` } : {};
  const r = await f(`${base}/api/xr/scenes/${encodeURIComponent(sceneId)}`, { headers, credentials: 'same-origin' });
  if (!r.ok) throw new Error(`scene ${sceneId}: HTTP ${r.status}`);
  return r.json();
}

/** The stream's URL for a hub origin (ws:// for http, wss:// for https). */
export function streamUrl(base) {
  return base.replace(/^http/, 'ws') + '/api/stream';
}
