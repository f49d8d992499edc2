// The home page: rooms (areas), a tile per device, and on each tile the control its capabilities imply.
// Uses app.js (el, call, states, registry, confirmAction, editDevice) and i18n.js (t, fmt*).
// Every entity's readable state has data-testid="state-<entity_id>"; controls register a sync function that
// shows the live state on them (syncers), so a change made elsewhere moves the switch or slider here too.
"use strict";

const syncers = new Map();  // entity_id -> [function(state)]
// Which entity leads a tile: the first of these domains present; the rest of the device's entities follow it.
const DOMAIN_ORDER = ["light", "climate", "cover", "lock", "media_player", "fan", "switch", "button", "binary_sensor",
                      "sensor", "event", "scene"];
// Readings about the device itself rather than the home come after those about the home.
const HOUSEKEEPING = new Set(["battery", "power", "energy", "voltage"]);
const OPENING_CLASSES = new Set(["door", "window", "opening", "garage_door"]);
const BINARY_WORDS = { motion: "motion", occupancy: "occupancy", moisture: "moisture", smoke: "smoke" };

function onSync(entityId, fn) {
  if (!syncers.has(entityId)) syncers.set(entityId, []);
  syncers.get(entityId).push(fn);
}

// device_class and unit from the registry, else from the state's attributes (friendly_name, unit_of_measurement
// and device_class as Home Assistant sends them), so both old and new hubs read well.
function deviceClass(entity) {
  const st = states[entity.entity_id];
  return entity.device_class || (st && st.a && st.a.device_class) || null;
}

function unitOf(entity) {
  const st = states[entity.entity_id];
  return entity.unit || (st && st.a && st.a.unit_of_measurement) || "";
}

function deviceName(device) {
  return device.name_by_user || device.name;
}

function entityName(entity) {
  const st = states[entity.entity_id];
  return entity.name || (st && st.a && st.a.friendly_name) || entity.entity_id;
}

// What to call an entity on its device's tile: its name without the device's, else what it measures.
function rowLabel(entity, device) {
  const own = ownName(entity, device);
  // A driver's English word for what it measures ("Temperature") reads in the chosen language.
  if (!own || own.toLowerCase() === String(CATALOGUE.en[`class.${deviceClass(entity)}`]).toLowerCase()) return classLabel(entity);
  return own;
}

function classLabel(entity) {
  const dc = deviceClass(entity);
  return dc && CATALOGUE.en[`class.${dc}`] ? t(`class.${dc}`) : t(`kind.${entity.domain}`);
}

// The entity's name without its device's ("Fridge Super Cool" on the Fridge tile: "Super Cool"); "" if none.
function ownName(entity, device) {
  let name = entityName(entity);
  if (device) {
    for (const prefix of [deviceName(device), device.name]) {
      if (prefix && name.toLowerCase().startsWith(prefix.toLowerCase())) {
        name = name.slice(prefix.length).trim();
        break;
      }
    }
  }
  return name;
}

function has(entity, capability) {
  return entity.capabilities.includes(capability);
}

function schemaOf(entity, command, arg) {
  const cmd = entity.commands[command];
  return (cmd && cmd[arg]) || {};
}

function fmtDuration(seconds) {
  const minutes = Math.max(1, Math.round(seconds / 60));
  try {
    return new Intl.NumberFormat(i18n.locale(), { style: "unit", unit: minutes >= 60 ? "hour" : "minute",
      unitDisplay: "short", maximumFractionDigits: 1 }).format(minutes >= 60 ? minutes / 60 : minutes);
  } catch (err) {
    return `${minutes} min`;
  }
}

// The readable state of one entity, in the chosen language.
function stateText(entity) {
  const st = states[entity.entity_id];
  if (!st) return "—";
  const s = String(st.s);
  const a = st.a || {};
  if (s === "unavailable" || s === "unknown") return t(`state.${s}`);
  const dc = deviceClass(entity);
  switch (entity.domain) {
    case "binary_sensor": {
      const word = OPENING_CLASSES.has(dc) ? "open" : BINARY_WORDS[dc];
      return word ? t(`state.${word}.${s}`) : t(`state.${s}`);
    }
    case "light": case "switch": case "fan": {
      let text = t(`state.${s}`);
      if (s === "on" && typeof a.brightness === "number") text += ` · ${Math.round(a.brightness / 2.55)}%`;
      if (s === "on" && entity.domain === "fan" && typeof a.percentage === "number") text += ` · ${a.percentage}%`;
      return text;
    }
    case "climate": {
      let text = t(`hvac.${s}`);
      if (typeof a.current_temperature === "number") {
        text += ` · ${t("climate.now", { now: `${fmtNumber(a.current_temperature)} °C` })}`;
      }
      return text;
    }
    case "cover":
      return typeof a.current_position === "number"
        ? t("cover.at", { state: t(`state.${s}`), pos: `${a.current_position}%` }) : t(`state.${s}`);
    case "lock": case "media_player":
      return t(`state.${s}`) + (a.media_title ? ` · ${a.media_title}` : "");
    case "scene": case "button": {
      const when = Date.parse(s);
      return Number.isNaN(when) ? t("scene.never") : t("scene.last", { time: fmtTime(when / 1000) });
    }
    case "event": {
      const when = Date.parse(s);
      return `${a.event_type || ""}${Number.isNaN(when) ? "" : " · " + fmtTime(when / 1000)}`;
    }
    default: break;
  }
  if (has(entity, "operational_state")) {
    let text = t(`state.${s}`);
    if (a.program) text += ` · ${a.program}`;
    if (s === "running" && a.remaining_s > 0) text += ` · ${t("remaining", { time: fmtDuration(a.remaining_s) })}`;
    return text;
  }
  const number = Number(s);
  const unit = unitOf(entity);
  if (s.trim() !== "" && Number.isFinite(number)) return `${fmtNumber(number, dc === "energy" ? 2 : 1)}${unit ? " " + unit : ""}`;
  return s + (unit ? ` ${unit}` : "");
}

// A media player counts as on whenever it is not off (idle, playing, paused); everything else when "on".
function isOn(entity, st) {
  return !!st && (entity.domain === "media_player" ? st.s !== "off" && st.s !== "unavailable" : st.s === "on");
}

function switchControl(entity, name) {
  const button = el("button", { class: "switch", role: "switch", "aria-checked": "false",
                                "aria-label": t("ctl.switch", { name }), "data-testid": `switch-${entity.entity_id}` },
                    el("span", { class: "knob", "aria-hidden": "true" }));
  button.addEventListener("click", () => {
    call(entity, button.getAttribute("aria-checked") === "true" ? "turn_off" : "turn_on", {});
  });
  onSync(entity.entity_id, (st) => {
    button.setAttribute("aria-checked", isOn(entity, st) ? "true" : "false");
    button.disabled = !st || st.s === "unavailable";
  });
  return button;
}

// A labelled slider that sends on release (change), not on every step; while held it is not moved by updates.
function slider(entity, key, label, { min, max, step = 1, read, send, format }) {
  const input = el("input", { type: "range", min: String(min), max: String(max), step: String(step),
                              "aria-label": label, "data-testid": `${key}-${entity.entity_id}` });
  const shown = el("output", { "aria-hidden": "true" });
  const show = () => { shown.textContent = format(Number(input.value)); };
  input.addEventListener("input", show);
  input.addEventListener("change", () => send(Number(input.value)));
  onSync(entity.entity_id, (st) => {
    const value = st ? read(st) : undefined;
    if (value !== undefined && value !== null && document.activeElement !== input) {
      input.value = String(value);
      show();
    }
  });
  return el("label", { class: "slider" }, el("span", { class: "slider-label" }, label.split(" – ")[0]), input, shown);
}

function button(entity, command, labelKey, args, extra) {
  return el("button", { "data-testid": `cmd-${entity.entity_id}-${command}`, ...(extra || {}),
                        onclick: () => call(entity, command, args || {}) }, t(labelKey));
}

// The controls an entity's capabilities imply: [inline control next to its state, controls below it].
function controlsFor(entity, name) {
  if (!entity.controllable) return [null, []];
  const id = entity.entity_id;
  const below = [];
  const named = (key) => `${t(key)} – ${name}`;
  switch (entity.domain) {
    case "light": case "switch": {
      if (has(entity, "level")) {
        below.push(slider(entity, "brightness", named("ctl.brightness"), {
          min: 1, max: 100, read: (st) => (st.s === "on" && typeof st.a.brightness === "number"
            ? Math.max(1, Math.round(st.a.brightness / 2.55)) : undefined),
          send: (v) => call(entity, "turn_on", { brightness_pct: v }), format: (v) => `${v}%` }));
      }
      if (has(entity, "color_temperature")) {
        const schema = schemaOf(entity, "turn_on", "color_temp_kelvin");
        below.push(slider(entity, "colortemp", named("ctl.color_temp"), {
          min: Math.max(schema.minimum || 2000, 2000), max: Math.min(schema.maximum || 6500, 6500), step: 100,
          read: (st) => st.a.color_temp_kelvin, send: (v) => call(entity, "turn_on", { color_temp_kelvin: v }),
          format: (v) => `${v} K` }));
      }
      if (has(entity, "color")) {
        const input = el("input", { type: "color", "aria-label": named("ctl.color"), "data-testid": `color-${id}` });
        input.addEventListener("change", () => {
          call(entity, "turn_on", { rgb_color: [1, 3, 5].map((i) => parseInt(input.value.slice(i, i + 2), 16)) });
        });
        onSync(id, (st) => {
          const rgb = st && st.a && st.a.rgb_color;
          if (Array.isArray(rgb) && document.activeElement !== input) {
            input.value = "#" + rgb.map((c) => Math.round(c).toString(16).padStart(2, "0")).join("");
          }
        });
        below.push(el("label", { class: "slider" }, el("span", { class: "slider-label" }, t("ctl.color")), input));
      }
      return [switchControl(entity, name), below];
    }
    case "fan":
      if (entity.commands.set_percentage) {
        below.push(slider(entity, "speed", named("ctl.fan_speed"), {
          min: 0, max: 100, step: 10, read: (st) => st.a.percentage,
          send: (v) => call(entity, "set_percentage", { percentage: v }), format: (v) => `${v}%` }));
      }
      return [switchControl(entity, name), below];
    case "climate": {
      const schema = schemaOf(entity, "set_temperature", "temperature");
      const lo = schema.minimum ?? 5;
      const hi = schema.maximum ?? 35;
      const target = el("output", { class: "target", "data-testid": `target-${id}`, "aria-live": "polite" }, "—");
      let value = null;
      const step = (delta) => () => {
        if (value === null) return;
        value = Math.min(hi, Math.max(lo, value + delta));
        target.textContent = `${fmtNumber(value)} °C`;
        call(entity, "set_temperature", { temperature: value });
      };
      const row = el("div", { class: "stepper", role: "group", "aria-label": named("ctl.target") },
                     el("button", { "aria-label": `${t("ctl.cooler")} – ${name}`, "data-testid": `cooler-${id}`,
                                    onclick: step(-0.5) }, "−"),
                     target,
                     el("button", { "aria-label": `${t("ctl.warmer")} – ${name}`, "data-testid": `warmer-${id}`,
                                    onclick: step(0.5) }, "+"));
      onSync(id, (st) => {
        if (st && typeof st.a.temperature === "number") {
          value = st.a.temperature;
          target.textContent = `${fmtNumber(value)} °C`;
        }
      });
      below.push(row);
      const modes = schemaOf(entity, "set_hvac_mode", "hvac_mode").enum;
      if (modes) {
        const select = el("select", { "aria-label": named("ctl.mode"), "data-testid": `mode-${id}` },
                          ...modes.map((m) => el("option", { value: m }, t(`hvac.${m}`))));
        select.addEventListener("change", () => call(entity, "set_hvac_mode", { hvac_mode: select.value }));
        onSync(id, (st) => { if (st && document.activeElement !== select) select.value = st.s; });
        below.push(el("label", { class: "slider" }, el("span", { class: "slider-label" }, t("ctl.mode")), select));
      }
      return [null, below];
    }
    case "cover": {
      const buttons = el("div", { class: "controls" }, button(entity, "open_cover", "ctl.open"),
                         button(entity, "stop_cover", "ctl.stop"), button(entity, "close_cover", "ctl.close"));
      below.push(buttons);
      if (entity.commands.set_cover_position) {
        below.push(slider(entity, "position", named("ctl.position"), {
          min: 0, max: 100, step: 5, read: (st) => st.a.current_position,
          send: (v) => call(entity, "set_cover_position", { position: v }), format: (v) => `${v}%` }));
      }
      return [null, below];
    }
    case "lock": {
      const action = el("button", { "data-testid": `lock-${id}` }, t("ctl.lock"));
      let locked = false;
      onSync(id, (st) => {
        locked = !!st && (st.s === "locked" || st.s === "locking");
        action.textContent = t(locked ? "ctl.unlock" : "ctl.lock");
      });
      action.addEventListener("click", async () => {
        const command = locked ? "unlock" : "lock";
        if (await confirmAction(t(`confirm.${command}`, { name }))) call(entity, command, {});
      });
      return [action, below];
    }
    case "media_player": {
      const play = el("button", { "data-testid": `play-${id}` }, t("ctl.play"));
      let playing = false;
      onSync(id, (st) => {
        playing = !!st && st.s === "playing";
        play.textContent = t(playing ? "ctl.pause" : "ctl.play");
      });
      play.addEventListener("click", () => call(entity, playing ? "media_pause" : "media_play", {}));
      below.push(el("div", { class: "controls" }, play));
      if (entity.commands.volume_set) {
        below.push(slider(entity, "volume", named("ctl.volume"), {
          min: 0, max: 100, step: 5, read: (st) => (typeof st.a.volume_level === "number"
            ? Math.round(st.a.volume_level * 100) : undefined),
          send: (v) => call(entity, "volume_set", { volume_level: v / 100 }), format: (v) => `${v}%` }));
      }
      return [entity.commands.turn_on ? switchControl(entity, name) : null, below];
    }
    case "button":
      return [button(entity, "press", "ctl.press"), below];
    case "scene":
      return [button(entity, "turn_on", "ctl.activate"), below];
    default: break;
  }
  if (has(entity, "operational_state")) {
    const box = el("div", { class: "controls" });
    const redo = (st) => {
      const s = st ? st.s : "";
      const wanted = s === "running" ? [["pause", "ctl.pause"], ["stop", "ctl.stop"]]
        : s === "paused" ? [["resume", "ctl.resume"], ["stop", "ctl.stop"]] : [["start", "ctl.start"]];
      box.replaceChildren(...wanted.filter(([c]) => entity.commands[c]).map(([c, k]) => button(entity, c, k)));
    };
    onSync(id, redo);
    redo(states[id]);
    below.push(box);
  }
  return [null, below];
}

function entityRow(entity, device, primary) {
  const label = rowLabel(entity, device);
  const name = device ? `${deviceName(device)}${primary ? "" : " " + label}` : entityName(entity);
  const state = el("span", { class: "state", "data-state": entity.entity_id, "data-testid": `state-${entity.entity_id}` }, "—");
  const [inline, below] = controlsFor(entity, name);
  const row = el("div", { class: primary ? "row primary" : "row", "data-entity": entity.entity_id },
                 el("div", { class: "what" }, primary && !ownName(entity, device) ? "" : el("span", { class: "label" }, label), state));
  if (inline) row.append(inline);
  onSync(entity.entity_id, () => {
    state.textContent = stateText(entity);
    state.classList.toggle("on", !!states[entity.entity_id] && ["on", "open", "unlocked", "playing"].includes(states[entity.entity_id].s));
  });
  const box = el("div", { class: "entity" }, row);
  if (below.length) box.append(el("div", { class: "below" }, ...below));
  return box;
}

function tile(group) {
  const { device, entities } = group;
  const title = device ? deviceName(device) : entityName(entities[0]);
  const key = device ? device.id : entities[0].entity_id;
  const headingId = `tile-${key}`.replace(/[^A-Za-z0-9_-]/g, "_");
  const head = el("div", { class: "tile-head" }, el("h3", { id: headingId }, title));
  if (device && isAdmin()) {
    head.append(el("button", { class: "icon", "data-testid": `edit-${device.id}`, "aria-label": t("ctl.edit", { name: title }),
                               onclick: () => editDevice(device) }, "✎"));
  }
  const card = el("article", { class: "tile", "data-device": key, "data-testid": `tile-${key}`, "aria-labelledby": headingId }, head);
  entities.forEach((entity, i) => card.append(entityRow(entity, device, i === 0 && !!device)));
  return card;
}

function rank(entity) {
  const i = DOMAIN_ORDER.indexOf(entity.domain);
  const first = has(entity, "operational_state") ? 4.5 : i < 0 ? DOMAIN_ORDER.length : i;
  return first + (entity.controllable ? 0 : 0.1) + (HOUSEKEEPING.has(deviceClass(entity)) ? DOMAIN_ORDER.length : 0);
}

// Rooms in the registry's order, then "Other devices"; in each, one tile per device (entities without a device
// get their own tile). Home scenes go to their own strip; the recognised scene has its own page.
function renderHome() {
  syncers.clear();
  const devices = Object.fromEntries(registry.devices.map((d) => [d.id, d]));
  const groups = new Map();
  const scenes = [];
  for (const entity of registry.entities) {
    if (entity.entity_id === registry.scene_entity) continue;
    if (entity.domain === "scene") { scenes.push(entity); continue; }
    const key = entity.device_id && devices[entity.device_id] ? entity.device_id : `entity:${entity.entity_id}`;
    if (!groups.has(key)) groups.set(key, { device: devices[entity.device_id] || null, entities: [] });
    groups.get(key).entities.push(entity);
  }
  const byArea = new Map(registry.areas.map((a) => [a.id, []]));
  byArea.set("", []);
  for (const group of groups.values()) {
    group.entities.sort((a, b) => rank(a) - rank(b));
    const area = (group.device && group.device.area_id) || group.entities[0].area_id || "";
    if (!byArea.has(area)) byArea.set(area, []);
    byArea.get(area).push(group);
  }
  const names = Object.fromEntries(registry.areas.map((a) => [a.id, a.name]));
  const root = document.getElementById("areas");
  root.replaceChildren();
  for (const [areaId, list] of byArea) {
    if (!list.length) continue;
    list.sort((a, b) => (a.device ? deviceName(a.device) : "").localeCompare(b.device ? deviceName(b.device) : "", i18n.locale()));
    const headingId = `room-${areaId || "none"}`.replace(/[^A-Za-z0-9_-]/g, "_");
    root.append(el("section", { class: "room", "data-area": areaId, "aria-labelledby": headingId },
                   el("h2", { id: headingId }, areaId ? names[areaId] || areaId : t("room.none")),
                   el("div", { class: "tiles" }, ...list.map(tile))));
  }
  document.getElementById("home-empty").hidden = groups.size > 0;
  const strip = document.getElementById("scene-list");
  strip.replaceChildren(...scenes.map((entity) => el("div", { class: "chip", "data-entity": entity.entity_id },
    el("span", { class: "label" }, entityName(entity)),
    (() => {
      const state = el("span", { class: "state muted", "data-testid": `state-${entity.entity_id}` }, "—");
      onSync(entity.entity_id, () => { state.textContent = stateText(entity); });
      return state;
    })(),
    entity.controllable ? el("button", { "data-testid": `cmd-${entity.entity_id}-turn_on`,
                                         "aria-label": `${t("ctl.activate")} – ${entityName(entity)}`,
                                         onclick: () => call(entity, "turn_on", {}) }, t("ctl.activate")) : "")));
  document.getElementById("home-scenes").hidden = scenes.length === 0;
  for (const id of syncers.keys()) updateEntity(id);
}

function updateEntity(entityId) {
  const st = states[entityId];
  for (const fn of syncers.get(entityId) || []) fn(st);
}
