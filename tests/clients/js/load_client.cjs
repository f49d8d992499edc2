// What every script here shares: Home Assistant's JavaScript client (home-assistant-js-websocket) loaded from the
// folder scripts/setup-js-clients.sh installed it into ($QILU_JS_CLIENTS), with the `ws` package as the global
// WebSocket it expects (Node 20 has none), connected with the token in the script's JSON argument; and the way a
// script ends: its result printed as one JSON line and exit 0, any failure exit 1, past the deadline exit 3.
"use strict";
const path = require("node:path");
const { createRequire } = require("node:module");

// run(seconds, main): main(haws, conn, args) returns the object to print.
function run(seconds, main) {
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
  const args = JSON.parse(process.argv[2]);
  (async () => {
    const auth = haws.createLongLivedTokenAuth(args.url, args.token);
    const conn = await haws.createConnection({ auth });
    const out = await main(haws, conn, args);
    conn.close();
    clearTimeout(deadline);
    // exit at once: the library keeps a collection's subscription for 5 s after its last listener leaves (in
    // case one comes back), and nothing is left to wait for
    process.stdout.write(JSON.stringify(out) + "\n", () => process.exit(0));
  })().catch((err) => {
    console.error(err && err.stack ? err.stack : JSON.stringify(err));
    process.exit(1);
  });
}

module.exports = { run };
