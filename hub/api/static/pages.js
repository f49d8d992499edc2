// The administrator's pages: "Add devices" (the discovery inbox: adopt with a name and a room in one step),
// "Rooms" (Home Assistant's area registry commands), "Connect a phone" (a scoped token and a one-time sign-in
// link shown as a QR code), and the device dialog (rename, move to a room: config/device_registry/update).
// Uses app.js (el, api, socket, toast, registry, isAdmin) and i18n.js (t).
"use strict";

function roomOptions(selected) {
  const options = [el("option", { value: "" }, t("rooms.none_room")),
                   ...registry.areas.map((a) => el("option", { value: a.id }, a.name))];
  for (const option of options) option.selected = option.value === (selected || "");
  return options;
}

// -- Problems ------------------------------------------------------------------------------------------------------
// What the hub says is wrong now and needs a person (GET /api/problems: a scene file that no longer validates, at
// its file:line), on top of every page for admins; refreshed when the hub announces a change (problems_updated).
let problemsSeq = 0;

async function loadProblems() {
  const box = document.getElementById("problems");
  if (!isAdmin()) { box.hidden = true; return; }
  const seq = ++problemsSeq;
  let problems;
  try {
    problems = await api("GET", "/api/problems");
  } catch (err) {
    toast(err.message);
    return;
  }
  if (seq !== problemsSeq) return;  // a newer answer is on its way
  document.getElementById("problem-list").replaceChildren(...problems.map(problemRow));
  box.hidden = problems.length === 0;
}

function problemRow(problem) {
  const where = problem.file ? `${problem.file}${problem.line ? `:${problem.line}` : ""}` : null;
  const row = el("li", { class: `problem ${problem.severity}`, "data-testid": "problem", "data-problem": problem.id },
                 el("strong", {}, t(`problems.${problem.severity}`)), " ", el("span", {}, problem.message));
  if (where) row.append(" ", el("code", { "data-testid": "problem-where" }, where));
  return row;
}

// -- Add devices ---------------------------------------------------------------------------------------------------
let inboxSeq = 0;

// A row whose fields hold something other than what the hub filled in: someone's typing, kept until they act on it.
function typedInto(row) {
  return [...row.querySelectorAll("input")].some((input) => input.value !== input.defaultValue);
}

async function loadInbox() {
  if (!isAdmin()) return;
  const seq = ++inboxSeq;
  let data;
  try {
    data = await api("GET", "/api/discovery");
  } catch (err) {
    toast(err.message);
    return;
  }
  if (seq !== inboxSeq) return;  // a newer answer is on its way
  const list = document.getElementById("inbox-list");
  // Keep a row someone is in, has typed into (a setup code, then a click elsewhere) or whose camera is reading a
  // QR code: those are not rebuilt, and not even moved (taking a focused field out of the page, even to put it
  // back at once, drops the focus, and the next refresh would then rebuild the row and lose what was typed).
  const kept = new Map([...list.children]
    .filter((row) => row.contains(document.activeElement) || row.dataset.scanning || typedInto(row))
    .map((row) => [row.dataset.inbox, row]));
  const waiting = data.entries.filter((e) => (e.state || "pending") === "pending" || e.problem === "wrong_bind_key");
  const ignored = data.entries.filter((e) => e.state === "ignored");
  // An adopted appliance announced at another address that did not prove it is the same one: the hub keeps
  // talking to the adopted address until the household confirms the move (anyone on the LAN can announce).
  const moves = data.entries.filter((e) => e.state === "adopted" && e.move);
  const rows = [...moves.map(moveRow), ...waiting.map(pendingRow), ...ignored.map(ignoredRow)];
  const next = rows.map((row) => kept.get(row.dataset.inbox) || row);
  const staying = new Set(next);
  for (const child of [...list.children]) if (!staying.has(child)) child.remove();
  // Kept rows keep their order among themselves, so only new rows are inserted around them.
  next.forEach((row, i) => { if (list.children[i] !== row) list.insertBefore(row, list.children[i] || null); });
  document.getElementById("inbox-empty").hidden = rows.length > 0;
  const count = document.getElementById("inbox-count");
  count.textContent = String(waiting.length);
  count.hidden = waiting.length === 0;
}

function entryTitle(entry) {
  return entry.name || entry.title || entry.key || entry.id;
}

function entryDetail(entry) {
  return [entry.manufacturer, entry.model, (entry.sources || []).join("+")].filter(Boolean).join(" · ");
}

async function inboxAction(key, action, body) {
  try {
    await api("POST", `/api/discovery/${encodeURIComponent(key)}/${action}`, body);
    return true;
  } catch (err) {
    toast(err.message);
    return false;
  } finally {
    loadInbox();
    scheduleRefresh();
  }
}

function pendingRow(entry) {
  const key = entry.key || entry.id;
  const title = entryTitle(entry);
  const safe = key.replace(/[^A-Za-z0-9_-]/g, "_");
  const name = el("input", { id: `adopt-name-${safe}`, maxlength: "100", "data-testid": `adopt-name-${key}` });
  name.defaultValue = title;  // its value until someone edits it (typedInto tells the two apart)
  const room = el("select", { id: `adopt-room-${safe}`, "data-testid": `adopt-room-${key}` }, ...roomOptions(""));
  const needsKey = entry.problem === "needs_bind_key" || entry.problem === "wrong_bind_key";
  const keyInput = needsKey ? el("input", { type: "password", size: "34", autocomplete: "off",
    "aria-label": t(entry.problem === "wrong_bind_key" ? "inbox.wrong_bind_key" : "inbox.bind_key"),
    placeholder: t(entry.problem === "wrong_bind_key" ? "inbox.wrong_bind_key" : "inbox.bind_key"),
    "data-testid": `bind-key-${key}` }) : null;
  // A Matter appliance is commissioned with the code on its label or box: the QR code's MT:... text or the
  // 11- or 21-digit manual code (dashes and spaces as printed are fine; the hub checks it fits this appliance).
  // The Scan button beside it reads the QR code with the camera (qrscan.js).
  const codeInput = entry.problem === "needs_setup_code" ? el("input", { type: "text", size: "26",
    autocomplete: "off", spellcheck: "false", autocapitalize: "characters", maxlength: "64",
    "aria-label": t("inbox.setup_code"), placeholder: t("inbox.setup_code"), "data-testid": `setup-code-${key}` }) : null;
  const form = el("form", { class: "form adopt" },
                  el("label", { for: name.id }, t("edit.name")), name,
                  el("label", { for: room.id }, t("edit.room")), room,
                  ...(keyInput ? [keyInput] : []),
                  ...(codeInput ? [setupCodeScanner(codeInput, key)] : []),
                  el("div", { class: "controls" },
                     el("button", { type: "submit", class: "primary", "data-testid": `adopt-${key}` }, t("inbox.adopt")),
                     el("button", { type: "button", "data-testid": `ignore-${key}`,
                                    onclick: () => inboxAction(key, "ignore") }, t("inbox.ignore"))));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = { name: name.value.trim() || null, area_id: room.value || null };
    if (keyInput) body.bind_key = keyInput.value;
    if (codeInput) body.setup_code = codeInput.value.trim();
    if (await inboxAction(key, "adopt", body)) toast(t("inbox.adopted", { name: body.name || title }), "info");
  });
  return el("li", { class: "card", "data-inbox": key, "data-state": entry.state || "pending" },
            el("h3", {}, title), el("p", { class: "muted" }, entryDetail(entry)), form);
}

function moveRow(entry) {
  const key = entry.key || entry.id;
  return el("li", { class: "card", "data-inbox": key, "data-state": entry.state },
            el("h3", {}, entryTitle(entry)),
            el("p", { class: "muted" }, t("inbox.move", { from: entry.move.from, to: entry.move.to, proof: entry.move.proof })),
            el("div", { class: "controls" },
               el("button", { onclick: () => inboxAction(key, "confirm_move") }, t("inbox.confirm_move")),
               el("button", { onclick: () => inboxAction(key, "reject_move") }, t("inbox.reject_move"))));
}

function ignoredRow(entry) {
  const key = entry.key || entry.id;
  return el("li", { class: "card ignored", "data-inbox": key, "data-state": "ignored" },
            el("h3", {}, entryTitle(entry)), el("p", { class: "muted" }, `${t("inbox.ignored")} · ${entryDetail(entry)}`),
            el("div", { class: "controls" },
               el("button", { onclick: () => inboxAction(key, "unignore") }, t("inbox.unignore"))));
}

// -- Rooms -----------------------------------------------------------------------------------------------------------
async function registryCall(type, data) {
  try {
    return await socket.request(type, data);
  } catch (err) {
    toast(err.message);
    return null;
  }
}

function renderRooms() {
  const list = document.getElementById("room-list");
  if (list.contains(document.activeElement) && document.activeElement.tagName === "INPUT") return;  // being typed in
  const counts = {};
  for (const device of registry.devices) counts[device.area_id] = (counts[device.area_id] || 0) + 1;
  list.replaceChildren(...registry.areas.map((area) => {
    const input = el("input", { maxlength: "60", "aria-label": t("rooms.name", { name: area.name }),
                                "data-testid": `room-name-${area.id}` });
    input.value = area.name;
    const form = el("form", { class: "controls" }, input,
                    el("button", { type: "submit", "data-testid": `room-save-${area.id}` }, t("rooms.save")),
                    el("button", { type: "button", "data-testid": `room-delete-${area.id}`,
                                   "aria-label": `${t("rooms.delete")} – ${area.name}`,
                                   onclick: async () => {
                                     if (await confirmAction(`${t("rooms.delete")}: ${area.name}?`)) {
                                       await registryCall("config/area_registry/delete", { area_id: area.id });
                                     }
                                   } }, t("rooms.delete")));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      if (input.value.trim()) await registryCall("config/area_registry/update", { area_id: area.id, name: input.value.trim() });
    });
    return el("li", { class: "card", "data-room": area.id }, form,
              el("p", { class: "muted" }, t("rooms.devices", { count: counts[area.id] || 0 })));
  }));
}

// -- the device dialog -----------------------------------------------------------------------------------------------
function editDevice(device) {
  const dialog = document.getElementById("edit-device");
  const name = document.getElementById("edit-name");
  const room = document.getElementById("edit-room");
  name.value = deviceName(device);
  room.replaceChildren(...roomOptions(device.area_id));
  dialog.addEventListener("close", async () => {
    if (dialog.returnValue !== "save") return;
    const wanted = name.value.trim();
    await registryCall("config/device_registry/update", {
      device_id: device.id,
      // Back to the name the device gave itself when the field is emptied or left as that name.
      name_by_user: wanted && wanted !== device.name ? wanted : null,
      area_id: room.value || null,
    });
  }, { once: true });
  dialog.returnValue = "";
  dialog.showModal();
}

// -- Connect a phone or headset ----------------------------------------------------------------------------------
function renderConnectRooms() {
  const box = document.getElementById("connect-room-list");
  const chosen = new Set([...box.querySelectorAll("input:checked")].map((i) => i.value));
  const all = document.getElementById("connect-all");
  box.replaceChildren(...registry.areas.map((area) => {
    const input = el("input", { type: "checkbox", value: area.id, "data-testid": `connect-room-${area.id}` });
    input.checked = chosen.has(area.id);
    input.disabled = all.checked;
    return el("label", {}, input, ` ${area.name}`);
  }));
  const name = document.getElementById("connect-name");
  if (!name.value) name.value = t("connect.default_name");
}

function setUpConnect() {
  const all = document.getElementById("connect-all");
  all.addEventListener("change", () => {
    for (const input of document.querySelectorAll("#connect-room-list input")) input.disabled = all.checked;
  });
  document.getElementById("connect-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = event.target;
    const areas = all.checked ? null : [...document.querySelectorAll("#connect-room-list input:checked")].map((i) => i.value);
    const body = { name: document.getElementById("connect-name").value.trim(),
                   read_only: form.elements.access.value === "view", areas, open: form.elements.opens.value };
    let data;
    try {
      data = await api("POST", "/api/dashboard/connect", body);
    } catch (err) {
      toast(err.message);
      return;
    }
    // The hub drew the QR code (segno, SVG); parsed as SVG, never as HTML, so nothing in it can run.
    const svg = new DOMParser().parseFromString(data.qr_svg, "image/svg+xml").documentElement;
    svg.setAttribute("role", "img");
    svg.setAttribute("aria-label", t("connect.qr"));
    document.getElementById("connect-qr").replaceChildren(document.importNode(svg, true));
    const link = document.getElementById("connect-link");
    link.href = data.url;
    link.textContent = data.url;
    document.getElementById("connect-note").textContent =
      t("connect.once", { minutes: Math.round(data.expires_in / 60), name: data.token.name, id: data.token.id });
    const local = /^(localhost|127\.|\[::1\])/.test(location.host);
    const warn = document.getElementById("connect-local");
    warn.hidden = !local;
    warn.textContent = local ? t("connect.local", { host: location.host }) : "";
    document.getElementById("connect-result").hidden = false;
    loadTokens();
  });
}

// The accesses that still work, so a lost phone can be cut off from the page that connected it.
async function loadTokens() {
  if (!isAdmin()) return;
  let data;
  try {
    data = await api("GET", "/api/dashboard/tokens");
  } catch (err) {
    toast(err.message);
    return;
  }
  const areaName = Object.fromEntries(registry.areas.map((a) => [a.id, a.name]));
  document.getElementById("token-list").replaceChildren(...data.tokens.map((tok) => {
    const what = [tok.admin ? t("tokens.admin") : t(tok.read_only ? "tokens.view" : "tokens.control"),
                  tok.areas ? tok.areas.map((id) => areaName[id] || id).join(", ") : t("tokens.all_rooms"),
                  tok.last_used ? t("tokens.used", { time: fmtTime(tok.last_used) }) : t("tokens.never_used")];
    const row = el("li", { class: "card", "data-token": tok.id }, el("h4", {}, tok.name),
                   el("p", { class: "muted" }, what.join(" · ")));
    if (tok.current) row.append(el("p", { class: "muted" }, t("tokens.this")));
    else {
      row.append(el("button", { "data-testid": `revoke-${tok.id}`, "aria-label": `${t("tokens.revoke")} – ${tok.name}`,
                                onclick: async () => {
                                  if (!await confirmAction(t("tokens.confirm", { name: tok.name }))) return;
                                  try {
                                    await api("POST", `/api/dashboard/tokens/${encodeURIComponent(tok.id)}/revoke`);
                                  } catch (err) {
                                    toast(err.message);
                                  }
                                  loadTokens();
                                } }, t("tokens.revoke")));
    }
    return row;
  }));
}

function renderAdminPages() {
  if (!isAdmin()) return;
  renderRooms();
  renderConnectRooms();
  loadTokens();
}

document.addEventListener("DOMContentLoaded", () => {
  setUpConnect();
  i18n.onChange(loadInbox);  // the inbox's rows are built with the words of the language they were made in
  document.getElementById("room-new").addEventListener("submit", async (event) => {
    event.preventDefault();
    const input = document.getElementById("room-new-name");
    if (input.value.trim() && await registryCall("config/area_registry/create", { name: input.value.trim() })) input.value = "";
  });
});
