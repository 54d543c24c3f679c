// Logs: filters live in the URL (reload and Back keep them), the CSV holds
// exactly the filtered rows, and a canary string sent in an undeclared
// field appears in no page and no CSV.

import { test, before, beforeEach, after } from "node:test";
import assert from "node:assert/strict";
import { Browser, NAV, check, unique, customerId, server } from "../lib/harness.js";

let browser;
before(async () => {
  browser = await Browser.launch();
});
beforeEach(() => browser?.reset());
after(async () => {
  await browser?.close();
});

/** Parses RFC 4180 CSV into rows of fields. */
function parseCsv(text) {
  const rows = [];
  let row = [];
  let field = "";
  let quoted = false;
  for (let i = 0; i < text.length; i += 1) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i += 1;
      } else if (c === '"') {
        quoted = false;
      } else {
        field += c;
      }
    } else if (c === '"') {
      quoted = true;
    } else if (c === ",") {
      row.push(field);
      field = "";
    } else if (c === "\n" || c === "\r") {
      if (c === "\r" && text[i + 1] === "\n") i += 1;
      row.push(field);
      rows.push(row);
      row = [];
      field = "";
    } else {
      field += c;
    }
  }
  if (field !== "" || row.length) {
    row.push(field);
    rows.push(row);
  }
  return rows;
}

test("log filters live in the URL; reload and Back keep them; the CSV holds exactly the filtered rows", async () => {
  const model = unique("e2e-model");
  // 3 blocked and 2 allowed decisions for this model, 1 blocked for another.
  for (let i = 0; i < 3; i += 1) {
    assert.equal((await check({ model, operation: "classify", metadata: { is_external_model: true } })).body.allowed, false);
  }
  for (let i = 0; i < 2; i += 1) {
    assert.equal((await check({ model, operation: "classify", metadata: {} })).body.allowed, true);
  }
  await check({ model: `${model}-other`, operation: "classify", metadata: { is_external_model: true } });

  const context = await browser.context({ role: "admin" });
  const page = await context.newPage();
  await page.goto("/ui/logs");
  const form = page.locator("form").filter({ has: page.getByLabel(/model/i) }).first();
  const status = form.getByLabel(/status|outcome/i);
  if ((await status.evaluate((el) => el.tagName)) === "SELECT") {
    await status.selectOption("blocked");
  } else {
    await status.fill("blocked");
  }
  await form.getByLabel(/model/i).fill(model);
  await form.getByRole("button").first().click();
  await page.waitForURL((url) => url.searchParams.get("status") === "blocked" && url.searchParams.get("model") === model);
  const filtered = page.url();

  const rows = page.locator("table.data tbody tr");
  // Audit rows are written asynchronously: poll with the page's own filter.
  for (let i = 0; i < 50 && (await rows.count()) < 3; i += 1) {
    await page.waitForTimeout(100);
    await page.reload();
  }
  assert.equal(await rows.count(), 3, "three blocked rows for the model");
  for (const text of await rows.allInnerTexts()) {
    assert.match(text, new RegExp(model));
    assert.match(text, /blocked/i);
    assert.doesNotMatch(text, new RegExp(`${model}-other`));
  }

  // Reload keeps the filters, in the URL and in the form.
  await page.reload();
  assert.equal(page.url(), filtered);
  assert.equal(await form.getByLabel(/model/i).inputValue(), model);

  // A row opens its decision; Back returns to the filtered list.
  await rows.first().getByRole("link").first().click();
  await page.waitForURL(/\/ui\/logs\/[0-9a-f-]{36}/);
  await page.goBack();
  await page.waitForURL(filtered);
  assert.equal(await form.getByLabel(/model/i).inputValue(), model);
  assert.equal(await rows.count(), 3);

  // The CSV link carries the same filters; the CSV holds exactly those rows.
  const csvLink = page.getByRole("link", { name: /csv/i }).first();
  const href = new URL(await csvLink.getAttribute("href"), server.base);
  assert.equal(href.pathname, "/ui/logs.csv");
  assert.equal(href.searchParams.get("status"), "blocked");
  assert.equal(href.searchParams.get("model"), model);
  const csv = await context.request.get(href.toString());
  assert.equal(csv.status(), 200);
  assert.match(csv.headers()["content-type"], /text\/csv/);
  const [header, ...records] = parseCsv(await csv.text()).filter((r) => r.length > 1 || r[0] !== "");
  assert.ok(header.includes("model"), `a header row: ${header.join(",")}`);
  assert.equal(records.length, 3, "the CSV holds the three filtered rows");
  const modelColumn = header.indexOf("model");
  for (const record of records) assert.equal(record[modelColumn], model);
  const idColumn = header.indexOf("decision_id");
  assert.ok(idColumn >= 0, "a decision_id column");
  const shown = await rows.evaluateAll((trs) =>
    trs.map((tr) => tr.querySelector('a[href^="/ui/logs/"]').getAttribute("href").split("/").pop()),
  );
  assert.deepEqual(records.map((r) => r[idColumn]).sort(), shown.sort(), "the CSV's decisions are the page's");

  await context.close();
  browser.assertClean();
});

test("a canary in an undeclared field appears in no page and no CSV", async () => {
  const canary = unique("CANARY");
  const decided = await check({
    model: "gpt-4",
    operation: "classify",
    metadata: { intent: "spam_detection", undeclared_note: canary, nested: { deep: canary } },
    extra: canary,
  });
  assert.equal(decided.status, 200);
  const id = decided.body.decision_id;
  const customer = await customerId(server.appCustomer);

  const context = await browser.context({ role: "admin" });
  const page = await context.newPage();
  const pages = [
    ...NAV.map(([, path]) => path),
    `/ui/logs/${id}`,
    `/ui/logs?model=gpt-4`,
    `/ui/customers/${customer}`,
    "/ui/rules/external_model",
  ];
  // Wait until the decision is written, so the pages could show it.
  for (let i = 0; i < 50; i += 1) {
    const response = await page.goto(`/ui/logs/${id}`);
    if (response.status() === 200) break;
    await page.waitForTimeout(100);
  }
  for (const path of pages) {
    const response = await page.goto(path);
    assert.equal(response.status(), 200, path);
    assert.ok(!(await page.content()).includes(canary), `${path} does not show the canary`);
  }
  const csv = await context.request.get("/ui/logs.csv");
  assert.equal(csv.status(), 200);
  const text = await csv.text();
  assert.ok(text.includes(id), "the CSV holds the decision");
  assert.ok(!text.includes(canary), "the CSV does not hold the canary");
  await context.close();
  browser.assertClean();
});
