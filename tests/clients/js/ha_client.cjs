// Home Assistant's own JavaScript client (home-assistant-js-websocket) against a running qilu-hub.
// Run by tests/api/test_ha_clients.py: node ha_client.cjs '{"url", "token", "light", "device_id"}'.
// Prints one JSON object: what the client saw. Exits non-zero on any failure, and after 20 s at most.
"use strict";
const { run } = require("./load_client.cjs");

function firstMatch(subscribe, test) {
  return new Promise((resolve) => {
    let unsubscribe = null;
    let done = false;
    unsubscribe = subscribe((value) => {
      const found = test(value);
      if (found !== undefined && !done) {
        done = true;
        if (unsubscribe) unsubscribe();
        resolve(found);
      }
    });
  });
}

run(20, async (haws, conn, args) => {
  const out = { haVersion: conn.haVersion };

  // every entity, as subscribeEntities delivers it
  const entities = await firstMatch((cb) => haws.subscribeEntities(conn, cb),
    (ents) => (Object.keys(ents).length ? ents : undefined));
  out.entities = {};
  for (const [id, s] of Object.entries(entities)) {
    out.entities[id] = { state: s.state, attributes: s.attributes };
  }

  // a service call, seen come back through the same subscription
  const turnedOn = firstMatch((cb) => haws.subscribeEntities(conn, cb),
    (ents) => (ents[args.light] && ents[args.light].state === "on" ? ents[args.light].attributes.brightness : undefined));
  await haws.callService(conn, "light", "turn_on", { brightness: 77 }, { entity_id: args.light });
  out.brightness = await turnedOn;

  // the registries
  out.areas = await conn.sendMessagePromise({ type: "config/area_registry/list" });
  out.devices = await conn.sendMessagePromise({ type: "config/device_registry/list" });
  out.entityRegistry = await conn.sendMessagePromise({ type: "config/entity_registry/list" });

  // a new area, the light's device renamed and moved into it, and the events that say so
  const events = { area_registry_updated: [], device_registry_updated: [] };
  const seen = {};
  for (const type of Object.keys(events)) {
    seen[type] = new Promise((resolve) => {
      conn.subscribeEvents((event) => { events[type].push(event); resolve(); }, type);
    });
  }
  await conn.sendMessagePromise({ type: "ping" }); // the subscriptions are in place before the changes
  out.area = await conn.sendMessagePromise({ type: "config/area_registry/create", name: "Reading Corner" });
  out.updated = await conn.sendMessagePromise({
    type: "config/device_registry/update", device_id: args.device_id,
    name_by_user: "Lamp by the sofa", area_id: out.area.area_id,
  });
  await Promise.all(Object.values(seen));
  out.events = events;
  return out;
});
