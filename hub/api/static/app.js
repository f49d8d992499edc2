// qilu-hub dashboard: plain JavaScript, no build step.
// Live state: Home Assistant WebSocket protocol, subscribe_entities (compressed a/c/r messages).
// Commands: POST /api/services/<domain>/<command>.
"use strict";

// The session cookie is HttpOnly: fetch() sends it, this script cannot read it. The WebSocket
// authenticates with a single-use ticket from POST /api/dashboard/ws_ticket instead.
const authHeaders = {};
const states = {};      // entity_id -> {s, a, lc, lu}
let registry = null;
let nextId = 1;

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

function toast(text) {
  const t = document.getElementById("toast");
  t.textContent = text;
  t.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { t.hidden = true; }, 4000);
}

async function api(method, path, body) {
  const res = await fetch(path, {
    method, headers: { ...authHeaders, "Content-Type": "application/json" },
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
    toast(`${entity.entity_id}: ${err.message}`);
  }
}

function argControl(entity, command, name, schema) {
  const label = el("label", { class: "arg" }, name.replace(/_/g, " "));
  let input;
  if (schema.enum) {
    input = el("select", {}, ...schema.enum.map((o) => el("option", { value: o }, o)));
  } else if (schema.type === "integer" || schema.type === "number") {
    const ranged = schema.minimum !== undefined && schema.maximum !== undefined;
    input = el("input", { type: ranged ? "range" : "number", step: schema.type === "integer" ? "1" : "any" });
    if (schema.minimum !== undefined) input.min = schema.minimum;
    if (schema.maximum !== undefined) input.max = schema.maximum;
  } else if (schema.type === "boolean") {
    input = el("input", { type: "checkbox" });
  } else if (schema.type === "array" && schema.maxItems === 3) {
    input = el("input", { type: "color" }); // rgb_color as a colour picker
  } else if (schema.type === "array") {
    return null; // hs_color: the colour picker above covers colour
  } else {
    input = el("input", { type: "text", size: "8" });
  }
  input.dataset.testid = `arg-${entity.entity_id}-${command}-${name}`;
  input.dataset.attr = name;
  input.addEventListener("change", () => {
    let value = input.type === "checkbox" ? input.checked : input.value;
    if (input.type === "color") value = [1, 3, 5].map((i) => parseInt(input.value.slice(i, i + 2), 16));
    else if (schema.type === "integer") value = parseInt(value, 10);
    else if (schema.type === "number") value = parseFloat(value);
    call(entity, command, { [name]: value });
  });
  label.append(input);
  return label;
}

function controlsFor(entity) {
  const box = el("div", { class: "controls" });
  if (!entity.controllable) return box;
  for (const [command, args] of Object.entries(entity.commands)) {
    const required = Object.values(args).some((a) => a.required);
    if (!required) {
      box.append(el("button", { "data-testid": `cmd-${entity.entity_id}-${command}`,
                               onclick: () => call(entity, command, {}) }, command.replace(/_/g, " ")));
    }
    for (const [name, schema] of Object.entries(args)) {
      if (command === "turn_on" && name === "transition") continue;
      const control = argControl(entity, command, name, schema);
      if (control) box.append(control);
    }
  }
  return box;
}

function stateText(entity, st) {
  if (!st) return "—";
  let text = String(st.s);
  if (entity.unit && st.s !== "unavailable") text += " " + entity.unit;
  if (st.a && st.a.brightness !== undefined && st.s === "on") text += ` (${Math.round(st.a.brightness / 2.55)}%)`;
  if (st.a && st.a.current_temperature !== undefined) text += ` · ${st.a.current_temperature} °C → ${st.a.temperature} °C`;
  return text;
}

function renderEntityState(entityId) {
  const node = document.querySelector(`[data-state="${CSS.escape(entityId)}"]`);
  const entity = registry && registry.entities.find((e) => e.entity_id === entityId);
  if (node && entity) {
    const st = states[entityId];
    node.textContent = stateText(entity, st);
    node.classList.toggle("on", !!st && st.s === "on");
    // Show the current values on the controls (unless the user is moving one right now).
    for (const input of document.querySelectorAll(`[data-entity="${CSS.escape(entityId)}"] [data-attr]`)) {
      const name = input.dataset.attr;
      const value = name === "hvac_mode" ? st && st.s : st && st.a && st.a[name];
      if (value !== undefined && value !== null && document.activeElement !== input) {
        if (input.type === "checkbox") input.checked = !!value;
        else if (input.type === "color" && Array.isArray(value)) {
          input.value = "#" + value.map((c) => Math.round(c).toString(16).padStart(2, "0")).join("");
        } else input.value = value;
      }
    }
  }
  if (registry && entityId === registry.scene_entity) renderScene();
}

function renderScene() {
  const body = document.getElementById("scene-body");
  const st = states[registry.scene_entity];
  if (!st) return;
  body.className = "";
  body.replaceChildren(el("div", { "data-testid": "scene-name", class: "state" }, String(st.s)));
  const probs = (st.a && st.a.probabilities) || {};
  for (const [label, p] of Object.entries(probs).sort((a, b) => b[1] - a[1])) {
    const bar = el("div", { class: "bar" });
    bar.style.width = `${Math.round(p * 100)}%`;
    body.append(el("div", { class: "prob" }, el("span", {}, label), el("div", {}, bar),
                   el("span", {}, `${Math.round(p * 100)}%`)));
  }
}

function render() {
  document.getElementById("home-name").textContent = registry.name;
  const t = registry.token;
  document.getElementById("token-info").textContent =
    `token “${t.name}”${t.read_only ? " · read-only" : ""}${t.areas ? " · areas: " + t.areas.join(", ") : ""}`;
  const root = document.getElementById("areas");
  root.replaceChildren();
  const areaNames = Object.fromEntries(registry.areas.map((a) => [a.id, a.name]));
  const devices = Object.fromEntries(registry.devices.map((d) => [d.id, d]));
  const byArea = {};
  for (const entity of registry.entities) {
    (byArea[entity.area_id || ""] ||= []).push(entity);
  }
  for (const [areaId, entities] of Object.entries(byArea)) {
    const section = el("section", { class: "area", "data-area": areaId },
                       el("h2", {}, areaNames[areaId] || "No area"));
    const byDevice = {};
    for (const e of entities) (byDevice[e.device_id || ""] ||= []).push(e);
    for (const [deviceId, list] of Object.entries(byDevice)) {
      const device = devices[deviceId];
      const box = el("div", { class: "device" },
                     el("h3", {}, device ? (device.name_by_user || device.name) + (device.model ? ` · ${device.model}` : "") : "—"));
      for (const e of list) {
        box.append(el("div", { class: "entity", "data-entity": e.entity_id },
                      el("span", { class: "name" }, e.name),
                      el("span", { class: "state", "data-state": e.entity_id, "data-testid": `state-${e.entity_id}` }, "—"),
                      controlsFor(e)));
      }
      section.append(box);
    }
    root.append(section);
  }
  for (const id of Object.keys(states)) renderEntityState(id);
}

function applyEntities(event) {
  for (const [id, st] of Object.entries(event.a || {})) { states[id] = st; renderEntityState(id); }
  for (const [id, diff] of Object.entries(event.c || {})) {
    const st = states[id] || (states[id] = { a: {} });
    const plus = diff["+"] || {};
    if ("s" in plus) st.s = plus.s;
    if ("lc" in plus) st.lc = plus.lc;
    if ("lu" in plus) st.lu = plus.lu;
    if (plus.a) st.a = { ...st.a, ...plus.a };
    if (diff["-"] && diff["-"].a) for (const k of diff["-"].a) delete st.a[k];
    renderEntityState(id);
  }
  for (const id of event.r || []) { delete states[id]; renderEntityState(id); }
}

async function connect() {
  const badge = document.getElementById("connection");
  let ticket;
  try {
    const res = await fetch("/api/dashboard/ws_ticket", { method: "POST" });
    if (res.status === 401) { badge.textContent = "token refused"; return; }
    if (!res.ok) throw new Error(res.statusText);
    ticket = (await res.json()).ticket;
  } catch (err) {
    badge.textContent = "reconnecting…";
    setTimeout(connect, 2000);
    return;
  }
  const ws = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/api/websocket`);
  ws.onmessage = (e) => {
    const data = JSON.parse(e.data);
    for (const msg of Array.isArray(data) ? data : [data]) {
      if (msg.type === "auth_required") ws.send(JSON.stringify({ type: "auth", access_token: ticket }));
      else if (msg.type === "auth_ok") {
        ws.send(JSON.stringify({ id: nextId++, type: "supported_features", features: { coalesce_messages: 1 } }));
        ws.send(JSON.stringify({ id: nextId++, type: "subscribe_entities" }));
        badge.textContent = "live"; badge.classList.add("ok");
      } else if (msg.type === "auth_invalid") { badge.textContent = "token refused"; }
      else if (msg.type === "event") applyEntities(msg.event);
    }
  };
  ws.onclose = () => {
    badge.textContent = "reconnecting…"; badge.classList.remove("ok");
    setTimeout(connect, 2000);
  };
}

async function loadInbox() {
  try {
    const data = await api("GET", "/api/discovery");
    const list = document.getElementById("inbox-list");
    list.replaceChildren();
    // Adopted appliances appear under their areas; the inbox lists what still needs a decision.
    // An encrypted sensor with a wrong key is adopted but still needs a decision: its right key.
    const waiting = data.entries.filter((e) => (e.state || "pending") === "pending" || e.problem === "wrong_bind_key");
    const ignored = data.entries.filter((e) => e.state === "ignored");
    // An adopted appliance announced at another address that did not prove it is the same one: the hub keeps
    // talking to the adopted address until the household confirms the move (anyone on the LAN can announce).
    const moves = data.entries.filter((e) => e.state === "adopted" && e.move);
    const row = (entry, actions) => {
      const key = entry.key || entry.id;
      const title = entry.name || entry.title || key;
      const detail = entry.move && entry.state === "adopted"
        ? `address change, confirm: adopted at ${entry.move.from}, announced at ${entry.move.to} (${entry.move.proof})`
        : [entry.manufacturer, entry.model, (entry.sources || []).join("+")].filter(Boolean).join(" · ");
      const needsKey = entry.problem === "needs_bind_key" || entry.problem === "wrong_bind_key";
      const keyInput = needsKey ? el("input", { type: "password", size: "34", autocomplete: "off",
        placeholder: entry.problem === "wrong_bind_key" ? "wrong bind key: enter the right one" : "bind key (32 hex digits)",
        "data-testid": `bind-key-${key}` }) : null;
      const act = (action) => async () => {
        const body = action === "adopt" && keyInput ? { bind_key: keyInput.value } : undefined;
        try { await api("POST", `/api/discovery/${encodeURIComponent(key)}/${action}`, body); } catch (err) { toast(err.message); }
        loadInbox();
        refreshRegistry();
      };
      return el("li", { "data-inbox": key, "data-state": entry.state || "pending" }, el("strong", {}, title), " ",
                el("span", { class: "muted" }, detail), " ", ...(keyInput ? [keyInput, " "] : []),
                ...actions.map(([label, action]) => el("button", { onclick: act(action) }, label)));
    };
    for (const entry of moves) list.append(row(entry, [["Confirm move", "confirm_move"], ["Keep address", "reject_move"]]));
    for (const entry of waiting) list.append(row(entry, [["Adopt", "adopt"], ["Ignore", "ignore"]]));
    for (const entry of ignored) list.append(row(entry, [["Un-ignore", "unignore"]]));
    document.getElementById("inbox-empty").hidden = moves.length + waiting.length + ignored.length > 0;
  } catch (err) {
    toast(err.message);
  }
}

async function refreshRegistry() {
  registry = await api("GET", "/api/dashboard/registry");
  render();
}

async function main() {
  await refreshRegistry();
  connect();
  loadInbox();
  setInterval(loadInbox, 10000);
}

main().catch((err) => toast(err.message));
