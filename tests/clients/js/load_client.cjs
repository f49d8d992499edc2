// What every script here starts with: Home Assistant's JavaScript client (home-assistant-js-websocket) loaded
// from the folder scripts/setup-js-clients.sh installed it into ($QILU_JS_CLIENTS), with the `ws` package as the
// global WebSocket it expects (Node 20 has none), and a deadline after which the script exits 3.
"use strict";
const path = require("node:path");
const { createRequire } = require("node:module");

function loadClient(seconds) {
  const modules = process.env.QILU_JS_CLIENTS;
  if (!modules) {
    console.error("QILU_JS_CLIENTS must name the folder scripts/setup-js-clients.sh installed into");
    process.exit(2);
  }
  const load = createRequire(path.join(path.resolve(modules), "package.json"));
  global.WebSocket = load("ws");
  const haws = load("home-assistant-js-websocket");
  const deadline = setTimeout(() => {
    console.error("timed out");
    process.exit(3);
  }, seconds * 1000);
  return { haws, deadline };
}

module.exports = { loadClient };
