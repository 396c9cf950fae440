// End-to-end tests of the UI in headless Chromium (Debian's, driven by playwright-core)
// against a real `crm serve` on a fresh data directory, or, with E2E_TARGET=aws, against
// the local AWS mode (`crm aws local`: DynamoDB Local, moto, PostgreSQL, the services
// behind its front door, which signs in through the Cognito pool). Each role signs in
// and walks its main flows; screenshots of the main screens go to e2e/screenshots/ (or
// e2e/screenshots-aws/). Prints "e2e: N passed, M failed" and exits non-zero on failure.

import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, mkdirSync, existsSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { createServer as createHttpServer } from "node:http";
import { connect, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { chromium } from "playwright-core";

const root = resolve(import.meta.dirname, "..", "..");
const crm = join(root, "target", "debug", "crm");
const aws = process.env.E2E_TARGET === "aws";
const shots = join(import.meta.dirname, aws ? "screenshots-aws" : "screenshots");
const ROOT_PASSWORD = "root-password-for-e2e";
const PASSWORD = "a-long-enough-password";

function freePort() {
  return new Promise((done) => {
    const server = createServer().listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => done(port));
    });
  });
}

async function until(ready, what, child) {
  for (let i = 0; i < 1800; i++) {
    try {
      if (await ready()) return;
    } catch {}
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill("SIGKILL");
  throw new Error(`${what} did not become ready`);
}

// The local AWS mode on free ports. Its read models go to a database of this run's own on
// the machine's PostgreSQL (dropped at the end), so two runs never share one; DynamoDB
// Local and moto come from .tools/.
const awsDatabase = `ledgerline_e2e_aws_${process.pid}`;
async function startAws() {
  execFileSync("cargo", ["build", "--quiet", "--locked", "--features", "aws", "--bin", "crm"], { cwd: root, stdio: "inherit" });
  const port = await freePort();
  const any = "127.0.0.1:0";
  const child = spawn(crm, ["aws", "local", "--front-addr", `127.0.0.1:${port}`, "--command-addr", any, "--query-addr", any, "--mail-addr", any,
    "--ui-dir", join(root, "ui", "dist"), "--read-database-name", awsDatabase], {
    cwd: root,
    env: { ...process.env, CRM_ROOT_PASSWORD: ROOT_PASSWORD, RUST_LOG: "warn" },
    stdio: ["ignore", process.env.E2E_SERVER_LOG ? "inherit" : "ignore", "inherit"],
  });
  const base = `http://127.0.0.1:${port}`;
  await until(async () => (await fetch(`${base}/.well-known/openid-configuration`)).ok, "crm aws local", child);
  return { base, child, dataDir: null };
}

// The mail service's peers for `crm serve`: an SMTP sink (aiosmtpd from .tools/venv,
// delivering into a maildir the steps read) and a language model speaking the OpenAI
// chat API on loopback, which drafts from the redacted prompt as a model would: it sees
// placeholders, never the client's details, and answers with them.
const mailPeers = { children: [], servers: [], maildir: null, prompts: [] };
async function startMailPeers() {
  const smtpPort = await freePort();
  const dir = mkdtempSync(join(tmpdir(), "ledgerline-e2e-mail-"));
  mailPeers.maildir = join(dir, "maildir");
  mailPeers.children.push(
    spawn(join(root, ".tools", "venv", "bin", "python"), ["-m", "aiosmtpd", "-n", "-l", `127.0.0.1:${smtpPort}`, "-c", "aiosmtpd.handlers.Mailbox", mailPeers.maildir], { stdio: "ignore" }),
  );
  const model = createHttpServer((request, response) => {
    let body = "";
    request.on("data", (chunk) => (body += chunk));
    request.on("end", () => {
      const prompt = JSON.parse(body || "{}").messages?.[1]?.content ?? "";
      mailPeers.prompts.push(prompt);
      const name = prompt.split("[[")[1]?.split("]]")[0];
      const greeting = name ? `Dear [[${name}]]` : "Dear customer";
      response.writeHead(200, { "content-type": "application/json" });
      response.end(JSON.stringify({ choices: [{ message: { role: "assistant", content: `${greeting},\nthank you for opening your accounts with us.\nKind regards` } }] }));
    });
  });
  const modelPort = await freePort();
  await new Promise((done) => model.listen(modelPort, "127.0.0.1", done));
  mailPeers.servers.push(model);
  await until(() => new Promise((done) => { const s = connect(smtpPort, "127.0.0.1", () => { s.end(); done(true); }).on("error", () => done(false)); }), "the SMTP sink", mailPeers.children[0]);
  return {
    CRM_MAIL_PROVIDER: "openai",
    CRM_MAIL_MODEL: "e2e-model",
    CRM_MAIL_OPENAI_URL: `http://127.0.0.1:${modelPort}/v1`,
    CRM_SMTP_URL: `smtp://127.0.0.1:${smtpPort}`,
  };
}

/** The messages the SMTP sink received, as text. */
function mailbox() {
  const fresh = join(mailPeers.maildir, "new");
  return existsSync(fresh) ? readdirSync(fresh).map((file) => readFileSync(join(fresh, file), "utf8")) : [];
}

async function startServer() {
  if (aws) return startAws();
  if (!existsSync(crm)) execFileSync("cargo", ["build", "--quiet", "--bin", "crm"], { cwd: root, stdio: "inherit" });
  const mail = await startMailPeers();
  const port = await freePort();
  // The data directory, and beside it (data-ledger) the digest key and digest file.
  const home = mkdtempSync(join(tmpdir(), "ledgerline-e2e-"));
  const dataDir = join(home, "data");
  const child = spawn(crm, ["serve", "--addr", `127.0.0.1:${port}`, "--data-dir", dataDir, "--ui-dir", join(root, "ui", "dist")], {
    env: { ...process.env, ...mail, CRM_ROOT_PASSWORD: ROOT_PASSWORD, RUST_LOG: "warn" },
    stdio: ["ignore", process.env.E2E_SERVER_LOG ? "inherit" : "ignore", "inherit"],
  });
  const base = `http://127.0.0.1:${port}`;
  await until(async () => (await fetch(`${base}/health/ready`)).ok, "crm serve", child);
  return { base, child, dataDir: home };
}

// `crm aws local` stops DynamoDB Local and moto when told to stop; kill only as a last resort.
async function stopServer(server) {
  if (server.child.exitCode === null && server.child.signalCode === null) {
    const exited = new Promise((done) => server.child.once("exit", done));
    server.child.kill(aws ? "SIGTERM" : "SIGKILL");
    const timer = setTimeout(() => server.child.kill("SIGKILL"), 15000);
    await exited;
    clearTimeout(timer);
  }
  if (server.dataDir) rmSync(server.dataDir, { recursive: true, force: true });
  if (aws) {
    try {
      execFileSync("psql", ["-h", "127.0.0.1", "-U", "postgres", "-q", "-c", `DROP DATABASE IF EXISTS ${awsDatabase} WITH (FORCE)`], { stdio: "ignore" });
    } catch {
      console.log(`note: the database ${awsDatabase} could not be dropped`);
    }
  }
  for (const peer of mailPeers.children) peer.kill("SIGKILL");
  for (const peer of mailPeers.servers) peer.close();
}

async function call(base, method, path, token, body) {
  const response = await fetch(`${base}${path}`, {
    method,
    headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = await response.json().catch(() => null);
  if (!response.ok) throw new Error(`${method} ${path} → ${response.status} ${JSON.stringify(json)}`);
  return json;
}

async function login(base, username, password) {
  return (await call(base, "POST", "/auth/login", null, { username, password })).access_token;
}

async function seed(base) {
  const root = await login(base, "root", ROOT_PASSWORD);
  await call(base, "POST", "/v1/staff", root, { username: "alice", email: "alice@bank.example", full_name: "Alice Admin", role: "admin", password: PASSWORD });
  const admin = await login(base, "alice", PASSWORD);
  for (const [username, role] of [["bob", "agent"], ["dora", "agent"], ["carol", "auditor"]]) {
    await call(base, "POST", "/v1/staff", admin, { username, email: `${username}@bank.example`, full_name: `${username} ${role}`, role, password: PASSWORD });
  }
  const dora = await login(base, "dora", PASSWORD);
  const client = await call(base, "POST", "/v1/clients", dora, {
    first_name: "Secret", last_name: "Doraclient", date_of_birth: "1970-02-02", gender: "other", email: "secret@example.com", phone: "+3531112222",
    address: { line1: "9 Hidden Lane", city: "Cork", state: "", country: "IE", postal_code: "T12" },
  });
  // History enough for the audit log to need more than one page.
  const account = await call(base, "POST", `/v1/clients/${client.id}/accounts`, dora, { account_type: "checking", currency: "EUR" });
  for (let i = 1; i <= 12; i++) {
    await call(base, "POST", `/v1/accounts/${account.id}/deposits`, dora, { amount: { amount_minor: i * 100, currency: "EUR" }, description: `seed ${i}` });
  }
  // The payee's number, as the read side shows it once it has caught up. The local AWS
  // mode's first events can take seconds (queues and workers still starting): a CI run
  // once missed a 5 s wait here, and every test that transfers to Dora failed after it.
  let doraNumber = null;
  for (let tries = 0; !doraNumber && tries < 300; tries++) {
    doraNumber = await call(base, "GET", `/v1/accounts/${account.id}`, dora).then((a) => a.account_number, () => null);
    if (!doraNumber) await new Promise((resolve) => setTimeout(resolve, 100));
  }
  if (!doraNumber) throw new Error("the payee's account did not reach the read side in 30 s");
  return { doraClient: client.id, doraNumber };
}

const results = [];
let browser = null;
async function step(name, run) {
  try {
    await run();
    results.push([name, true]);
    console.log(`ok   ${name}`);
  } catch (error) {
    results.push([name, false]);
    const waited = /waiting for (.*)/.exec(error.message)?.[1];
    const [first, ...rest] = error.message.split("\n");
    console.log(`FAIL ${name}: ${first}${waited ? ` (${waited})` : ""}`);
    if (!waited) for (const line of rest.slice(0, 30)) console.log(`     ${line}`);
    // What the screens showed when it failed.
    const pages = browser?.contexts().flatMap((c) => c.pages()) ?? [];
    await Promise.all(pages.map((p, i) => p.screenshot({ path: join(shots, `FAILED-${results.length}-${i}.png`), fullPage: true }).catch(() => {})));
  }
}

async function signIn(browser, base, username) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
  const page = await context.newPage();
  await page.goto(base);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByLabel("Username").fill(username);
  await page.getByLabel("Password").fill(PASSWORD === "" ? "" : username === "root" ? ROOT_PASSWORD : PASSWORD);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("button", { name: "Sign out" }).waitFor({ timeout: 15000 });
  return { context, page };
}

function expectVisible(locator, timeout = 5000) {
  return locator.first().waitFor({ state: "visible", timeout });
}

// Accessibility: axe-core (npm) over every screen that is photographed; serious and
// critical violations fail the run (the last step lists them).
// Evaluated through the browser's DevTools protocol: the product's CSP (rightly) refuses
// an injected <script>.
const axeSource = readFileSync(join(root, "ui", "node_modules", "axe-core", "axe.min.js"), "utf8");
const violations = [];
async function shot(page, name, options = { fullPage: true }) {
  await page.screenshot({ path: join(shots, `${name}.png`), ...options });
  await page.evaluate(axeSource);
  const found = await page.evaluate(async () => {
    const result = await window.axe.run(document, { resultTypes: ["violations"] });
    return result.violations.map((v) => ({ impact: v.impact, text: `${v.id} (${v.impact}): ${v.nodes.length} × ${v.nodes[0]?.target.join(" ")}` }));
  });
  screensChecked += 1;
  for (const violation of found) {
    if (violation.impact === "serious" || violation.impact === "critical") violations.push(`${name}: ${violation.text}`);
    else lesser.push(`${name}: ${violation.text}`);
  }
}
let screensChecked = 0;
const lesser = [];

async function main() {
  rmSync(shots, { recursive: true, force: true });
  mkdirSync(shots, { recursive: true });
  const server = await startServer();
  const { base } = server;
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  try {
    const { doraClient, doraNumber } = await seed(base);
    const grouped = (compact) => compact.replace(/(.{4})(?=.)/g, "$1 ");

    // Agent.
    const agent = await signIn(browser, base, "bob");
    const page = agent.page;
    await step("agent lands on their (empty) client list", async () => {
      await expectVisible(page.getByRole("heading", { name: "Clients" }));
      await expectVisible(page.getByText("No clients yet"));
      // The placeholder typed in as text overflows exactly when the placeholder is cut.
      const cut = await page.getByRole("searchbox").evaluate((input) => {
        input.value = input.placeholder;
        const overflows = input.scrollWidth > input.clientWidth;
        input.value = "";
        return overflows;
      });
      if (cut) throw new Error("the search placeholder is cut off");
      if (await page.getByText("Doraclient").count()) throw new Error("another agent's client is listed");
      await shot(page, "agent-clients-empty");
    });
    await step("a bad onboarding form shows the API's field errors", async () => {
      await page.getByRole("link", { name: "Onboard a client" }).click();
      await page.getByLabel("First name").fill("Ada");
      await page.getByLabel("Last name").fill("Lovelace");
      await page.getByLabel("Date of birth").fill("1990-12-10");
      await page.getByLabel("Email").fill("not-an-email");
      await page.getByLabel("Phone").fill("+353 1 234 5678");
      await page.getByLabel("Address").fill("1 Main Street");
      await page.getByLabel("City").fill("Dublin");
      await page.getByLabel("Country (ISO code, e.g. IE)").fill("XX");
      await page.getByLabel("Postal code").fill("D01");
      await page.getByRole("button", { name: "Onboard" }).click();
      await expectVisible(page.getByText("is not a valid email address"));
      await expectVisible(page.getByText("is not an ISO 3166-1 alpha-2 country code"));
      await shot(page, "agent-onboard-errors");
    });
    await step("the corrected form onboards the client", async () => {
      await page.getByLabel("Email").fill("ada@example.com");
      await page.getByLabel("Country (ISO code, e.g. IE)").fill("IE");
      await page.getByRole("button", { name: "Onboard" }).click();
      await expectVisible(page.getByRole("heading", { name: "Ada Lovelace" }), 10000);
    });
    await step("the agent opens two accounts", async () => {
      await page.getByLabel("Initial deposit (optional)").fill("100");
      await page.getByRole("button", { name: "Open account" }).click();
      await expectVisible(page.getByRole("row").filter({ hasText: "checking" }).getByRole("cell", { name: "100.00 EUR" }), 10000);
      await page.getByLabel("Type").selectOption("savings");
      await page.getByRole("button", { name: "Open account" }).click();
      await expectVisible(page.getByRole("table", { name: "Accounts" }).getByRole("link", { name: /savings/ }), 10000);
      await shot(page, "agent-client");
    });
    let savingsId = "";
    let checkingUrl = "";
    await step("deposit, a refused withdrawal told as a sentence, and a transfer to a named payee", async () => {
      savingsId = (await page.getByRole("table", { name: "Accounts" }).getByRole("link", { name: /savings/ }).getAttribute("href")).split("/").pop();
      await page.getByRole("table", { name: "Accounts" }).getByRole("link", { name: /checking/ }).click();
      await expectVisible(page.getByTestId("balance"));
      checkingUrl = page.url();
      await page.getByLabel("Amount (EUR)").fill("25.50");
      await page.getByLabel("Description").fill("cash");
      await page.getByRole("button", { name: "Deposit" }).click();
      await expectVisible(page.getByText("125.50 EUR"), 10000);
      await page.getByLabel("Amount (EUR)").fill("1000");
      await page.getByRole("button", { name: "Withdraw" }).click();
      const refusal = page.getByRole("alert");
      await expectVisible(refusal.filter({ hasText: "Insufficient funds: the balance is 125.50 EUR." }));
      if ((await refusal.count()) !== 1) throw new Error(`${await refusal.count()} alerts for one refusal`);
      if (await refusal.filter({ hasText: "(insufficient-funds)" }).count()) throw new Error("the refusal shows its code");
      await page.getByLabel("Amount (EUR)").fill("20");
      await page.getByLabel("To account").selectOption(savingsId);
      await page.getByRole("button", { name: "Transfer…" }).click();
      await expectVisible(page.getByRole("dialog", { name: "Confirm transfer" }).filter({ hasText: "Transfer 20.00 EUR from this checking account to Ada Lovelace's savings account" }));
      await page.getByRole("button", { name: "Confirm transfer" }).click();
      await expectVisible(page.getByText("105.50 EUR"), 10000);
      await expectVisible(page.getByRole("cell", { name: "transfer out" }), 10000);
      await expectVisible(page.getByRole("img", { name: "Balance over time" }));
      await shot(page, "agent-account");
    });
    await step("the history reads at a glance: debits signed, the other account named, times with their zone", async () => {
      const row = page.getByRole("row").filter({ hasText: "transfer out" });
      await expectVisible(row.getByRole("cell", { name: "−20.00 EUR" }));
      await expectVisible(row.getByRole("link", { name: /^to LL\d{2}( \d{4}){3}$/ }));
      const when = await row.getByRole("cell").first().textContent();
      if (!/UTC|GMT|[+-]\d/.test(when ?? "")) throw new Error(`no time zone in ${when}`);
      await expectVisible(page.getByRole("link", { name: "Ada Lovelace" }));
      // The chart has axes with values and dates.
      const ticks = await page.locator("figure.chart text").allTextContents();
      if (!ticks.includes("125.50 EUR") || !ticks.includes("0.00 EUR")) throw new Error(`values ${ticks.join(" | ")}`);
      if (!ticks.some((t) => /2\d{3}.*(UTC|GMT|[+-]\d)/.test(t))) throw new Error(`dates ${ticks.join(" | ")}`);
    });
    await step("a period downloads as CSV and prints as a statement", async () => {
      const [download] = await Promise.all([page.waitForEvent("download"), page.getByRole("button", { name: "Download CSV" }).click()]);
      if (!/^statement-.*\.csv$/.test(download.suggestedFilename())) throw new Error(`file ${download.suggestedFilename()}`);
      const csv = readFileSync(await download.path(), "utf8").trim().split("\r\n");
      if (csv[0] !== "date,kind,counterparty_account,debit,credit,balance_after,currency,description,transaction_id") throw new Error(`header ${csv[0]}`);
      if (csv.length !== 4) throw new Error(`${csv.length - 1} lines`);
      if (!/,opening deposit,,,100\.00,100\.00,EUR,,/.test(csv[1]) || !/,deposit,,,25\.50,125\.50,EUR,cash,/.test(csv[2]) || !/,transfer out,LL\d{14},20\.00,,105\.50,EUR,,/.test(csv[3])) {
        throw new Error(`lines ${csv.slice(1).join(" | ")}`);
      }
      await page.getByRole("link", { name: "Printable statement" }).click();
      await expectVisible(page.getByRole("heading", { name: "Account statement" }));
      for (const [id, text] of [["opening", "0.00 EUR"], ["credits", "125.50 EUR"], ["debits", "20.00 EUR"], ["closing", "105.50 EUR"]]) {
        const shown = await page.getByTestId(id).textContent();
        if (shown !== text) throw new Error(`${id} ${shown}`);
      }
      await page.emulateMedia({ media: "print" });
      if (await page.getByRole("button", { name: "Sign out" }).isVisible()) throw new Error("the menu is printed");
      await shot(page, "agent-statement-print");
      await page.emulateMedia({ media: "screen" });
      await page.getByRole("link", { name: "Back to the account" }).click();
      await expectVisible(page.getByTestId("balance"));
    });
    await step("an agent drafts mail with the assistant, edits it and sends it; the client's mail lists it", async () => {
      await page.getByRole("link", { name: "Ada Lovelace" }).click();
      await expectVisible(page.getByRole("heading", { name: "Ada Lovelace" }));
      await expectVisible(page.getByText("No mail sent yet."));
      await page.getByLabel("What should it say? (for the assistant)").fill("Thank Ada Lovelace for opening her accounts");
      await page.getByRole("button", { name: "Draft with the assistant" }).click();
      if (aws) {
        // The local AWS mode has no model (Bedrock has no local peer): the draft is
        // refused in words, and the agent writes the message themselves.
        await expectVisible(page.getByRole("alert"), 10000);
        await page.getByLabel("Message").fill("Dear Ada,\nthank you for opening your accounts with us.");
      } else {
        await expectVisible(page.getByRole("status").filter({ hasText: "Drafted" }), 10000);
        const drafted = await page.getByLabel("Message").inputValue();
        if (!drafted.startsWith("Dear Ada Lovelace") || drafted.includes("[[")) throw new Error(`draft ${drafted}`);
        // The model saw a placeholder, never the client's name.
        if (!mailPeers.prompts.length || mailPeers.prompts.some((p) => p.includes("Ada") || p.includes("Lovelace"))) {
          throw new Error(`prompts ${mailPeers.prompts.join(" | ")}`);
        }
      }
      await page.getByLabel("Subject").fill("Welcome to Ledgerline");
      await page.getByLabel("Message").fill(`${await page.getByLabel("Message").inputValue()}\nEdited by Bob.`);
      await page.getByRole("button", { name: "Send to ada@example.com" }).click();
      await expectVisible(page.getByRole("status").filter({ hasText: "Sent." }), 10000);
      const row = page.getByRole("table", { name: "Mail sent" }).getByRole("row").filter({ hasText: "Welcome to Ledgerline" });
      await expectVisible(row.getByRole("cell", { name: "ada@example.com" }), 10000);
      await expectVisible(row.getByRole("cell", { name: "bob" }));
      if (!aws) {
        const sent = mailbox();
        if (sent.length !== 1 || !sent[0].includes("Subject: Welcome to Ledgerline") || !sent[0].includes("Edited by Bob.")) {
          throw new Error(`${sent.length} messages in the sink`);
        }
      }
      await shot(page, "agent-client-mail");
      await page.goBack();
      await expectVisible(page.getByTestId("balance"));
    });
    await step("the form is emptied after a success", async () => {
      if ((await page.getByLabel("Amount (EUR)").inputValue()) !== "") throw new Error("the amount stayed");
      if ((await page.getByLabel("Description").inputValue()) !== "") throw new Error("the description stayed");
    });
    await step("a double-click deposits once", async () => {
      await page.getByLabel("Amount (EUR)").fill("5");
      await page.getByLabel("Description").fill("double-click");
      await page.getByRole("button", { name: "Deposit" }).dblclick();
      await expectVisible(page.getByText("110.50 EUR"), 10000);
      await page.waitForTimeout(1500);
      await page.reload();
      await expectVisible(page.getByRole("row").filter({ hasText: "double-click" }));
      const rows = await page.getByRole("row").filter({ hasText: "double-click" }).count();
      if (rows !== 1) throw new Error(`${rows} deposits for one double-click`);
      if ((await page.getByTestId("balance").textContent()) !== "110.50 EUR") throw new Error("the balance moved twice");
    });
    await step("Enter in the amount field moves no money", async () => {
      await page.getByLabel("Amount (EUR)").fill("7");
      await page.getByLabel("Amount (EUR)").press("Enter");
      await page.waitForTimeout(1000);
      if (await page.getByRole("status").filter({ hasText: "Deposited." }).count()) throw new Error("Enter deposited");
      if ((await page.getByTestId("balance").textContent()) !== "110.50 EUR") throw new Error("the balance moved");
      if ((await page.getByLabel("Amount (EUR)").inputValue()) !== "7") throw new Error("Enter lost the amount");
      await page.getByLabel("Amount (EUR)").fill("");
    });
    await step("a deposit done with the keyboard alone", async () => {
      await page.getByLabel("Amount (EUR)").focus();
      await page.keyboard.type("3");
      await page.keyboard.press("Tab");
      await page.keyboard.type("by keyboard");
      await page.keyboard.press("Tab");
      const focused = await page.evaluate(() => document.activeElement?.textContent);
      if (focused !== "Deposit") throw new Error(`Tab reached ${focused}`);
      await page.keyboard.press("Space");
      await expectVisible(page.getByText("113.50 EUR"), 10000);
      await expectVisible(page.getByRole("cell", { name: "by keyboard" }), 10000);
    });
    await step("a mistyped account number is caught at its field before anything is asked", async () => {
      await page.getByLabel("Amount (EUR)").fill("1");
      await page.getByLabel("To account").selectOption("other");
      // The payee's number with its last digit changed: the check digits catch it.
      const last = doraNumber.slice(-1);
      const typo = doraNumber.slice(0, -1) + (last === "9" ? "0" : String(Number(last) + 1));
      await page.getByLabel("Account number", { exact: true }).fill(typo);
      await page.getByRole("button", { name: "Transfer…" }).click();
      await expectVisible(page.locator("#field-other-account-number-error").filter({ hasText: "check digits" }));
      if (await page.getByRole("dialog", { name: "Confirm transfer" }).count()) throw new Error("a confirmation was offered for a mistyped number");
      await page.getByLabel("Account number", { exact: true }).fill("LL00 0000 0000 0000");
      await page.getByRole("button", { name: "Transfer…" }).click();
      await expectVisible(page.locator("#field-other-account-number-error"));
      await shot(page, "agent-transfer-typo");
      await page.getByLabel("Amount (EUR)").fill("");
      await page.getByLabel("To account").selectOption("");
    });
    await step("a transfer by number names the other agent's client before confirming and carries a reference", async () => {
      const own = await page.getByTestId("account-number").textContent();
      if (!/^LL\d{2}( \d{4}){3}$/.test(own ?? "")) throw new Error(`account number shown as ${own}`);
      await expectVisible(page.getByRole("button", { name: "Copy the account number" }));
      await page.getByLabel("Amount (EUR)").fill("5");
      await page.getByLabel("To account").selectOption("other");
      await page.getByLabel("Account number", { exact: true }).fill(grouped(doraNumber).toLowerCase());
      await page.getByLabel("Reference (optional)").fill("Invoice 7");
      await page.getByRole("button", { name: "Transfer…" }).click();
      const dialog = page.getByRole("dialog", { name: "Confirm transfer" });
      await expectVisible(dialog.filter({ hasText: `to Secret Doraclient, account ${grouped(doraNumber)}?` }));
      await expectVisible(dialog.filter({ hasText: "Reference: “Invoice 7”." }));
      await shot(page, "agent-transfer-confirm");
      await dialog.getByRole("button", { name: "Confirm transfer" }).click();
      const row = page.getByRole("row").filter({ hasText: "Invoice 7" });
      await expectVisible(row.getByRole("link", { name: `to ${grouped(doraNumber)}` }), 10000);
      await expectVisible(row.getByRole("cell", { name: "−5.00 EUR" }));
    });
    await step("a transfer to the client's own account done with the keyboard alone", async () => {
      const focused = () => page.evaluate(() => { const el = document.activeElement; return el?.id || el?.getAttribute("aria-label") || el?.textContent; });
      await page.getByLabel("Amount (EUR)").focus();
      await page.keyboard.type("1");
      // Description, Deposit, Withdraw, then the destination.
      for (let i = 0; i < 4; i++) await page.keyboard.press("Tab");
      if ((await focused()) !== "field-target") throw new Error(`Tab reached ${await focused()}`);
      await page.keyboard.press("ArrowDown");
      await page.keyboard.press("Tab");
      await page.keyboard.type("by keys");
      await page.keyboard.press("Tab");
      if ((await focused()) !== "Transfer…") throw new Error(`Tab reached ${await focused()}`);
      await page.keyboard.press("Enter");
      const dialog = page.getByRole("dialog", { name: "Confirm transfer" });
      await expectVisible(dialog.filter({ hasText: "Ada Lovelace's savings account" }));
      // The safe choice has the focus; the confirmation is one Shift+Tab away.
      if ((await focused()) !== "Cancel") throw new Error(`the dialog opened on ${await focused()}`);
      await page.keyboard.press("Shift+Tab");
      await page.keyboard.press("Enter");
      const row = page.getByRole("row").filter({ hasText: "by keys" });
      await expectVisible(row.getByRole("cell", { name: "−1.00 EUR" }), 10000);
      await expectVisible(page.getByTestId("balance").filter({ hasText: "107.50 EUR" }), 10000);
    });
    await step("the client search finds a client by account number", async () => {
      const own = (await page.getByTestId("account-number").textContent()) ?? "";
      await page.getByRole("link", { name: "Clients" }).click();
      await page.getByLabel("Search by name, email or account number").fill(own.replace(/ /g, ""));
      await page.getByRole("button", { name: "Search" }).click();
      await expectVisible(page.getByRole("link", { name: /Ada Lovelace/ }), 10000);
      await page.goto(checkingUrl);
      await expectVisible(page.getByTestId("balance"));
    });
    await step("freezing asks first, with a reason", async () => {
      await page.getByRole("button", { name: "Freeze…" }).click();
      const dialog = page.getByRole("dialog", { name: "Confirm freeze" });
      await expectVisible(dialog);
      await dialog.getByRole("button", { name: "Cancel" }).click();
      if ((await page.locator(".status").first().textContent()) !== "open") throw new Error("cancel froze the account");
      await page.getByRole("button", { name: "Freeze…" }).click();
      await dialog.getByLabel("Reason (recorded with it)").fill("card reported stolen");
      await dialog.getByRole("button", { name: "Freeze the account" }).click();
      await expectVisible(page.getByRole("button", { name: "Unfreeze" }), 10000);
      await page.getByRole("button", { name: "Unfreeze" }).click();
      await expectVisible(page.getByRole("button", { name: "Freeze…" }), 10000);
    });
    await step("a message does not outlive its page", async () => {
      await page.getByLabel("Amount (EUR)").fill("5000");
      await page.getByRole("button", { name: "Withdraw" }).click();
      await expectVisible(page.getByRole("alert"));
      await page.getByRole("link", { name: "Ada Lovelace" }).click();
      await expectVisible(page.getByRole("heading", { name: "Ada Lovelace" }));
      if (await page.getByRole("alert").count()) throw new Error("the last page's message stayed");
      // The client's whole picture: each account, the total, the latest activity across them.
      await expectVisible(page.getByTestId("total-EUR").filter({ hasText: "128.50 EUR" }), 10000);
      const activity = page.getByRole("table", { name: "Recent activity" });
      await expectVisible(activity.getByRole("cell", { name: "by keyboard" }));
      await expectVisible(activity.getByRole("cell", { name: "transfer in" }));
      await shot(page, "agent-client-picture");
      await page.goto(checkingUrl);
    });
    await step("the history filters by date", async () => {
      await page.getByLabel("From", { exact: true }).fill("2000-01-01");
      await page.getByLabel("To", { exact: true }).fill("2000-12-31");
      await expectVisible(page.getByText("No transactions in this period."));
    });
    await step("the session holds a refresh token the provider honours (token refresh)", async () => {
      const key = await page.evaluate(() => Object.keys(sessionStorage).find((k) => k.startsWith("oidc.user:")));
      const stored = JSON.parse(await page.evaluate((k) => sessionStorage.getItem(k), key));
      if (!stored?.refresh_token) throw new Error("no refresh token in the session");
      const form = new URLSearchParams({ grant_type: "refresh_token", refresh_token: stored.refresh_token, client_id: "crm-ui" });
      const renewed = await fetch(`${base}/oauth2/token`, { method: "POST", body: form });
      if (renewed.status !== 200) throw new Error(`refresh answered ${renewed.status}`);
    });
    await step("after a 401, sign-in comes back to the page with the form as it was", async () => {
      await page.goto(checkingUrl);
      await page.getByLabel("Amount (EUR)").fill("12.34");
      await page.getByLabel("Description").fill("typed before the session ended");
      // The server stops honouring the token (as when it expires or is revoked).
      await page.evaluate(() => {
        const key = Object.keys(sessionStorage).find((k) => k.startsWith("oidc.user:"));
        const user = JSON.parse(sessionStorage.getItem(key));
        user.access_token = "expired.token.value";
        sessionStorage.setItem(key, JSON.stringify(user));
      });
      await page.getByRole("button", { name: "Deposit" }).click();
      await expectVisible(page.getByRole("alert").filter({ hasText: "Your session has ended" }), 10000);
      await page.getByRole("button", { name: "Sign in" }).click();
      await page.getByLabel("Username").fill("bob");
      await page.getByLabel("Password").fill(PASSWORD);
      await page.getByRole("button", { name: "Sign in" }).click();
      await expectVisible(page.getByTestId("balance"), 15000);
      if (page.url() !== checkingUrl) throw new Error(`came back to ${page.url()}`);
      if ((await page.getByLabel("Amount (EUR)").inputValue()) !== "12.34") throw new Error("the amount was lost");
      if ((await page.getByLabel("Description").inputValue()) !== "typed before the session ended") throw new Error("the description was lost");
      if ((await page.getByTestId("balance").textContent()) !== "107.50 EUR") throw new Error("the refused deposit was booked");
      await page.getByLabel("Amount (EUR)").fill("");
      await page.getByLabel("Description").fill("");
    });
    await step("a warning comes before a session that cannot be renewed ends", async () => {
      await page.evaluate(() => {
        const key = Object.keys(sessionStorage).find((k) => k.startsWith("oidc.user:"));
        const user = JSON.parse(sessionStorage.getItem(key));
        delete user.refresh_token;
        user.expires_at = Math.floor(Date.now() / 1000) + 45;
        sessionStorage.setItem(key, JSON.stringify(user));
      });
      await page.reload();
      await expectVisible(page.getByRole("alert").filter({ hasText: "Your session ends in about a minute" }), 10000);
      await shot(page, "agent-session-warning", {});
    });
    await step("money and times follow the browser's locale and time zone", async () => {
      const context = await browser.newContext({ viewport: { width: 1280, height: 860 }, locale: "de-DE", timezoneId: "Europe/Berlin" });
      const p = await context.newPage();
      await p.goto(checkingUrl);
      await p.getByRole("button", { name: "Sign in" }).click();
      await p.getByLabel("Username").fill("bob");
      await p.getByLabel("Password").fill(PASSWORD);
      await p.getByRole("button", { name: "Sign in" }).click();
      await expectVisible(p.getByTestId("balance"), 15000);
      const balance = await p.getByTestId("balance").textContent();
      if (balance !== "107,50 EUR") throw new Error(`balance ${balance}`);
      const when = await p.getByRole("row").filter({ hasText: "by keyboard" }).getByRole("cell").first().textContent();
      if (!/MEZ|MESZ|GMT\+1/.test(when ?? "")) throw new Error(`time ${when}`);
      // Typed as a German would: "2,50" is two euros fifty, not 250.
      await p.getByLabel("Amount (EUR)").fill("2,50");
      await p.getByRole("button", { name: "Deposit" }).click();
      await expectVisible(p.getByTestId("balance").filter({ hasText: "110,00 EUR" }), 10000);
      await shot(p, "agent-account-de");
      await context.close();
    });
    await step("an agent cannot see another agent's client", async () => {
      await page.goto(`${base}/clients/${doraClient}`);
      await expectVisible(page.getByRole("alert").filter({ hasText: "assigned to another agent" }));
      if (await page.getByText("Doraclient").count()) throw new Error("the other agent's client was shown");
    });
    await agent.context.close();

    await step("sign-in works from the keyboard alone", async () => {
      const context = await browser.newContext();
      const p = await context.newPage();
      await p.goto(base);
      await p.getByRole("button", { name: "Sign in" }).waitFor();
      await p.keyboard.press("Tab");
      const focused = await p.evaluate(() => document.activeElement?.textContent);
      if (focused !== "Sign in") throw new Error(`Tab focused ${focused}`);
      await p.keyboard.press("Enter");
      await p.getByLabel("Username").waitFor();
      await p.keyboard.type("carol");
      await p.keyboard.press("Tab");
      await p.keyboard.type(PASSWORD);
      await p.keyboard.press("Enter");
      await p.getByRole("button", { name: "Sign out" }).waitFor({ timeout: 15000 });
      await context.close();
    });

    // Admin.
    const admin = await signIn(browser, base, "alice");
    await step("an admin adds, disables and sees staff", async () => {
      const p = admin.page;
      await expectVisible(p.getByRole("heading", { name: "Staff" }));
      await p.getByLabel("Username").fill("eve");
      await p.getByLabel("Full name").fill("Eve Agent");
      await p.getByLabel("Email").fill("eve@bank.example");
      await expectVisible(p.getByText("At least 12 characters, and not a common word, name or pattern."));
      await p.getByLabel("Initial password").fill("short");
      await p.getByRole("button", { name: "Add" }).click();
      await expectVisible(p.locator("#field-password-error"));
      await p.getByLabel("Initial password").fill(PASSWORD);
      await p.getByRole("button", { name: "Add" }).click();
      await expectVisible(p.getByRole("cell", { name: "eve", exact: true }), 10000);
      await p.getByRole("button", { name: "Disable eve" }).click();
      const confirm = p.getByRole("dialog", { name: "Confirm disabling eve" });
      await expectVisible(confirm);
      await confirm.getByRole("button", { name: "Cancel" }).click();
      await expectVisible(p.getByRole("button", { name: "Disable eve" }));
      await p.getByRole("button", { name: "Disable eve" }).click();
      await confirm.getByRole("button", { name: "Disable" }).click();
      await expectVisible(p.getByRole("button", { name: "Enable eve" }), 10000);
      // Email and last sign-in for each; eve never signed in; one page, so no pager.
      await expectVisible(p.getByRole("row").filter({ hasText: "bob@bank.example" }).getByRole("cell", { name: /UTC|GMT/ }));
      await expectVisible(p.getByRole("row").filter({ hasText: "eve@bank.example" }).getByRole("cell", { name: "never" }));
      if (await p.getByRole("navigation", { name: "Pages" }).count()) throw new Error("a pager for a single page");
      await shot(p, "admin-staff");
    });
    await step("an admin corrects a member's details and sets a new password; the old one stops working", async () => {
      const p = admin.page;
      await p.getByRole("button", { name: "Enable eve" }).click();
      await p.getByRole("button", { name: "Edit eve" }).click();
      const panel = p.getByRole("region", { name: "Change eve" });
      await expectVisible(panel);
      await panel.getByLabel("Full name").fill("Eve Q. Agent");
      await panel.getByRole("button", { name: "Save details" }).click();
      await expectVisible(panel.getByRole("status").filter({ hasText: "Details saved." }), 10000);
      await expectVisible(p.getByRole("cell", { name: "Eve Q. Agent" }), 10000);
      await panel.getByLabel("New password").fill("passwordpassword");
      await panel.getByRole("button", { name: "Set new password" }).click();
      await expectVisible(panel.locator("#field-new-password-error"));
      const fresh = "violet harbour compass ninety";
      await panel.getByLabel("New password").fill(fresh);
      await panel.getByRole("button", { name: "Set new password" }).click();
      await expectVisible(panel.getByRole("status").filter({ hasText: "signed out everywhere" }), 10000);
      await shot(p, "admin-staff-edit");
      if (!(await login(base, "eve", fresh))) throw new Error("the new password does not sign in");
      if (await login(base, "eve", PASSWORD).then(() => true, () => false)) throw new Error("the old password still signs in");
      await panel.getByRole("button", { name: "Done" }).click();
    });
    await step("an admin sorts staff by a column and sees how many there are", async () => {
      const p = admin.page;
      await expectVisible(p.getByTestId("list-total").filter({ hasText: "6 members of staff" }));
      const usernames = async () => (await p.locator("tbody tr").evaluateAll((rows) => rows.map((r) => r.cells[0].textContent.trim())));
      await p.getByRole("button", { name: /^Role/ }).click();
      await expectVisible(p.locator('th[aria-sort="ascending"]').filter({ hasText: "Role" }));
      await p.waitForFunction(() => document.querySelector("tbody tr:nth-child(5) td")?.textContent === "carol");
      const byRole = await usernames();
      if (byRole.join(",") !== "alice,bob,dora,eve,carol,root") throw new Error(`by role: ${byRole.join(",")}`);
      await p.getByRole("button", { name: /^Username/ }).click();
      await p.waitForFunction(() => document.querySelector("tbody tr:nth-child(5) td")?.textContent === "eve");
    });
    await step("an admin reads the system log with filters", async () => {
      const p = admin.page;
      await p.getByRole("link", { name: "System log" }).click();
      await expectVisible(p.getByRole("cell", { name: "sign-in" }));
      await p.getByLabel("Category").selectOption("staff");
      await expectVisible(p.getByRole("cell", { name: "Staff disabled: eve" }), 10000);
      await expectVisible(p.getByRole("row").filter({ hasText: "Staff disabled: eve" }).getByRole("cell", { name: "alice (admin)" }));
      await shot(p, "admin-system-log");
    });
    await step("an admin finds an actor by username and a period by dates", async () => {
      const p = admin.page;
      await p.getByLabel("Category").selectOption("");
      await p.getByLabel("Actor (username or id)").fill("bob");
      await expectVisible(p.getByRole("cell", { name: "bob signed in" }), 10000);
      const actors = await p.locator("tbody tr td:last-child").allTextContents();
      if (!actors.length || actors.some((a) => !a.startsWith("bob"))) throw new Error(`actors ${actors.join(", ")}`);
      await p.getByLabel("From", { exact: true }).fill("2000-01-01");
      await p.getByLabel("To", { exact: true }).fill("2000-12-31");
      await expectVisible(p.getByText("Nothing logged with these filters."));
    });
    await admin.context.close();

    // Root admin.
    const rootAdmin = await signIn(browser, base, "root");
    await step("the root admin manages administrators only, under one name", async () => {
      const p = rootAdmin.page;
      await expectVisible(p.getByRole("heading", { name: "Administrators" }));
      await expectVisible(p.getByRole("link", { name: "Administrators" }));
      const options = await p.getByLabel("Role").locator("option").allTextContents();
      if (options.join() !== "admin") throw new Error(`role options ${options}`);
      if (await p.getByRole("button", { name: "Disable bob" }).count()) throw new Error("root may not manage agents");
      await shot(p, "root-admins");
    });
    await rootAdmin.context.close();

    // Auditor.
    const auditor = await signIn(browser, base, "carol");
    await step("an auditor browses a stream, its state at a version, and verifies", async () => {
      const p = auditor.page;
      await expectVisible(p.getByRole("heading", { name: "Audit log" }));
      await expectVisible(p.getByRole("cell", { name: "bob (agent)" }).first());
      // A long list pages, and its page size can be chosen.
      const rows = () => p.locator("table tbody tr").count();
      if ((await rows()) !== 25 || !(await p.getByRole("button", { name: "Next" }).isVisible())) throw new Error(`${await rows()} rows on the first page`);
      await p.getByLabel("Rows per page").selectOption("100");
      await expectVisible(p.getByRole("cell", { name: "AccountOpened" }));
      await p.waitForFunction(() => document.querySelectorAll("table tbody tr").length > 25);
      await p.getByRole("button", { name: /^account / }).first().click();
      await expectVisible(p.getByRole("list", { name: "Events" }).getByText("AccountOpened"));
      // Each event's fields as a table, amounts with their currency; the id in full, copyable.
      await expectVisible(p.getByRole("table", { name: "Event 1 fields" }));
      // The account number as people read it, in the event and in the state.
      await expectVisible(p.getByRole("table", { name: "Event 1 fields" }).getByRole("cell", { name: /^LL\d{2}( \d{4}){3}$/ }));
      await expectVisible(p.getByRole("list", { name: "Events" }).getByText(/\d+\.\d{2} EUR/));
      await expectVisible(p.getByRole("button", { name: /^Copy [0-9a-f-]{36}$/ }));
      const [download] = await Promise.all([p.waitForEvent("download"), p.getByRole("button", { name: "Download evidence" }).click()]);
      const evidence = JSON.parse(readFileSync(await download.path(), "utf8"));
      if (evidence.kind !== "ledgerline-stream-evidence" || evidence.exported_by !== "carol") throw new Error(`evidence ${evidence.kind} by ${evidence.exported_by}`);
      if (!evidence.verification.ok || evidence.verification.events_checked !== evidence.events.length || !evidence.events.length) {
        throw new Error(`verification ${JSON.stringify(evidence.verification)} for ${evidence.events.length} events`);
      }
      if (!evidence.events.every((e) => e.metadata.hash)) throw new Error("an event without its hash");
      await p.getByLabel("Version").fill("1");
      await p.getByRole("button", { name: "Show state" }).click();
      await expectVisible(p.getByRole("table", { name: "State" }));
      if (await p.locator("pre.state").count()) throw new Error("the state is raw JSON");
      await expectVisible(p.getByRole("table", { name: "State" }).getByRole("cell", { name: /^LL\d{2}( \d{4}){3}$/ }));
      await shot(p, "auditor-stream");
      await p.getByRole("link", { name: "Integrity" }).click();
      await p.getByRole("button", { name: "Verify all streams" }).click();
      await expectVisible(p.getByRole("status").filter({ hasText: "Intact" }), 15000);
      await shot(p, "auditor-verify");
    });
    await step("an auditor holds a signed digest, checks its signature and proves an event in the browser", async () => {
      const p = auditor.page;
      await p.getByRole("link", { name: "Integrity" }).click();
      await p.getByRole("button", { name: "Sign a digest now" }).click();
      // In AWS the relay keeps the log and a KMS key (ECDSA P-256) signs: the browser
      // checks either kind of signature.
      const held = p.getByRole("region", { name: "Digest you hold" });
      await expectVisible(held.getByText(/^#0, over \d+ events/));
      await p.getByRole("button", { name: "Take the server's public key" }).click();
      await expectVisible(held.getByRole("status").filter({ hasText: "Signature valid" }));
      await p.getByRole("button", { name: "Check the ledger against its digests" }).click();
      await expectVisible(p.getByRole("status").filter({ hasText: /^Intact: \d+ events, 1 digest checked/ }));
      await shot(p, "auditor-digest");
      await p.getByRole("link", { name: "Audit" }).click();
      await expectVisible(p.getByLabel("Held digest").getByText(/digest you hold: #0/));
      await p.getByRole("button", { name: /^account / }).first().click();
      await p.getByRole("button", { name: "Prove event 2" }).click();
      await expectVisible(p.getByRole("status").filter({ hasText: /^✓ In digest #0: the proof leads to its root \(checked in this browser\)/ }));
      await shot(p, "auditor-proof");
      // A digest whose root was altered: its signature fails, so no proof against it counts.
      await p.evaluate(() => {
        const digest = JSON.parse(localStorage.getItem("ledgerline.heldDigest"));
        digest.root_hash = "00".repeat(32);
        localStorage.setItem("ledgerline.heldDigest", JSON.stringify(digest));
      });
      await p.reload();
      await p.getByRole("button", { name: /^account / }).first().click();
      await p.getByRole("button", { name: "Prove event 2" }).click();
      await expectVisible(p.getByRole("status").filter({ hasText: /^✗ The digest you hold does not verify with the public key you hold/ }));
      await p.getByRole("link", { name: "Integrity" }).click();
      await expectVisible(p.getByRole("status").filter({ hasText: "The signature does not verify" }));
      await shot(p, "auditor-forged-digest");
      await p.getByRole("button", { name: "Keep the latest digest" }).click();
      await expectVisible(p.getByRole("status").filter({ hasText: "Signature valid" }));
    });
    await step("an auditor is offered no agent control", async () => {
      const p = auditor.page;
      await p.getByRole("link", { name: "Clients" }).click();
      await expectVisible(p.getByRole("link", { name: "Ada Lovelace" }), 10000);
      if (await p.getByRole("link", { name: "Onboard a client" }).count()) throw new Error("an auditor is offered onboarding");
      await p.getByRole("link", { name: "Ada Lovelace" }).click();
      await expectVisible(p.getByRole("heading", { name: "Ada Lovelace" }));
      await expectVisible(p.getByRole("table", { name: "Accounts" }).getByRole("link", { name: /checking/ }));
      for (const name of ["Save contact details", "Deactivate client…", "Open account"]) {
        if (await p.getByRole("button", { name }).count()) throw new Error(`an auditor is offered ${name}`);
      }
      await p.getByRole("table", { name: "Accounts" }).getByRole("link", { name: /checking/ }).click();
      await expectVisible(p.getByTestId("balance"));
      await expectVisible(p.getByRole("heading", { name: "Transactions" }));
      for (const name of ["Deposit", "Withdraw", "Transfer…", "Freeze…", "Close account…"]) {
        if (await p.getByRole("button", { name }).count()) throw new Error(`an auditor is offered ${name}`);
      }
      await shot(p, "auditor-account");
      await p.goto(`${base}/clients/new`);
      await expectVisible(p.getByRole("heading", { name: "Clients" }));
      if (await p.getByText("no client with id").count()) throw new Error("/clients/new is read as a client id");
    });
    await step("an auditor sorts clients by name, sees how many, and reads a history oldest first", async () => {
      const p = auditor.page;
      await p.getByRole("link", { name: "Clients" }).click();
      await expectVisible(p.getByTestId("list-total").filter({ hasText: "2 clients" }), 10000);
      const names = async () => (await p.getByRole("table").getByRole("link").allTextContents()).map((n) => n.trim());
      const newest = await names();
      if (newest[0] !== "Ada Lovelace") throw new Error(`newest first: ${newest.join(", ")}`);
      await p.getByRole("button", { name: /^Name \(by last name\)/ }).click();
      await expectVisible(p.locator('th[aria-sort="ascending"]').filter({ hasText: "Name" }));
      await expectVisible(p.getByRole("table").getByRole("link").first().filter({ hasText: "Secret Doraclient" }), 10000);
      await shot(p, "auditor-clients-by-name");
      // A search of everyone's clients shorter than three characters is refused, and the
      // list before it is not left standing as if it were its answer.
      await p.getByLabel("Search by name, email or account number").fill("ad");
      await p.getByRole("button", { name: "Search" }).click();
      await expectVisible(p.getByText("at least 3 characters"), 10000);
      if (await p.getByRole("table").count()) throw new Error("a list stood under the refused search");
      await p.getByLabel("Search by name, email or account number").fill("lovel");
      await p.getByRole("button", { name: "Search" }).click();
      await expectVisible(p.getByTestId("list-total").filter({ hasText: "1 client" }), 10000);
      await p.getByLabel("Search by name, email or account number").fill("");
      await p.getByRole("button", { name: "Search" }).click();
      await expectVisible(p.getByTestId("list-total").filter({ hasText: "2 clients" }), 10000);
      await p.getByRole("link", { name: "Ada Lovelace" }).click();
      await p.getByRole("table", { name: "Accounts" }).getByRole("link", { name: /checking/ }).click();
      await expectVisible(p.getByTestId("list-total").filter({ hasText: /^\d+ transactions$/ }), 10000);
      await p.getByRole("button", { name: /^When/ }).click();
      await expectVisible(p.locator('th[aria-sort="ascending"]').filter({ hasText: "When" }));
      await expectVisible(p.getByRole("row").nth(1).getByRole("cell", { name: "opening deposit" }), 10000);
      await shot(p, "auditor-history-oldest-first");
    });
    await step("an auditor cannot change anything", async () => {
      const token = await login(base, "carol", PASSWORD);
      const body = JSON.stringify({
        first_name: "A", last_name: "B", date_of_birth: "1980-01-01", gender: "other", email: "a@example.com", phone: "+3531234567",
        address: { line1: "1 St", city: "Dublin", state: "", country: "IE", postal_code: "D01" },
      });
      const refused = await fetch(`${base}/v1/clients`, { method: "POST", headers: { authorization: `Bearer ${token}`, "content-type": "application/json" }, body });
      if (refused.status !== 403) throw new Error(`status ${refused.status}`);
    });
    await auditor.context.close();

    // Erasure: dora's client asks to be forgotten; dora deactivates, an admin erases.
    await step("an admin erases a deactivated client; their agent then sees an erased client", async () => {
      const dora = await login(base, "dora", PASSWORD);
      const forgotten = await call(base, "POST", "/v1/clients", dora, {
        first_name: "Forget", last_name: "Meplease", date_of_birth: "1980-03-03", gender: "female", email: "forget@example.com", phone: "+3531113333",
        address: { line1: "3 Quiet Road", city: "Galway", state: "", country: "IE", postal_code: "H91" },
      });
      await call(base, "POST", `/v1/clients/${forgotten.id}/deactivate`, dora, { reason: "client asked to be forgotten" });
      const { context, page: p } = await signIn(browser, base, "alice");
      await p.getByRole("link", { name: "Erasure" }).click();
      await expectVisible(p.getByRole("heading", { name: "Erase a client" }));
      await p.getByLabel("Client id").fill("not-an-id");
      await expectVisible(p.getByText("A client id looks like"));
      await p.getByLabel("Client id").fill(forgotten.id);
      await p.getByLabel("Reason").fill("right to be forgotten, request DPO-42");
      await p.getByRole("button", { name: "Erase…" }).click();
      const confirm = p.getByRole("dialog", { name: "Confirm erasure" });
      await expectVisible(confirm);
      await shot(p, "admin-erase-confirm");
      await confirm.getByRole("button", { name: "Erase for good" }).click();
      await expectVisible(p.getByRole("status").filter({ hasText: "is erased" }), 10000);
      await shot(p, "admin-erased");
      await context.close();
      const agent = await signIn(browser, base, "dora");
      await agent.page.goto(`${base}/clients/${forgotten.id}`);
      await expectVisible(agent.page.getByRole("heading", { name: "Erased client" }), 10000);
      await expectVisible(agent.page.getByTestId("erased"));
      if (await agent.page.getByText("Meplease").count()) throw new Error("the erased client's name is shown");
      await shot(agent.page, "agent-erased-client");
      await agent.page.getByRole("link", { name: "Clients" }).click();
      await expectVisible(agent.page.getByRole("link", { name: "erased client" }), 10000);
      await agent.context.close();
    });

    // A tablet-sized screen.
    const tablet = await browser.newContext({ viewport: { width: 820, height: 1180 } });
    await step("an agent's screens fit a tablet", async () => {
      const p = await tablet.newPage();
      await p.goto(base);
      await expectVisible(p.getByRole("button", { name: "Sign in" }));
      await shot(p, "tablet-sign-in", {});
      await p.getByRole("button", { name: "Sign in" }).click();
      await p.getByLabel("Username").fill("bob");
      await p.getByLabel("Password").fill(PASSWORD);
      await p.getByRole("button", { name: "Sign in" }).click();
      await expectVisible(p.getByRole("link", { name: "Ada Lovelace" }), 15000);
      const overflow = await p.evaluate(() => document.documentElement.scrollWidth > window.innerWidth);
      if (overflow) throw new Error("the client list is wider than the tablet");
      await shot(p, "tablet-agent-clients");
    });
    await tablet.close();
    await step("no serious or critical accessibility violation on any screen (axe-core)", async () => {
      console.log(`     axe: ${screensChecked} screens checked; ${lesser.length} minor or moderate findings${lesser.length ? `:\n       ${lesser.join("\n       ")}` : ""}`);
      if (!screensChecked) throw new Error("no screen was checked");
      if (violations.length) throw new Error(`${violations.length} found:\n${violations.join("\n")}`);
    });
  } finally {
    await browser.close();
    await stopServer(server);
  }
  const failed = results.filter(([, ok]) => !ok).length;
  console.log(`e2e: ${results.length - failed} passed, ${failed} failed`);
  process.exit(failed === 0 ? 0 : 1);
}

main().catch((error) => {
  console.error(error);
  console.log("e2e: 0 passed, 1 failed");
  process.exit(1);
});
