// Fails when src/api/schema.d.ts no longer matches the API's OpenAPI document, so the UI
// and the API cannot drift apart. Fix by running `npm run api-types`.
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { join, resolve } from "node:path";

const ui = resolve(import.meta.dirname, "..");
const target = resolve(ui, "..", "target");
mkdirSync(target, { recursive: true });
const document = execFileSync("cargo", ["run", "--quiet", "--bin", "crm", "--", "openapi"], { cwd: ui, maxBuffer: 64 << 20 });
writeFileSync(join(target, "openapi.json"), document);
execFileSync(join(ui, "node_modules", ".bin", "openapi-typescript"), [join(target, "openapi.json"), "-o", join(target, "schema.check.d.ts")], { stdio: "ignore" });
const generated = readFileSync(join(target, "schema.check.d.ts"), "utf8");
const committed = readFileSync(join(ui, "src", "api", "schema.d.ts"), "utf8");
if (generated !== committed) {
  console.error("ui/src/api/schema.d.ts is out of date with /openapi.json: run `npm run api-types` in ui/ and commit it.");
  process.exit(1);
}
console.log("api types: up to date with /openapi.json");
