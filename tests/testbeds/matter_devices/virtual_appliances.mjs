// Virtual Matter appliances for qilu-hub's tests and bench: several matter.js nodes in one Node process.
//
//   node virtual_appliances.mjs --storage-path=DIR --nodes=light,plug,contact,thermostat,bridge \
//        [--bridged=light*3,contact] [--port=5540] [--passcode=20202021] [--discriminator=3840] [--salt=TEXT]
//        [--interface=eth0]
//
// Kinds: light (dimmable: On/Off + Level Control, following a command's TransitionTime), plug (On/Off), contact
// (Boolean State), thermostat (heating), temperature (Temperature Measurement, 21.5 °C), humidity (Relative Humidity
// Measurement, 45 %), occupancy (Occupancy Sensing),
// bridge (an Aggregator holding the --bridged devices: KIND or KIND*COUNT, each with Bridged Device Basic
// Information).
// Node i listens on port+i, has passcode+i and discriminator (discriminator + 257*i) mod 4096: 257 moves the
// top four bits too, the only part of the discriminator an 11-digit manual code carries.
// Storage keeps fabrics across restarts of this process (a restart must not need commissioning again).
//
// Talks JSON lines. Out (stdout): {"event":"pairing",...} per node, {"event":"ready"}, and {"event":"set",...}
// for every change taken on stdin. In (stdin): {"node":"contact-2","endpoint":"contact","set":{"booleanState":
// {"stateValue":false}}} is what a person does at the appliance (open the door, turn the knob); endpoint "root"
// is the node itself ({"basicInformation":{"softwareVersion":2}}: what a firmware update changes).
import { Endpoint, ServerNode, VendorId } from "@matter/main";
import { BridgedDeviceBasicInformationServer } from "@matter/main/behaviors/bridged-device-basic-information";
import { OnOffServer } from "@matter/main/behaviors/on-off";
import { ThermostatServer } from "@matter/main/behaviors/thermostat";
import { ContactSensorDevice } from "@matter/main/devices/contact-sensor";
import { DimmableLightDevice } from "@matter/main/devices/dimmable-light";
import { HumiditySensorDevice } from "@matter/main/devices/humidity-sensor";
import { OccupancySensorDevice } from "@matter/main/devices/occupancy-sensor";
import { OnOffPlugInUnitDevice } from "@matter/main/devices/on-off-plug-in-unit";
import { TemperatureSensorDevice } from "@matter/main/devices/temperature-sensor";
import { ThermostatDevice } from "@matter/main/devices/thermostat";
import { AggregatorEndpoint } from "@matter/main/endpoints/aggregator";
import { TlvString, TlvUInt8, TlvWrapper } from "@matter/main/types";
import { createInterface } from "node:readline";

function option(name, fallback) {
    const prefix = `--${name}=`;
    const arg = process.argv.slice(2).find(a => a.startsWith(prefix));
    return arg === undefined ? fallback : arg.slice(prefix.length);
}

// matter.js itself reads --storage-path (its variable storage.path): every node's fabrics and state go there,
// not to ~/.matter, which every run on the machine would share.
if (!option("storage-path")) {
    console.error("--storage-path=DIR is required");
    process.exit(2);
}
const kinds = option("nodes", "light").split(",").filter(Boolean);
const port = Number(option("port", "5540"));
const passcode = Number(option("passcode", "20202021"));
const discriminator = Number(option("discriminator", "3840"));
const salt = option("salt", "0");

const say = message => process.stdout.write(`${JSON.stringify(message)}\n`);

const HeatingThermostat = ThermostatDevice.with(ThermostatServer.with("Heating"));

// Broken variants, for the conformance kit's own tests (KIND:FLAW, e.g. plug:ignores-commands):
//   ignores-commands  On/Off accepts On, Off and Toggle and does nothing
//   incomplete-info   Basic Information without serial number and unique id
//   forgets-state     comes back from every restart in its factory state (OnOff and CurrentLevel are non-volatile:
//                     a light must keep them across a power cut unless its StartUp attributes say otherwise)
//   never-reports     accepts subscriptions (priming report and keep-alives as usual) but reports no change of
//                     its own endpoints' attributes; reads still give the current values
//   ignores-transitions  jumps to a level command's target whatever its TransitionTime (matter.js's own default)
//   wrong-types       sends OnOff as an unsigned integer (0/1) and CurrentLevel as a UTF-8 string in every read
//                     and report
//   wrong-scale       a sensor that forgot the specification's scaling: temperature in whole °C (22 where the good
//                     one sends 2150 for 21.5 °C; its declared range -40..85 too), humidity in whole % (45, range
//                     0..100): valid values within their declared range, so only a reference tells them from 0.22 °C
//                     and 0.45 %
// matter.js keeps its own state valid and reports every change, so never-reports and wrong-types work below its
// API, on the node's protocol view (node.protocol: endpoint number -> cluster id -> what reads and reports are
// made of).
class IgnoringOnOffServer extends OnOffServer {
    on() {}
    off() {}
    toggle() {}
}
const FLAWS = new Set([
    "ignores-commands", "incomplete-info", "forgets-state", "never-reports", "wrong-types", "ignores-transitions",
    "wrong-scale",
]);

// never-reports: subscriptions learn of changes from the node protocol's attrsChanged (endpoint number, cluster
// id, attribute ids, version); dropping those of the appliance's endpoints leaves the subscription alive and
// silent. Endpoint 0 (fabrics, commissioning) still reports.
function neverReport(node) {
    const changes = node.protocol.attrsChanged;
    const emit = changes.emit.bind(changes);
    changes.emit = (endpointNumber, ...rest) => (endpointNumber === 0 ? emit(endpointNumber, ...rest) : undefined);
}

// wrong-types: reads and reports encode each value with the TLV schema of its attribute in the cluster's protocol
// type, which matter.js caches per behaviour class and shares between endpoints; this endpoint's cluster gets its
// own copy of the type with other encoders for these attributes (cluster id -> attribute id -> TLV schema).
const WRONG_TLV = {
    6: { 0: new TlvWrapper(TlvUInt8, on => (on ? 1 : 0), number => number !== 0) }, // OnOff as an unsigned integer
    8: { 0: new TlvWrapper(TlvString, level => String(level), text => Number(text)) }, // CurrentLevel as a string
};
function encodeWrongTypes(node, endpoint) {
    for (const [clusterId, encoders] of Object.entries(WRONG_TLV)) {
        const cluster = node.protocol[endpoint.number]?.[clusterId];
        if (cluster === undefined) continue;
        const list = [...cluster.type.attributes].map(
            attr => (attr.id in encoders ? { ...attr, tlv: encoders[attr.id] } : attr),
        );
        const attributes = { [Symbol.iterator]: () => list[Symbol.iterator]() };
        for (const attr of list) attributes[attr.id] = attr;
        cluster.type = { ...cluster.type, attributes };
    }
}

// wrong-scale: the same readings in whole units (what a firmware that forgot the ×100 sends)
const WRONG_SCALE = {
    temperature: { temperatureMeasurement: { measuredValue: 22, minMeasuredValue: -40, maxMeasuredValue: 85 } },
    humidity: { relativeHumidityMeasurement: { measuredValue: 45, minMeasuredValue: 0, maxMeasuredValue: 100 } },
};

// Each kind: its device type and the initial state a new appliance has.
const KINDS = {
    // managedTransitionTimeHandling: matter.js steps CurrentLevel over a command's TransitionTime (every 100 ms)
    // instead of jumping to the target, as a real dimmer fades
    light: [DimmableLightDevice, {
        onOff: { onOff: false },
        levelControl: { currentLevel: 128, minLevel: 1, maxLevel: 254, managedTransitionTimeHandling: true },
    }],
    plug: [OnOffPlugInUnitDevice, { onOff: { onOff: false } }],
    contact: [ContactSensorDevice, { booleanState: { stateValue: true } }],
    thermostat: [HeatingThermostat, {
        thermostat: { localTemperature: 2100, occupiedHeatingSetpoint: 2000, controlSequenceOfOperation: 2, systemMode: 4 },
    }],
    temperature: [TemperatureSensorDevice, { temperatureMeasurement: { measuredValue: 2150, minMeasuredValue: -4000, maxMeasuredValue: 8500 } }],
    humidity: [HumiditySensorDevice, { relativeHumidityMeasurement: { measuredValue: 4500, minMeasuredValue: 0, maxMeasuredValue: 10000 } }],
    occupancy: [OccupancySensorDevice, { occupancySensing: { occupancy: { occupied: false }, occupancySensorType: 0 } }],
};

function appliance(kind, id, bridgedSerial, flaw) {
    const spec = KINDS[kind];
    if (!spec) throw new Error(`unknown kind ${kind} (one of ${Object.keys(KINDS).join(", ")}, bridge)`);
    const [baseType, kindState] = spec;
    if (flaw === "wrong-scale" && !WRONG_SCALE[kind]) throw new Error(`wrong-scale is for ${Object.keys(WRONG_SCALE)}`);
    const type = flaw === "ignores-commands" ? baseType.with(IgnoringOnOffServer) : baseType;
    const state = flaw === "ignores-transitions"
        ? { ...kindState, levelControl: { ...kindState.levelControl, managedTransitionTimeHandling: false } }
        : flaw === "wrong-scale" ? { ...kindState, ...WRONG_SCALE[kind] } : kindState;
    if (bridgedSerial === undefined) return new Endpoint(type, { id, ...state });
    return new Endpoint(type.with(BridgedDeviceBasicInformationServer), {
        id,
        ...state,
        bridgedDeviceBasicInformation: {
            nodeLabel: id, productName: `virtual ${kind}`, vendorName: "qilu test", serialNumber: bridgedSerial,
            uniqueId: `uid-${bridgedSerial}`, reachable: true,
        },
    });
}

const nodes = new Map(); // node id -> { node, endpoints }
for (const [i, spec] of kinds.entries()) {
    const [kind, flaw] = spec.split(":");
    if (flaw && !FLAWS.has(flaw)) throw new Error(`unknown flaw ${flaw} (one of ${[...FLAWS].join(", ")})`);
    const id = `${kind}-${i}`;
    const node = await ServerNode.create({
        id,
        network: { port: port + i },
        commissioning: { passcode: passcode + i, discriminator: (discriminator + 257 * i) % 4096 },
        productDescription: { name: `virtual ${kind}`, deviceType: kind === "bridge" ? AggregatorEndpoint.deviceType : undefined },
        basicInformation: {
            vendorName: "qilu test", vendorId: VendorId(0xfff1), productName: `virtual ${kind}`, productId: 0x8000 + i,
            nodeLabel: id, hardwareVersion: 1,
            ...(flaw === "incomplete-info" ? {} : { serialNumber: `sn-${salt}-${id}`, uniqueId: `uid-${salt}-${id}` }),
            softwareVersion: 1, softwareVersionString: "1.0.0",
        },
    });
    const endpoints = new Map();
    if (kind === "bridge") {
        const aggregator = new Endpoint(AggregatorEndpoint, { id: "aggregator" });
        await node.add(aggregator);
        for (const item of option("bridged", "light,contact").split(",").filter(Boolean)) {
            const [bridgedKind, count = "1"] = item.split("*");
            for (let k = 1; k <= Number(count); k++) {
                const epId = `${bridgedKind}-${k}`;
                const endpoint = appliance(bridgedKind, epId, `sn-${salt}-${id}-${epId}`);
                await aggregator.add(endpoint);
                endpoints.set(epId, endpoint);
            }
        }
    } else {
        const endpoint = appliance(kind, kind, undefined, flaw);
        await node.add(endpoint);
        endpoints.set(kind, endpoint);
    }
    if (flaw === "never-reports") neverReport(node);
    nodes.set(id, { node, endpoints, kind: spec, port: port + i, flaw, baseKind: kind });
}

for (const [id, { node, kind, endpoints, port: nodePort, flaw, baseKind }] of nodes) {
    await node.start();
    if (flaw === "forgets-state") {
        for (const endpoint of endpoints.values()) await endpoint.set(KINDS[baseKind][1]);
    }
    if (flaw === "wrong-types") {
        for (const endpoint of endpoints.values()) encodeWrongTypes(node, endpoint);
    }
    const { manualPairingCode, qrPairingCode } = node.state.commissioning.pairingCodes;
    say({
        event: "pairing", node: id, kind, port: nodePort, discriminator: node.state.commissioning.discriminator ?? null,
        manual: manualPairingCode, qr: qrPairingCode, commissioned: node.state.commissioning.commissioned,
        endpoints: Object.fromEntries([...endpoints].map(([epId, ep]) => [epId, ep.number])),
    });
}
say({ event: "ready", nodes: nodes.size, pid: process.pid });

const input = createInterface({ input: process.stdin });
input.on("line", async line => {
    if (!line.trim()) return;
    let request;
    try {
        request = JSON.parse(line);
        const entry = nodes.get(request.node);
        // "root": the node itself (Basic Information: a firmware update changes its software version)
        const endpoint = request.endpoint === "root" ? entry?.node : entry?.endpoints.get(request.endpoint);
        if (!endpoint) throw new Error(`no endpoint ${request.node}/${request.endpoint}`);
        await endpoint.set(request.set);
        say({ event: "set", ok: true, node: request.node, endpoint: request.endpoint, t: Date.now() });
    } catch (error) {
        say({ event: "set", ok: false, line, error: String(error?.message ?? error) });
    }
});
// matter.js closes the nodes on SIGTERM itself; an open stdin pipe would keep Node running afterwards.
const stop = () => {
    input.close();
    process.stdin.destroy();
    setTimeout(() => process.exit(0), 5000).unref();
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
