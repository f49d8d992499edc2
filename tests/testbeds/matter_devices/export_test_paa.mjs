// Write the public Matter *test* PAA root certificates (the roots matter.js signs its virtual devices'
// attestation chain with) into a directory as PEM and DER, for matter-server's --paa-root-cert-dir.
//   node export_test_paa.mjs DIR
// matter-server downloads PAA roots at start; offline it has none and commissioning stops at attestation.
// DIR/.version must exist: without it matter-server takes DIR for an old-format store and empties it.
import { TestCert_PAA_FFF1_Cert, TestCert_PAA_NoVID_Cert } from "@matter/main/protocol";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const [dir] = process.argv.slice(2);
if (!dir) {
    console.error("usage: node export_test_paa.mjs DIR");
    process.exit(2);
}
mkdirSync(dir, { recursive: true });
const roots = { "test-paa-novid": TestCert_PAA_NoVID_Cert, "test-paa-fff1": TestCert_PAA_FFF1_Cert };
for (const [name, cert] of Object.entries(roots)) {
    const der = Buffer.from(cert);
    const lines = der.toString("base64").match(/.{1,64}/g).join("\n");
    writeFileSync(join(dir, `${name}.der`), der);
    writeFileSync(join(dir, `${name}.pem`), `-----BEGIN CERTIFICATE-----\n${lines}\n-----END CERTIFICATE-----\n`);
}
if (!existsSync(join(dir, ".version"))) writeFileSync(join(dir, ".version"), "1");
console.log(`${Object.keys(roots).length} test PAA roots in ${dir}`);
