#!/usr/bin/env node
// End-to-end test of the web page in a real Chromium (Debian's, via
// playwright-core: no browser download). Exit code 0 = pass, 1 = fail.
//
//   BASE_URL      where the page and API are served (default http://127.0.0.1:8080)
//   CHROMIUM_PATH the browser (default /usr/bin/chromium)
//   HEADED=1      show the browser window; SLOWMO=ms slows every action
//
// Flow: sign in as alice, note the EUR balance, send 1.00 EUR to bob (with a
// double click: exactly one transfer must result), watch it become committed
// and the balance drop WITHOUT reloading, check client and server validation,
// send one that is rejected (insufficient funds) and read the reason in words,
// save a screenshot of the dashboard, view this month's statement and
// download it as CSV, place a hold and capture part of it (available vs
// ledger balance), sign out; as `rita` (reverser) reverse part of alice's
// transfer and follow the links between it and its reversal. Then as `ops`: alice's transfer
// in the live flow (with its total) and its timeline; as `batch`: a file with
// a bad line is not sendable, and (if the server has the batch API) a 3-line
// file is sent, followed to 3 committed, and re-sending it makes no new batch.

import { mkdirSync, readFileSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const BASE_URL = (process.env.BASE_URL ?? "http://127.0.0.1:8080").replace(/\/$/, "");
const CHROMIUM_PATH = process.env.CHROMIUM_PATH || "/usr/bin/chromium";
const HERE = dirname(fileURLToPath(import.meta.url));
const SHOTS = join(HERE, "screenshots");

const ALICE = { username: "alice", password: "alice-dev-password" };
const ALICE_EUR = "a11ce000-0000-4000-8000-000000000001";
const BOB_EUR = "b0b00000-0000-4000-8000-000000000001";
const BOB_USD = "b0b00000-0000-4000-8000-000000000002";
const BATCH_EUR = "ba7c0000-0000-4000-8000-000000000001";
const LIVE_TIMEOUT = Number(process.env.E2E_TIMEOUT_MS ?? 30_000);

let step = "start";
const log = (msg) => console.log(`[e2e] ${msg}`);
function begin(name) {
  step = name;
  log(name);
}
function check(cond, msg) {
  if (!cond) throw new Error(msg);
}

/** Decimal string → BigInt of minor units (no floats anywhere). */
function toMinor(s, digits = 2) {
  const neg = s.startsWith("-");
  const [i, f = ""] = s.replace(/^[-+]/, "").split(".");
  const v = BigInt(i + f.padEnd(digits, "0").slice(0, digits));
  return neg ? -v : v;
}
function fromMinor(v, digits = 2) {
  const neg = v < 0n;
  const s = (neg ? -v : v).toString().padStart(digits + 1, "0");
  return `${neg ? "-" : ""}${s.slice(0, -digits)}.${s.slice(-digits)}`;
}

async function signIn(page, user) {
  await page.getByRole("heading", { name: "Sign in" }).waitFor();
  await page.getByLabel("Username").fill(user);
  await page.getByLabel("Password").fill(`${user}-dev-password`);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByTestId("current-user").filter({ hasText: user }).waitFor();
}

async function signOut(page) {
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.getByRole("heading", { name: "Sign in" }).waitFor();
}

async function main() {
  mkdirSync(SHOTS, { recursive: true });
  rmSync(join(SHOTS, "failure.png"), { force: true });
  const browser = await chromium.launch({
    executablePath: CHROMIUM_PATH,
    headless: !process.env.HEADED,
    slowMo: Number(process.env.SLOWMO ?? 0),
    args: ["--no-sandbox", "--disable-dev-shm-usage"],
  });
  const problems = [];
  try {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, locale: "en-US" });
    const page = await context.newPage();
    page.setDefaultTimeout(15_000);
    page.on("console", (m) => {
      const text = m.text();
      if (/Content Security Policy|Refused to (apply|load|execute|connect)/i.test(text)) problems.push(`CSP: ${text}`);
    });
    page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
    let navigations = 0; // main-frame navigations (a reload counts)
    page.on("framenavigated", (f) => {
      if (f === page.mainFrame()) navigations += 1;
    });

    begin(`open ${BASE_URL}`);
    const res = await page.goto(`${BASE_URL}/`, { waitUntil: "domcontentloaded" });
    check(res && res.ok(), `page did not load: HTTP ${res?.status()}`);
    const csp = res.headers()["content-security-policy"];
    log(csp ? `served with CSP: ${csp}` : "note: no CSP header on the page");

    begin("sign in as alice");
    await page.getByRole("heading", { name: "Sign in" }).waitFor();
    await page.getByLabel("Username").fill(ALICE.username);
    await page.getByLabel("Password").fill("wrong-password");
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("alert").filter({ hasText: "Wrong username or password" }).waitFor();
    await page.getByLabel("Password").fill(ALICE.password);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByTestId("current-user").filter({ hasText: "alice" }).waitFor();

    begin("note alice's EUR balance");
    const eurCard = page.locator(`[data-testid="account-card"][data-account-id="${ALICE_EUR}"]`);
    const eurBalance = eurCard.getByTestId("account-balance");
    await eurBalance.waitFor();
    const before = await eurBalance.getAttribute("data-value");
    const versionBefore = Number(await eurBalance.getAttribute("data-version"));
    check(before && /^-?\d+(\.\d+)?$/.test(before), `unreadable balance ${before}`);
    log(`balance before: ${before} EUR (shown as "${await eurBalance.textContent()}")`);

    begin("wait for the live connection");
    await page.locator('[data-testid="connection-status"][data-state="connected"]').waitFor({ timeout: LIVE_TIMEOUT });
    const navBefore = navigations;

    const form = page.getByRole("region", { name: "New transfer" });
    const send = form.getByRole("button", { name: /Send money|Sending/ });

    begin("client-side validation (no request sent)");
    await form.getByLabel("From account").selectOption(ALICE_EUR);
    await form.getByLabel("To account (account id)").fill("bob");
    await form.getByLabel("Amount").fill("1.234");
    await send.click();
    await form.getByTestId("error-to_account").waitFor();
    await form.getByTestId("error-amount").filter({ hasText: "2 decimal" }).waitFor();
    check(
      (await form.getByLabel("To account (account id)").getAttribute("aria-invalid")) === "true",
      "invalid field is not marked aria-invalid",
    );

    begin("server-side validation shown by field (EUR to bob's USD account)");
    await form.getByLabel("To account (account id)").fill(BOB_USD);
    await form.getByLabel("Amount").fill("1.00");
    await send.click();
    await form.getByTestId("error-to_account").filter({ hasText: /USD|currenc/i }).waitFor();
    log(`server said: ${await form.getByTestId("error-to_account").textContent()}`);

    begin("send 1.00 EUR to bob (double click: must make ONE transfer)");
    const reference = `e2e ${new Date().toISOString()}`;
    await form.getByLabel("To account (account id)").fill(BOB_EUR);
    await form.getByLabel("Amount").fill("1.00");
    await form.getByLabel("Currency").selectOption("EUR");
    await form.getByLabel("Reference (optional)").fill(reference);
    await send.dblclick();
    const last = page.getByTestId("last-transfer");
    await last.waitFor();
    const transferId = await last.getAttribute("data-transfer-id");
    check(transferId, "no transfer id after sending");
    log(`transfer ${transferId} accepted`);

    begin("see it committed live");
    const row = page.locator(`[data-testid="transfer-row"][data-transfer-id="${transferId}"]`);
    await row.waitFor();
    await page
      .locator(`[data-testid="transfer-row"][data-transfer-id="${transferId}"][data-status="committed"]`)
      .waitFor({ timeout: LIVE_TIMEOUT });
    check((await row.getByTestId("status-chip").textContent())?.trim() === "Committed", "chip does not say Committed");
    await page.locator('[data-testid="last-transfer"][data-status="committed"]').waitFor();
    const sameRef = await page.locator('[data-testid="transfer-row"]').filter({ hasText: reference }).count();
    check(sameRef === 1, `double click made ${sameRef} transfers with reference "${reference}"`);

    begin("see the balance change without reloading");
    const expected = fromMinor(toMinor(before) - 100n);
    await page.waitForFunction(
      ([sel, v]) => document.querySelector(sel)?.getAttribute("data-version") !== String(v),
      [`[data-account-id="${ALICE_EUR}"] [data-testid="account-balance"]`, versionBefore],
      { timeout: LIVE_TIMEOUT },
    );
    const after = await eurBalance.getAttribute("data-value");
    const versionAfter = Number(await eurBalance.getAttribute("data-version"));
    if (toMinor(after) !== toMinor(expected)) {
      // Someone else moved money on this shared stack at the same time.
      check(versionAfter > versionBefore + 1, `balance ${after}, expected ${expected}`);
      log(`note: balance ${after} (other activity on this stack; expected ${expected} alone)`);
    }
    check(navigations === navBefore, "the page navigated/reloaded");
    log(`balance after: ${after} EUR (shown as "${await eurBalance.textContent()}")`);

    begin("send one that is rejected (more than the balance) and read the reason");
    await form.getByLabel("To account (account id)").fill(BOB_EUR);
    await form.getByLabel("Amount").fill("999999999.00");
    await form.getByLabel("Reference (optional)").fill("e2e too much");
    await send.click();
    await page.locator('[data-testid="last-transfer"][data-status="rejected"]').waitFor({ timeout: LIVE_TIMEOUT });
    const rejectedId = await last.getAttribute("data-transfer-id");
    const rejectedRow = page.locator(`[data-testid="transfer-row"][data-transfer-id="${rejectedId}"]`);
    await rejectedRow.locator('[data-status="rejected"]').waitFor();
    const reason = rejectedRow.getByTestId("reject-reason");
    check((await reason.getAttribute("data-reason")) === "insufficient_funds", "reason code is not insufficient_funds");
    const words = (await reason.textContent())?.trim();
    check(words === "Not enough money in the source account.", `reason shown as "${words}"`);
    log(`reason in words: "${words}"`);
    check(navigations === navBefore, "the page navigated/reloaded");

    begin("screenshot of the dashboard");
    await page.evaluate(() => window.scrollTo(0, 0));
    await page.screenshot({ path: join(SHOTS, "dashboard.png"), fullPage: false });
    await page.setViewportSize({ width: 390, height: 844 });
    await page.screenshot({ path: join(SHOTS, "dashboard-phone.png"), fullPage: false });
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    check(overflow <= 1, `page is ${overflow}px wider than a phone screen`);
    await page.setViewportSize({ width: 1280, height: 900 });

    begin("lost answer: the server gets it, the browser does not; resend after reload uses the SAME key");
    const lostRef = `e2e lost answer ${Date.now()}`;
    const keys = [];
    let loseAnswers = true;
    await page.route("**/v1/transfers", async (route) => {
      const req = route.request();
      if (req.method() !== "POST") return route.continue();
      keys.push(req.headers()["idempotency-key"]);
      if (!loseAnswers) return route.continue();
      await route.fetch(); // reaches the server...
      await route.abort("connectionreset"); // ...but the answer is lost
    });
    await form.getByLabel("To account (account id)").fill(BOB_EUR);
    await form.getByLabel("Amount").fill("0.01");
    await form.getByLabel("Reference (optional)").fill(lostRef);
    await send.click();
    // the page retries by itself a few times, then offers to send again
    await form.getByTestId("form-error").getByRole("button", { name: "Send again" }).waitFor({ timeout: LIVE_TIMEOUT });
    check(keys.length >= 2, `expected automatic retries, saw ${keys.length} request(s)`);
    await page.reload();
    navigations = 0;
    const banner = page.getByTestId("interrupted-banner");
    await banner.waitFor();
    loseAnswers = false;
    await banner.getByRole("button", { name: "Send again" }).click();
    await page.locator('[data-testid="last-transfer"]').filter({ hasText: "already submitted" }).waitFor();
    await page.unroute("**/v1/transfers");
    check(new Set(keys).size === 1, `the retries used ${new Set(keys).size} different Idempotency-Keys`);
    const lostId = await last.getAttribute("data-transfer-id");
    await page
      .locator(`[data-testid="transfer-row"][data-transfer-id="${lostId}"][data-status="committed"]`)
      .waitFor({ timeout: LIVE_TIMEOUT });
    await page.getByTestId("interrupted-banner").waitFor({ state: "detached" });
    const lostCount = await page.locator('[data-testid="transfer-row"]').filter({ hasText: lostRef }).count();
    check(lostCount === 1, `${keys.length} sends made ${lostCount} transfers`);
    log(`${keys.length} sends with one key made one transfer`);

    begin("offline: the indicator says so, and live updates come back");
    await page.locator('[data-testid="connection-status"][data-state="connected"]').waitFor({ timeout: LIVE_TIMEOUT });
    await context.setOffline(true);
    await page.locator('[data-testid="connection-status"][data-state="offline"]').waitFor();
    await page.getByRole("status").filter({ hasText: "You are offline" }).waitFor();
    await context.setOffline(false);
    await page.locator('[data-testid="connection-status"][data-state="connected"]').waitFor({ timeout: LIVE_TIMEOUT });

    begin("account history shows the entry");
    await eurCard.getByRole("link", { name: /History/ }).click();
    await page.getByRole("heading", { name: "Account history" }).waitFor();
    await page.getByRole("row").filter({ hasText: transferId.slice(0, 8) }).first().waitFor();

    begin("statement: view this month's and download it as CSV");
    const statement = page.getByRole("region", { name: "Statement" });
    await statement.getByRole("button", { name: "View statement" }).click();
    await statement.locator(`[data-testid="statement-row"][data-transfer-id="${transferId}"]`).first().waitFor();
    const opening = await statement.getByTestId("statement-opening").getAttribute("data-value");
    const closing = await statement.getByTestId("statement-closing").getAttribute("data-value");
    const rowsShown = await statement.getByTestId("statement-row").count();
    log(`statement: opening ${opening}, closing ${closing}, ${rowsShown} entries`);
    const [download] = await Promise.all([
      page.waitForEvent("download"),
      statement.getByRole("button", { name: "Download CSV" }).click(),
    ]);
    const fileName = download.suggestedFilename();
    check(
      new RegExp(`^statement-${ALICE_EUR}-\\d{4}-\\d{2}-\\d{2}-\\d{4}-\\d{2}-\\d{2}\\.csv$`).test(fileName),
      `statement file named ${fileName}`,
    );
    const csv = readFileSync(await download.path(), "utf8").trimEnd().split(/\r?\n/);
    check(
      csv[0] === "entry_id,transfer_id,created_at,amount,running_balance,counterparty_account,reference",
      `CSV header is ${csv[0]}`,
    );
    check(csv.some((l) => l.includes(transferId)), "the transfer is not in the CSV");
    check(csv.length - 1 >= rowsShown, `CSV has ${csv.length - 1} rows, the page showed ${rowsShown}`);
    await statement.getByTestId("statement-notice").filter({ hasText: fileName }).waitFor();
    log(`downloaded ${fileName}: ${csv.length - 1} entries`);
    await page.screenshot({ path: join(SHOTS, "statement.png"), fullPage: true });
    await page.getByRole("link", { name: /Back to dashboard/ }).click();
    await eurBalance.waitFor();

    begin("holds: place one, see available < balance, capture part of it");
    const holdsPanel = page.getByRole("region", { name: "Holds" });
    const holdRef = `e2e hold ${Date.now()}`;
    const ledgerBefore = await eurBalance.getAttribute("data-value");
    await holdsPanel.getByLabel("From account").selectOption(ALICE_EUR);
    await holdsPanel.getByLabel("Payee account (account id)").fill(BOB_EUR);
    await holdsPanel.getByLabel("Amount").fill("2.00");
    await holdsPanel.getByLabel("Reference (optional)").fill(holdRef);
    await holdsPanel.getByLabel("Expires in (seconds)").fill("3600");
    await holdsPanel.getByRole("button", { name: "Place hold" }).click();
    const holdRow = holdsPanel.getByTestId("hold-row").filter({ hasText: holdRef });
    await holdRow.and(page.locator('[data-status="pending"]')).waitFor({ timeout: LIVE_TIMEOUT });
    const holdId = await holdRow.getAttribute("data-hold-id");
    const countdownText = (await holdRow.getByTestId("hold-countdown").textContent()).trim();
    check(/expires in (59 min \d+ s|1 h 00 min)$/.test(countdownText), `countdown shows "${countdownText}"`);
    const available = eurCard.getByTestId("account-available");
    await page.waitForFunction(
      ([sel, v]) => document.querySelector(sel)?.getAttribute("data-value") === v,
      [`[data-account-id="${ALICE_EUR}"] [data-testid="account-available"]`, fromMinor(toMinor(ledgerBefore) - 200n)],
      { timeout: LIVE_TIMEOUT },
    );
    check(
      (await eurBalance.getAttribute("data-value")) === ledgerBefore,
      "the ledger balance moved when the hold was placed",
    );
    log(`hold ${holdId}: pending, ${countdownText}; available ${await available.getAttribute("data-value")}, ledger ${ledgerBefore}`);
    await holdRow.getByTestId("hold-capture-amount").fill("1.50");
    await holdRow.getByTestId("hold-capture").click();
    await holdRow.and(page.locator('[data-status="captured"]')).waitFor({ timeout: LIVE_TIMEOUT });
    check(
      (await holdRow.getByTestId("hold-captured").textContent()).includes("1.50"),
      "the captured amount is not shown",
    );
    const expectedLedger = fromMinor(toMinor(ledgerBefore) - 150n);
    await page.waitForFunction(
      ([sel, v]) => document.querySelector(sel)?.getAttribute("data-value") === v,
      [`[data-account-id="${ALICE_EUR}"] [data-testid="account-balance"]`, expectedLedger],
      { timeout: LIVE_TIMEOUT },
    );
    await page.waitForFunction(
      ([sel, v]) => document.querySelector(sel)?.getAttribute("data-value") === v,
      [`[data-account-id="${ALICE_EUR}"] [data-testid="account-available"]`, expectedLedger],
      { timeout: LIVE_TIMEOUT },
    );
    log(`captured 1.50 of 2.00: ledger ${expectedLedger}, the rest released`);
    await page.screenshot({ path: join(SHOTS, "holds.png"), fullPage: true });

    begin("sign out");
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.getByRole("heading", { name: "Sign in" }).waitFor();
    const stored = await page.evaluate(() => sessionStorage.getItem("transfer.token"));
    check(stored === null, "token still in sessionStorage after sign out");

    begin("reverser: rita reverses part of alice's transfer with a reason");
    await signIn(page, "rita");
    const reversal = page.getByRole("region", { name: "Reverse a transfer" });
    await reversal.getByLabel("Transfer id").fill(transferId);
    await reversal.getByRole("button", { name: "Look up" }).click();
    await reversal.locator('[data-testid="reversal-original"][data-status="committed"]').waitFor();
    await reversal.getByRole("button", { name: "Reverse" }).click();
    await reversal.getByTestId("reversal-error-reason").filter({ hasText: "required" }).waitFor();
    await reversal.getByLabel("Amount (empty: all that is left)").fill("0.40");
    await reversal.getByLabel("Reason (required)").fill("e2e: customer complaint");
    await reversal.getByRole("button", { name: "Reverse" }).click();
    const result = reversal.getByTestId("reversal-result");
    await result.and(page.locator('[data-status="committed"]')).waitFor({ timeout: LIVE_TIMEOUT });
    const reversalId = await result.getAttribute("data-transfer-id");
    await reversal.getByTestId("reversal-reversed").filter({ hasText: "0.40" }).waitFor();
    await page.goto(`${BASE_URL}/#/transfers/${transferId}`);
    await page.locator(`[data-testid="detail-reversal"][data-reversal-id="${reversalId}"]`).waitFor();
    await page.goto(`${BASE_URL}/#/transfers/${reversalId}`);
    await page.getByTestId("detail-reverses").filter({ hasText: "customer complaint" }).waitFor();
    log(`reversal ${reversalId} of 0.40 committed and linked both ways`);
    await page.goto(`${BASE_URL}/#/`);
    await signOut(page);

    begin("ops: the live flow lists alice's transfer with its timings");
    await signIn(page, "ops");
    await page.getByRole("heading", { name: "Operations" }).waitFor();
    await page.getByRole("region", { name: /transfers/i }).waitFor();
    const flowRow = page.locator(`[data-testid="flow-row"][data-transfer-id="${transferId}"]`);
    await flowRow.waitFor({ timeout: LIVE_TIMEOUT });
    const totalMs = Number(await flowRow.getAttribute("data-total-ms"));
    check(Number.isFinite(totalMs) && totalMs >= 0, `flow row has no total_ms (${totalMs})`);
    const totalText = (await flowRow.getByTestId("flow-total").textContent()).trim();
    check(/\d( ms| s)$/.test(totalText), `total shown as "${totalText}"`);
    check((await flowRow.getByTestId("status-chip").textContent()).trim() === "Committed", "flow chip is not Committed");
    log(`flow row: total ${totalMs} ms (shown "${totalText}")`);
    // rita's reversal and alice's capture are marked in the flow.
    await page.locator('[data-testid="flow-kind"][data-kind="reversal"]').first().waitFor({ timeout: LIVE_TIMEOUT });
    await page.locator('[data-testid="flow-kind"][data-kind="capture"]').first().waitFor({ timeout: LIVE_TIMEOUT });
    log("flow: the reversal and the capture are marked");
    await page.getByTestId("ops-stats").getByTestId("stats-rate").waitFor();
    log(`stats: ${(await page.getByTestId("stats-rate").textContent()).trim()} over the last 60 s`);

    begin("ops: opening the timeline with the keyboard shows the stages");
    await flowRow.getByTestId("flow-open").focus();
    await page.keyboard.press("Enter");
    const timeline = page.locator(`[data-testid="timeline"][data-transfer-id="${transferId}"]`);
    await timeline.getByTestId("timeline-stages").waitFor();
    await timeline.locator('[data-testid="timeline-stage"][data-stage="committed"]').waitFor();
    const stages = await timeline.getByTestId("timeline-stage").evaluateAll((els) => els.map((e) => e.dataset.stage));
    check(stages[0] === "accepted", `first stage is ${stages[0]}`);
    check(stages.includes("committed"), `no committed stage: ${stages.join(",")}`);
    check(
      (await page.evaluate(() => document.activeElement?.id)) === "timeline-title",
      "focus did not move to the timeline",
    );
    const trace = timeline.getByTestId("timeline-trace");
    if (await trace.count()) {
      await timeline.getByText("Search this trace id in Jaeger/Tempo").waitFor();
      log(`timeline: ${stages.join(" → ")}; trace id ${(await trace.textContent()).trim()}`);
    } else log(`timeline: ${stages.join(" → ")}; no trace id recorded`);
    await page.evaluate(() => window.scrollTo(0, 0));
    await page.screenshot({ path: join(SHOTS, "ops.png"), fullPage: true });
    await page.setViewportSize({ width: 390, height: 844 });
    await page.screenshot({ path: join(SHOTS, "ops-phone.png"), fullPage: false });
    const opsOverflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    check(opsOverflow <= 1, `ops page is ${opsOverflow}px wider than a phone screen`);
    await page.setViewportSize({ width: 1280, height: 900 });
    await signOut(page);

    begin("batch: check a file locally, then send one if the server has the batch API");
    await signIn(page, "batch");
    await page.getByRole("heading", { name: "Batch payments" }).waitFor();
    await page.getByRole("region", { name: /transfers/i }).waitFor();
    const card = page.locator(`[data-testid="account-card"][data-account-id="${BATCH_EUR}"]`);
    await card.waitFor();
    const badCsv = `from_account,to_account,amount,currency,reference\n${BATCH_EUR},${BOB_EUR},1.00,EUR,ok\n${BATCH_EUR},${BOB_EUR},1.001,EUR,bad\n`;
    const fileInput = page.getByLabel("Payments file (CSV)");
    await fileInput.setInputFiles({ name: "pay.csv", mimeType: "text/csv", buffer: Buffer.from(badCsv) });
    await page.getByTestId("batch-summary").filter({ hasText: "2 payments, 1 with problems" }).waitFor();
    const sendBatch = page.getByRole("button", { name: "Send batch" });
    check(await sendBatch.isDisabled(), "Send batch should be disabled for a file with a bad line");
    await page.waitForFunction(() => document.querySelector('[data-testid="batch-panel"]')?.dataset.api !== "unknown", null, {
      timeout: LIVE_TIMEOUT,
    });
    const batchApi = await page.getByTestId("batch-panel").getAttribute("data-api");
    if (batchApi === "missing") {
      await page.getByTestId("batch-unavailable").waitFor();
      log("batch API not available; skipped");
    } else {
      begin("batch: the server's per-line errors are shown (a destination that does not exist)");
      const nowhere = "00000000-0000-4000-8000-00000000dead";
      const refusedCsv = `from_account,to_account,amount,currency,reference\n${BATCH_EUR},${BOB_EUR},0.01,EUR,fine\n${BATCH_EUR},${nowhere},0.01,EUR,nowhere ${Date.now()}\n`;
      await fileInput.setInputFiles({ name: "refused.csv", mimeType: "text/csv", buffer: Buffer.from(refusedCsv) });
      await page.getByTestId("batch-summary").filter({ hasText: "2 payments, all valid" }).waitFor();
      await sendBatch.click();
      const lineErrors = page.getByTestId("batch-line-errors");
      await lineErrors.locator('li[data-line="3"]').filter({ hasText: "to_account" }).waitFor();
      log(`server refused line 3: ${(await lineErrors.textContent()).trim()}`);

      begin("batch: send a 3-line file to bob and follow it to 3 committed");
      const run = Date.now();
      const goodCsv =
        "from_account,to_account,amount,currency,reference\n" +
        [1, 2, 3].map((n) => `${BATCH_EUR},${BOB_EUR},0.0${n},EUR,e2e batch ${run} #${n}`).join("\n") +
        "\n";
      await fileInput.setInputFiles({ name: "three.csv", mimeType: "text/csv", buffer: Buffer.from(goodCsv) });
      await page.getByTestId("batch-summary").filter({ hasText: "3 payments, all valid" }).waitFor();
      const posts = [];
      page.on("request", (r) => {
        if (r.method() === "POST" && r.url().endsWith("/v1/batches?mode=independent")) posts.push(r.headers()["idempotency-key"]);
      });
      await sendBatch.dblclick();
      const progress = page.getByTestId("batch-progress");
      await progress.waitFor();
      const batchId = await progress.getAttribute("data-batch-id");
      log(`batch ${batchId} accepted`);
      await page
        .locator('[data-testid="batch-progress"][data-done="true"][data-committed="3"]')
        .waitFor({ timeout: LIVE_TIMEOUT });
      await page.locator('[data-testid="batch-payment"][data-status="committed"]').nth(2).waitFor();
      const rows = await page.getByTestId("batch-payment").evaluateAll((els) => els.map((e) => `${e.dataset.line}:${e.dataset.status}`));
      check(rows.length === 3 && rows.every((r) => r.endsWith(":committed")), `outcomes: ${rows.join(", ")}`);
      check((await page.locator("progress").evaluate((e) => e.value)) === 3, "progress bar is not full");
      log(`outcomes: ${rows.join(", ")}; ${(await page.getByTestId("batch-progress-text").textContent()).trim()}`);
      await page.evaluate(() => window.scrollTo(0, 0));
      await page.screenshot({ path: join(SHOTS, "batch.png"), fullPage: true });

      begin("batch: sending the same file again is answered with the same batch");
      await sendBatch.click();
      await page.getByTestId("batch-notice").filter({ hasText: "already sent" }).waitFor();
      check(
        (await page.getByTestId("batch-progress").getAttribute("data-batch-id")) === batchId,
        "the same file made another batch",
      );
      check(posts.length >= 2 && new Set(posts).size === 1, `keys used: ${JSON.stringify(posts)}`);
      log(`${posts.length} uploads, one key (${posts[0]}), one batch`);

      begin("batch: a server without the batch API (simulated 404) gets a clear state, not a failure");
      await page.route("**/v1/batches*", (route) =>
        route.request().method() === "POST"
          ? route.fulfill({ status: 404, contentType: "application/problem+json", body: '{"title":"Not Found","status":404}' })
          : route.continue(),
      );
      await page.reload();
      await page.locator('[data-testid="batch-panel"][data-api="missing"]').waitFor();
      await page.getByTestId("batch-unavailable").filter({ hasText: "not available on this server" }).waitFor();
      await fileInput.setInputFiles({ name: "three.csv", mimeType: "text/csv", buffer: Buffer.from(goodCsv) });
      await page.getByTestId("batch-summary").filter({ hasText: "3 payments, all valid" }).waitFor();
      check(await sendBatch.isDisabled(), "Send batch should be disabled without the batch API");
      await page.unroute("**/v1/batches*");
    }
    await signOut(page);

    check(problems.length === 0, `browser reported problems:\n  ${problems.join("\n  ")}`);
    log("PASS");
  } catch (e) {
    console.error(`[e2e] FAILED at step "${step}": ${e instanceof Error ? e.message : e}`);
    if (problems.length) console.error(`[e2e] browser problems:\n  ${problems.join("\n  ")}`);
    try {
      const pages = browser.contexts().flatMap((c) => c.pages());
      if (pages[0]) await pages[0].screenshot({ path: join(SHOTS, "failure.png"), fullPage: true });
      console.error(`[e2e] screenshot: ${join(SHOTS, "failure.png")}`);
    } catch {
      /* ignore */
    }
    process.exitCode = 1;
  } finally {
    await browser.close();
  }
}

main().catch((e) => {
  console.error(`[e2e] FAILED: ${e instanceof Error ? e.stack : e}`);
  process.exit(1);
});
