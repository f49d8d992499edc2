// qilu-hub dashboard: plain JavaScript, no build step. This file: helpers, the live connection, the page router.
// Live state: Home Assistant WebSocket protocol (subscribe_entities, compressed a/c/r messages), plus
// subscribe_events for registry and inbox changes, and HA's registry commands (config/*_registry/*) for rooms
// and names. Commands: POST /api/services/<domain>/<command>. Strings: i18n.js; tiles: tiles.js; the add,
// rooms and connect pages: pages.js; labelling: labels.js.
"use strict";

// The session cookie is HttpOnly: fetch() sends it, this script cannot read it. The WebSocket
// authenticates with a single-use ticket from POST /api/dashboard/ws_ticket instead.
const states = {};      // entity_id -> {s, a, lc, lu}
let registry = null;
const PAGES = ["home", "add", "scenes", "rooms", "connect"];
const ADMIN_PAGES = new Set(["add", "rooms", "connect"]);
const WATCHED_EVENTS = ["area_registry_updated", "device_registry_updated", "entity_registry_updated",
                        "discovery_inbox_updated", "problems_updated"];

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const child of children) node.append(child);
  return node;
}

// A short message at the bottom; errors (the default: most toasts report a refusal) in red.
function toast(text, kind) {
  const box = document.getElementById("toast");
  box.textContent = text;
  box.classList.toggle("error", kind !== "info");
  box.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { box.hidden = true; }, 5000);
}

async function api(method, path, body) {
  const res = await fetch(path, {
    method, headers: { "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(data.message || res.statusText);
  return data;
}

async function call(entity, command, args) {
  try {
    await api("POST", `/api/services/${entity.domain}/${command}`, { entity_id: entity.entity_id, ...args });
  } catch (err) {
    toast(`${entityName(entity)}: ${err.message}`);
  }
}

function isAdmin() {
  return !!(registry && registry.token.admin && !registry.token.read_only);
}

// -- the WebSocket: requests with answers, subscriptions with handlers ----------------------------------------
const socket = {
  ws: null,
  nextId: 1,
  waiting: new Map(),   // id -> {resolve, reject}
  handlers: new Map(),  // subscription id -> event handler
  send(msg) {
    const id = this.nextId++;
    this.ws.send(JSON.stringify({ id, ...msg }));
    return id;
  },
  // HA's registry commands and friends: resolves with the result, rejects with the hub's message.
  request(type, data) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return Promise.reject(new Error(t("conn.reconnecting")));
    return new Promise((resolve, reject) => {
      const id = this.send({ type, ...(data || {}) });
      this.waiting.set(id, { resolve, reject });
    });
  },
  subscribe(msg, handler) {
    const id = this.send(msg);
    this.handlers.set(id, handler);
  },
  dispatch(msg) {
    if (msg.type === "event") {
      const handler = this.handlers.get(msg.id);
      if (handler) handler(msg.event);
    } else if (msg.type === "result" && this.waiting.has(msg.id)) {
      const { resolve, reject } = this.waiting.get(msg.id);
      this.waiting.delete(msg.id);
      if (msg.success) resolve(msg.result);
      else reject(new Error((msg.error && msg.error.message) || "error"));
    }
  },
};

function setBadge(key, ok) {
  const badge = document.getElementById("connection");
  badge.dataset.i18n = key;
  badge.textContent = t(key);
  badge.classList.toggle("ok", !!ok);
}

async function connect() {
  let ticket;
  try {
    const res = await fetch("/api/dashboard/ws_ticket", { method: "POST" });
    if (res.status === 401) { setBadge("conn.refused"); return; }
    if (!res.ok) throw new Error(res.statusText);
    ticket = (await res.json()).ticket;
  } catch (err) {
    setBadge("conn.reconnecting");
    setTimeout(connect, 2000);
    return;
  }
  const ws = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/api/websocket`);
  socket.ws = ws;
  socket.handlers.clear();
  ws.onmessage = (e) => {
    const data = JSON.parse(e.data);
    for (const msg of Array.isArray(data) ? data : [data]) {
      if (msg.type === "auth_required") ws.send(JSON.stringify({ type: "auth", access_token: ticket }));
      else if (msg.type === "auth_ok") {
        socket.send({ type: "supported_features", features: { coalesce_messages: 1 } });
        socket.subscribe({ type: "subscribe_entities" }, applyEntities);
        // Adoption, renames and rooms show up at once, here and in every other open dashboard.
        for (const type of WATCHED_EVENTS) socket.subscribe({ type: "subscribe_events", event_type: type }, onHubEvent);
        setBadge("conn.live", true);
        scheduleRefresh();  // whatever changed while the connection was down
      } else if (msg.type === "auth_invalid") setBadge("conn.refused");
      else socket.dispatch(msg);
    }
  };
  ws.onclose = () => {
    for (const { reject } of socket.waiting.values()) reject(new Error(t("conn.reconnecting")));
    socket.waiting.clear();
    setBadge("conn.reconnecting");
    setTimeout(connect, 2000);
  };
}

function onHubEvent(event) {
  scheduleRefresh(event.event_type === "discovery_inbox_updated");
}

function applyEntities(event) {
  let unknown = false;
  const known = (id) => registry && registry.entities.some((e) => e.entity_id === id);
  for (const [id, st] of Object.entries(event.a || {})) {
    states[id] = st;
    if (!known(id)) unknown = true;
    changed(id);
  }
  for (const [id, diff] of Object.entries(event.c || {})) {
    const st = states[id] || (states[id] = { a: {} });
    const plus = diff["+"] || {};
    if ("s" in plus) st.s = plus.s;
    if ("lc" in plus) st.lc = plus.lc;
    if ("lu" in plus) st.lu = plus.lu;
    if (plus.a) st.a = { ...st.a, ...plus.a };
    if (diff["-"] && diff["-"].a) for (const k of diff["-"].a) delete st.a[k];
    changed(id);
  }
  for (const id of event.r || []) { delete states[id]; changed(id); }
  // An entity this page has not heard of (a device just adopted, seen by a token without registry events).
  if (unknown && registry) scheduleRefresh();
}

function changed(entityId) {
  updateEntity(entityId);
  if (registry && entityId === registry.scene_entity) renderScene();
}

function renderScene() {
  const body = document.getElementById("scene-body");
  const st = states[registry.scene_entity];
  if (!st) return;
  body.className = "";
  delete body.dataset.i18n;
  body.replaceChildren(el("div", { "data-testid": "scene-name", class: "state" }, String(st.s)));
  const probs = (st.a && st.a.probabilities) || {};
  for (const [label, p] of Object.entries(probs).sort((a, b) => b[1] - a[1])) {
    const bar = el("div", { class: "bar" });
    bar.style.width = `${Math.round(p * 100)}%`;
    body.append(el("div", { class: "prob" }, el("span", {}, label), el("div", { class: "track" }, bar),
                   el("span", {}, `${Math.round(p * 100)}%`)));
  }
}

// -- registry --------------------------------------------------------------------------------------------------
let refreshTimer = null;
let refreshInbox = false;

function scheduleRefresh(inbox) {
  refreshInbox = refreshInbox || !!inbox;
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(() => {
    const withInbox = refreshInbox;
    refreshInbox = false;
    refreshRegistry().catch((err) => toast(err.message));
    if (withInbox || isAdmin()) loadInbox();
    loadProblems();
  }, 100);
}

async function refreshRegistry() {
  registry = await api("GET", "/api/dashboard/registry");
  render();
}

function render() {
  document.getElementById("home-name").textContent = registry.name;
  const tok = registry.token;
  const parts = [t("token.info", { name: tok.name })];
  if (tok.read_only) parts.push(t("token.read_only"));
  const areaName = Object.fromEntries(registry.areas.map((a) => [a.id, a.name]));
  if (tok.areas) parts.push(t("token.areas", { areas: tok.areas.map((id) => areaName[id] || id).join(", ") }));
  document.getElementById("token-info").textContent = parts.join(" · ");
  for (const link of document.querySelectorAll("[data-admin]")) link.hidden = !isAdmin();
  renderHome();
  renderAdminPages();
  if (states[registry.scene_entity]) renderScene();
  showPage();
}

// -- dialogs -----------------------------------------------------------------------------------------------------
function confirmAction(text) {
  const dialog = document.getElementById("confirm");
  document.getElementById("confirm-text").textContent = text;
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "yes"), { once: true });
    dialog.returnValue = "";
    dialog.showModal();
  });
}

// -- pages ---------------------------------------------------------------------------------------------------------
function showPage() {
  let page = location.hash.slice(1) || "home";
  if (!PAGES.includes(page) || (ADMIN_PAGES.has(page) && !isAdmin())) page = "home";
  for (const section of document.querySelectorAll("main > [data-page]")) section.hidden = section.dataset.page !== page;
  for (const link of document.querySelectorAll("[data-page-link]")) {
    if (link.dataset.pageLink === page) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

function setUpLanguage() {
  const select = document.getElementById("lang");
  select.replaceChildren(...LANGUAGES.map((code) => el("option", { value: code, lang: code }, CATALOGUE[code]["lang.name"])));
  select.value = i18n.lang;
  select.addEventListener("change", () => i18n.set(select.value));
  i18n.onChange(() => { if (registry) render(); });
  i18n.apply(document);
}

async function main() {
  setUpLanguage();
  window.addEventListener("hashchange", showPage);
  await refreshRegistry();
  connect();
  if (isAdmin()) loadInbox();
  loadProblems();
  // Inbox events announce new, adopted and ignored appliances; this slow look also catches what has none
  // (an appliance going offline, a wrong bind key found out).
  setInterval(() => { if (isAdmin()) loadInbox(); }, 30000);
}

document.addEventListener("DOMContentLoaded", () => { main().catch((err) => toast(err.message)); });
