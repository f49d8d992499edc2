// "What's happening now?": the household labels scenes for training (see docs/recognition.md).
// Uses app.js's el/api/toast helpers; talks only to /api/recognition/labels.
"use strict";

const labelsUi = {
  scenes: [],
  async load() {
    const section = document.getElementById("labels");
    let data;
    try {
      data = await api("GET", "/api/recognition/labels?limit=20");
    } catch (err) {
      section.hidden = true;  // not enabled on this hub, or this token may not see the household's labels
      return;
    }
    section.hidden = false;
    this.render(data);
  },
  render(data) {
    const select = document.getElementById("label-scene");
    if (select.options.length !== data.scenes.length) {
      select.replaceChildren(...data.scenes.map((s) => el("option", { value: s }, s.replace(/_/g, " "))));
    }
    const readOnly = !data.can_edit;
    document.getElementById("label-controls").hidden = readOnly;
    const open = document.getElementById("label-open");
    open.textContent = data.open
      ? `Now: ${data.open.scene.replace(/_/g, " ")} since ${this.time(data.open.start)}`
      : "Nothing labelled right now.";
    document.getElementById("label-stop").disabled = !data.open;
    const list = document.getElementById("label-list");
    list.replaceChildren(...data.labels.map((lb) => {
      const span = lb.end === null ? `since ${this.time(lb.start)} (running)` : `${this.time(lb.start)} – ${this.time(lb.end)}`;
      const row = el("li", { "data-label": lb.id, "data-scene": lb.scene },
                     el("strong", {}, lb.scene.replace(/_/g, " ")), " ", el("span", { class: "muted" },
                     `${span}${lb.created_by ? " · " + lb.created_by : ""}${lb.note ? " · " + lb.note : ""}`), " ");
      if (!readOnly) {
        row.append(el("button", { "data-testid": `label-edit-${lb.id}`, title: "Correct this label",
                                  onclick: () => row.replaceWith(this.editor(lb, data.scenes)) }, "Edit"), " ");
        row.append(el("button", { "data-testid": `label-delete-${lb.id}`, title: "Delete this label",
                                  onclick: () => this.act("DELETE", `/api/recognition/labels/${encodeURIComponent(lb.id)}`) },
                      "Delete"));
      }
      return row;
    }));
    document.getElementById("label-empty").hidden = data.labels.length > 0;
  },
  // Inline correction: scene, start, end (empty = still running) and note; sent as one PATCH, which the
  // hub checks like a new label. The form lives until the next refresh or Save/Cancel.
  editor(lb, scenes) {
    const scene = el("select", { "data-testid": "label-edit-scene", "aria-label": "Scene" },
                     ...scenes.map((s) => el("option", { value: s }, s.replace(/_/g, " "))));
    scene.value = lb.scene;
    const start = el("input", { type: "datetime-local", "data-testid": "label-edit-start", "aria-label": "Start" });
    start.value = this.local(lb.start);
    const end = el("input", { type: "datetime-local", "data-testid": "label-edit-end", "aria-label": "End (empty: running)" });
    end.value = lb.end === null ? "" : this.local(lb.end);
    const note = el("input", { "data-testid": "label-edit-note", maxlength: "200", placeholder: "note" });
    note.value = lb.note || "";
    const save = () => {
      const body = { scene: scene.value, note: note.value.trim(),
                     start: new Date(start.value).getTime() / 1000,
                     end: end.value ? new Date(end.value).getTime() / 1000 : null };
      // Keep the seconds the form cannot show when the minute was not touched.
      if (start.value === this.local(lb.start)) body.start = lb.start;
      if (lb.end !== null && end.value === this.local(lb.end)) body.end = lb.end;
      this.act("PATCH", `/api/recognition/labels/${encodeURIComponent(lb.id)}`, body);
    };
    return el("li", { "data-label": lb.id, "data-editing": "1" }, scene, " ", start, " – ", end, " ", note, " ",
              el("button", { "data-testid": "label-edit-save", onclick: save }, "Save"), " ",
              el("button", { "data-testid": "label-edit-cancel", onclick: () => this.load() }, "Cancel"));
  },
  local(ts) {  // epoch seconds -> the "YYYY-MM-DDTHH:MM" a datetime-local input takes, in local time
    const d = new Date(ts * 1000);
    const pad = (n) => String(n).padStart(2, "0");
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
  },
  time(ts) {
    const d = new Date(ts * 1000);
    const today = new Date().toDateString() === d.toDateString();
    return today ? d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })
                 : d.toLocaleString([], { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
  },
  async act(method, path, body) {
    try {
      await api(method, path, body);
    } catch (err) {
      toast(`Label: ${err.message}`);
    }
    await this.load();
  },
  init() {
    document.getElementById("label-start").addEventListener("click", () => {
      const note = document.getElementById("label-note");
      const body = { scene: document.getElementById("label-scene").value };
      if (note.value.trim()) body.note = note.value.trim();
      note.value = "";
      this.act("POST", "/api/recognition/labels", body);
    });
    document.getElementById("label-stop").addEventListener("click", () => this.act("POST", "/api/recognition/labels/stop"));
    this.load();
    // The periodic refresh would throw away a correction being typed.
    setInterval(() => { if (!document.querySelector("[data-editing]")) this.load(); }, 30000);
  },
};

labelsUi.init();
