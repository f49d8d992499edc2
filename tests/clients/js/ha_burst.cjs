// Home Assistant's JavaScript client (home-assistant-js-websocket) reading a burst of state changes.
// Run by tests/api/test_ha_fanout.py: node ha_burst.cjs '{"url", "token", "entity_id", "count"}'.
// Prints "READY" once subscribed, then one JSON object: the attribute "n" of each change of entity_id as the
// library handed it over, and how many frames (and JSON arrays among them: coalesce_messages) carried them.
// Exits non-zero on any failure, and after 20 s at most.
"use strict";
const { run } = require("./load_client.cjs");

run(20, async (haws, conn, args) => {
  const out = { ns: [], frames: 0, arrays: 0 };
  conn.socket.addEventListener("message", (event) => {
    out.frames += 1;
    if (String(event.data).startsWith("[")) out.arrays += 1;
  });
  await new Promise((resolve, reject) => {
    conn.subscribeEvents((event) => {
      if (event.data.entity_id !== args.entity_id) return;
      out.ns.push(event.data.new_state.attributes.n);
      if (out.ns.length === args.count) resolve();
    }, "state_changed").catch(reject);
    conn.sendMessagePromise({ type: "ping" }).then(() => process.stdout.write("READY\n"));
  });
  return out;
});
