// "What's happening now?": the household labels scenes for training (see docs/recognition.md).
// Uses app.js's el/api/toast helpers and i18n.js's t/fmt*; talks only to /api/recognition/labels.
// Below the list, "Suggestions from a past day": the hub's day review of one local calendar day
// (GET /api/recognition/labels/suggestions), each suggestion accepted as a label with one click.
"use strict";

const labelsUi = {
  scenes: [],
  canEdit: false,     // from the label list's can_edit: read-only tokens get no Accept buttons
  suggested: null,    // the suggestions answer on show, so Accept can refresh the same day
  suggestSeq: 0,      // only the newest suggestions request is shown
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
    if (this.canEdit !== !readOnly) {
      this.canEdit = !readOnly;
      if (this.suggested) this.renderSuggestions(this.suggested);
    }
    document.getElementById("label-controls").hidden = readOnly;
    const open = document.getElementById("label-open");
    open.textContent = data.open
      ? t("labels.now", { scene: data.open.scene.replace(/_/g, " "), time: this.time(data.open.start) })
      : t("labels.nothing");
    document.getElementById("label-stop").disabled = !data.open;
    const list = document.getElementById("label-list");
    list.replaceChildren(...data.labels.map((lb) => {
      const span = lb.end === null ? t("labels.since", { time: this.time(lb.start) }) : `${this.time(lb.start)} – ${this.time(lb.end)}`;
      const row = el("li", { "data-label": lb.id, "data-scene": lb.scene },
                     el("strong", {}, lb.scene.replace(/_/g, " ")), " ", el("span", { class: "muted" },
                     `${span}${lb.created_by ? " · " + lb.created_by : ""}${lb.note ? " · " + lb.note : ""}`), " ");
      if (!readOnly) {
        row.append(el("button", { "data-testid": `label-edit-${lb.id}`, title: t("labels.edit_title"),
                                  onclick: () => row.replaceWith(this.editor(lb, data.scenes)) }, t("labels.edit")), " ");
        row.append(el("button", { "data-testid": `label-delete-${lb.id}`, title: t("labels.delete_title"),
                                  onclick: () => this.act("DELETE", `/api/recognition/labels/${encodeURIComponent(lb.id)}`) },
                      t("labels.delete")));
      }
      return row;
    }));
    document.getElementById("label-empty").hidden = data.labels.length > 0;
  },
  // Inline correction: scene, start, end (empty = still running) and note; sent as one PATCH, which the
  // hub checks like a new label. The form lives until the next refresh or Save/Cancel.
  editor(lb, scenes) {
    const scene = el("select", { "data-testid": "label-edit-scene", "aria-label": t("labels.scene") },
                     ...scenes.map((s) => el("option", { value: s }, s.replace(/_/g, " "))));
    scene.value = lb.scene;
    const start = el("input", { type: "datetime-local", "data-testid": "label-edit-start", "aria-label": t("labels.start_label") });
    start.value = this.local(lb.start);
    const end = el("input", { type: "datetime-local", "data-testid": "label-edit-end", "aria-label": t("labels.end_label") });
    end.value = lb.end === null ? "" : this.local(lb.end);
    const note = el("input", { "data-testid": "label-edit-note", maxlength: "200", placeholder: t("labels.note"),
                               "aria-label": t("labels.note_label") });
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
              el("button", { "data-testid": "label-edit-save", onclick: save }, t("labels.save")), " ",
              el("button", { "data-testid": "label-edit-cancel", onclick: () => this.load() }, t("labels.cancel")));
  },
  local(ts) {  // epoch seconds -> the "YYYY-MM-DDTHH:MM" a datetime-local input takes, in local time
    const d = new Date(ts * 1000);
    const pad = (n) => String(n).padStart(2, "0");
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
  },
  clock(ts) {  // epoch seconds -> the locale's clock time, as everywhere on the dashboard
    return fmtClock(ts);
  },
  // A review reads a day of history and runs the model over it, so it runs only when asked for.
  // Without a range: the day in the date input, local midnight to the next local midnight (23 or 25 hours
  // on a daylight-saving change); with one: that range again (after an Accept).
  async suggest(range) {
    const summary = document.getElementById("suggest-summary");
    if (!range) {
      const value = document.getElementById("suggest-day").value;
      if (!value) {
        toast(t("suggest.choose"));
        return;
      }
      const [year, month, day] = value.split("-").map(Number);
      range = { start: new Date(year, month - 1, day).getTime() / 1000,
                end: new Date(year, month - 1, day + 1).getTime() / 1000 };
      this.suggested = null;
      document.getElementById("suggest-list").replaceChildren();
      document.getElementById("suggest-empty").hidden = true;
      summary.textContent = t("suggest.reviewing");
      summary.hidden = false;
    }
    const seq = ++this.suggestSeq;
    const button = document.getElementById("suggest-go");
    button.disabled = true;
    try {
      const query = new URLSearchParams({ start: String(range.start), end: String(range.end) });
      const data = await api("GET", `/api/recognition/labels/suggestions?${query}`);
      if (seq !== this.suggestSeq) return;
      this.suggested = data;
      this.renderSuggestions(data);
    } catch (err) {
      if (seq !== this.suggestSeq) return;
      if (!this.suggested) summary.hidden = true;
      toast(t("suggest.error", { message: err.message }));
    } finally {
      if (seq === this.suggestSeq) button.disabled = false;
    }
  },
  renderSuggestions(data) {
    const summary = document.getElementById("suggest-summary");
    const n = data.segments.length;
    summary.textContent = t(n === 1 ? "suggest.summary_one" : "suggest.summary",
                            { count: n, events: data.events, model: t(data.lookahead ? "suggest.lookahead" : "suggest.live") });
    summary.hidden = false;
    const open = data.segments.filter((seg) => seg.scene !== "idle" && !seg.labelled);
    const list = document.getElementById("suggest-list");
    list.replaceChildren(...open.map((seg) => {
      const row = el("li", { "data-suggestion": seg.scene, "data-start": seg.start, "data-end": seg.end },
                     el("strong", {}, seg.scene.replace(/_/g, " ")), " ",
                     el("span", { class: "muted" },
                        `${this.clock(seg.start)} – ${this.clock(seg.end)} · ${Math.round(seg.confidence * 100)}%`));
      if (this.canEdit) {
        const accept = el("button", { "data-testid": "suggest-accept", title: t("suggest.accept_title") }, t("suggest.accept"));
        accept.addEventListener("click", () => { accept.disabled = true; this.accept(seg); });
        row.append(" ", accept);
      }
      return row;
    }));
    document.getElementById("suggest-empty").hidden = open.length > 0;
  },
  async accept(seg) {
    try {
      await api("POST", "/api/recognition/labels",
                { scene: seg.scene, start: seg.start, end: seg.end, note: "accepted suggestion" });
    } catch (err) {
      toast(t("labels.error", { message: err.message }));  // e.g. it overlaps a label added since: the hub names it
    }
    await this.load();
    if (this.suggested) await this.suggest({ start: this.suggested.start, end: this.suggested.end });
  },
  time(ts) {
    return fmtTime(ts);
  },
  async act(method, path, body) {
    try {
      await api(method, path, body);
    } catch (err) {
      toast(t("labels.error", { message: err.message }));
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
    const day = document.getElementById("suggest-day");
    const yesterday = new Date();
    yesterday.setDate(yesterday.getDate() - 1);
    day.value = this.local(yesterday.getTime() / 1000).slice(0, 10);
    day.max = this.local(Date.now() / 1000).slice(0, 10);
    document.getElementById("suggest-go").addEventListener("click", () => this.suggest());
    this.load();
    // The periodic refresh would throw away a correction being typed.
    setInterval(() => { if (!document.querySelector("[data-editing]")) this.load(); }, 30000);
  },
};

// After DOMContentLoaded's first listener (app.js) has chosen the language.
document.addEventListener("DOMContentLoaded", () => {
  labelsUi.init();
  i18n.onChange(() => { labelsUi.load(); if (labelsUi.suggested) labelsUi.renderSuggestions(labelsUi.suggested); });
});
