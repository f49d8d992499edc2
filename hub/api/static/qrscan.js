// Reading a Matter appliance's QR code with the phone's camera, for the setup-code field of "Add devices".
// The rear camera (facingMode "environment") is read a few times a second until a QR code holding a Matter
// payload (MT:…) shows up; that text fills the field and the camera stops. Other QR codes (a maker's web
// address on the box, a Wi-Fi code) are named as not Matter and the scan goes on. Decoding is the browser's
// BarcodeDetector where it reads QR codes, else jsQR (vendored in vendor/jsqr, loaded on the first scan only).
// Browsers lend the camera to secure contexts alone: the hub's HTTPS address (docs/tls.md) or localhost; on
// plain http from another machine the button says so instead of failing.
// Uses app.js (el) and i18n.js (t); pages.js puts one scanner beside each setup-code field.
"use strict";

// A Matter QR payload: "MT:" and base-38 text (digits, A-Z, '-' and '.'); Matter core spec 5.1.3.
const MATTER_PAYLOAD = /^MT:[0-9A-Z.-]+$/;
const SCAN_EVERY_MS = 150;          // a few looks a second: quick to notice a code, easy on a phone's battery
const SCAN_GIVE_UP_MS = 120000;     // a forgotten scan does not keep the camera on
const DECODE_WIDTH = 640;           // frames are scaled down to this before jsQR reads them
const JSQR_URL = "/static/vendor/jsqr/jsQR.js";

let activeScan = null;              // one camera at a time
let jsQRLoading = null;

function cameraUnavailable() {
  if (!window.isSecureContext) return "scan.needs_https";
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) return "scan.no_camera_api";
  return null;
}

function loadJsQR() {
  if (typeof window.jsQR === "function") return Promise.resolve(window.jsQR);
  if (!jsQRLoading) {
    jsQRLoading = new Promise((resolve, reject) => {
      const failed = () => { jsQRLoading = null; reject(new Error(t("scan.decoder_failed"))); };
      const script = el("script", { src: JSQR_URL,
        onload: () => (typeof window.jsQR === "function" ? resolve(window.jsQR) : failed()), onerror: failed });
      document.head.append(script);
    });
  }
  return jsQRLoading;
}

// A function from the playing video to the texts of the QR codes in its current frame.
async function makeDecoder() {
  if ("BarcodeDetector" in window) {
    try {
      const formats = await window.BarcodeDetector.getSupportedFormats();
      if (formats.includes("qr_code")) {
        const detector = new window.BarcodeDetector({ formats: ["qr_code"] });
        return async (video) => (await detector.detect(video)).map((code) => code.rawValue);
      }
    } catch (err) { /* a detector that cannot say what it reads: use jsQR */ }
  }
  const jsQR = await loadJsQR();
  const canvas = document.createElement("canvas");
  const context = canvas.getContext("2d", { willReadFrequently: true });
  return async (video) => {
    const scale = Math.min(1, DECODE_WIDTH / Math.max(video.videoWidth, video.videoHeight));
    canvas.width = Math.max(1, Math.round(video.videoWidth * scale));
    canvas.height = Math.max(1, Math.round(video.videoHeight * scale));
    context.drawImage(video, 0, 0, canvas.width, canvas.height);
    const frame = context.getImageData(0, 0, canvas.width, canvas.height);
    // Labels print dark modules on a light ground: looking for inverted codes too would halve the rate.
    const code = jsQR(frame.data, frame.width, frame.height, { inversionAttempts: "dontInvert" });
    return code && code.data ? [code.data] : [];
  };
}

function stopActiveScan() {
  if (activeScan) activeScan.stop("");
}

// The scan button, the camera view with its Cancel button, and a status line read out by screen readers.
// `input` is the setup-code field it fills; `key` names the inbox entry (for test ids and element ids).
function setupCodeScanner(input, key) {
  const safe = key.replace(/[^A-Za-z0-9_-]/g, "_");
  const status = el("p", { class: "muted scan-status", role: "status", "aria-live": "polite",
                           "data-testid": `scan-status-${key}` });
  const video = el("video", { playsinline: "", muted: "", "aria-label": t("scan.view"),
                              "data-testid": `scan-video-${key}` });
  video.muted = true;  // autoplay is allowed for muted video only (the attribute alone is not enough everywhere)
  const cancel = el("button", { type: "button", "data-testid": `scan-cancel-${key}` }, t("scan.cancel"));
  const panel = el("div", { id: `scan-panel-${safe}`, class: "scan-panel", hidden: "" }, video, cancel);
  const unavailable = cameraUnavailable();
  const button = el("button", { type: "button", "aria-controls": panel.id, "data-testid": `scan-${key}`,
                                ...(unavailable ? { title: t(unavailable) } : {}) }, t("scan.button"));
  const box = el("div", { class: "setup-code" }, el("div", { class: "controls" }, input, button), panel, status);

  let stream = null;
  let timer = null;
  let running = false;
  let lastRefused = "";

  function say(text) {
    if (status.textContent !== text) status.textContent = text;  // the same text is not announced again
  }

  function stop(message) {
    running = false;
    clearTimeout(timer);
    timer = null;
    if (stream) for (const track of stream.getTracks()) track.stop();
    stream = null;
    video.srcObject = null;
    panel.hidden = true;
    button.hidden = false;
    delete box.closest("[data-inbox]")?.dataset.scanning;
    if (activeScan && activeScan.box === box) activeScan = null;
    if (message !== undefined) say(message);
  }

  async function start() {
    if (unavailable) {
      say(t(unavailable));
      return;
    }
    stopActiveScan();
    activeScan = { box, stop };
    running = true;
    lastRefused = "";
    // The inbox rebuilds its rows as appliances come and go; it keeps a row that is scanning (pages.js).
    const row = box.closest("[data-inbox]");
    if (row) row.dataset.scanning = "1";
    button.hidden = true;
    panel.hidden = false;
    cancel.focus();
    say(t("scan.starting"));
    let opened;
    try {
      opened = await navigator.mediaDevices.getUserMedia({ audio: false, video: { facingMode: { ideal: "environment" } } });
    } catch (err) {
      const reason = err && err.name === "NotAllowedError" ? "scan.denied"
        : err && (err.name === "NotFoundError" || err.name === "OverconstrainedError") ? "scan.no_camera" : "scan.failed";
      if (running) stop(t(reason, { message: err && err.message ? err.message : String(err) }));
      return;
    }
    if (!running) {  // cancelled while the browser asked for permission
      for (const track of opened.getTracks()) track.stop();
      return;
    }
    stream = opened;
    video.srcObject = stream;
    let decode;
    try {
      await video.play();
      decode = await makeDecoder();
    } catch (err) {
      if (running) stop(t("scan.failed", { message: err && err.message ? err.message : String(err) }));
      return;
    }
    if (!running) return;
    say(t("scan.looking"));
    const giveUpAt = performance.now() + SCAN_GIVE_UP_MS;
    const look = async () => {
      if (!running) return;
      if (!box.isConnected) {  // the row went (adopted elsewhere, page rebuilt): no camera without a view
        stop();
        return;
      }
      if (performance.now() > giveUpAt) {
        stop(t("scan.gave_up"));
        return;
      }
      let texts = [];
      if (video.readyState >= video.HAVE_CURRENT_DATA && video.videoWidth > 0) {
        try {
          texts = await decode(video);
        } catch (err) { /* one unreadable frame: try the next */ }
      }
      if (!running) return;
      const payload = texts.map((text) => String(text).trim()).find((text) => MATTER_PAYLOAD.test(text));
      if (payload) {
        input.value = payload;
        input.dispatchEvent(new Event("input", { bubbles: true }));
        stop(t("scan.done"));
        input.focus();
        return;
      }
      if (texts.length && texts[0] !== lastRefused) {
        lastRefused = texts[0];
        say(t("scan.not_matter"));
      }
      timer = setTimeout(look, SCAN_EVERY_MS);
    };
    look();
  }

  button.addEventListener("click", start);
  cancel.addEventListener("click", () => {
    stop(t("scan.cancelled"));
    button.focus();
  });
  return box;
}

// Leaving the page or the app turns the camera off.
window.addEventListener("hashchange", stopActiveScan);
window.addEventListener("pagehide", stopActiveScan);
document.addEventListener("visibilitychange", () => { if (document.hidden) stopActiveScan(); });
