// The playground decides exactly as /v1/check does for the same body and
// customer, and writes no audit row.

import { test, before, beforeEach, after } from "node:test";
import assert from "node:assert/strict";
import { Browser, api, check, screenshot, server } from "../lib/harness.js";

let browser;
before(async () => {
  browser = await Browser.launch();
});
beforeEach(() => browser?.reset());
after(async () => {
  await browser?.close();
});

/** The total number of decision rows, from the admin API. */
async function decisions() {
  const { status, body } = await api("GET", "/api/admin/logs?page_size=1");
  assert.equal(status, 200);
  return body.total ?? body.items?.length;
}

test("the playground's decision equals /v1/check's for the same body and customer, and adds no audit row", async () => {
  const body = { model: "gpt-4", operation: "classify", metadata: { contains_personal_data: true, is_external_model: true } };
  const expected = await check(body);
  assert.equal(expected.status, 200);

  const context = await browser.context({ role: "admin" });
  const page = await context.newPage();
  await page.goto("/ui/playground");
  const textarea = page.getByLabel(/request body/i);
  assert.ok((await textarea.inputValue()).trim().startsWith("{"), "prefilled with an example");

  // Let the check's audit row land, then count.
  let before = await decisions();
  for (let i = 0; i < 50; i += 1) {
    await page.waitForTimeout(100);
    const now = await decisions();
    if (now === before) break;
    before = now;
  }

  await textarea.fill(JSON.stringify(body, null, 2));
  const customer = page.getByLabel(/customer/i);
  if (await customer.count()) {
    if ((await customer.evaluate((el) => el.tagName)) === "SELECT") {
      const options = await customer.locator("option").allInnerTexts();
      const label = options.find((o) => o.includes(server.appCustomer));
      assert.ok(label, `the app key's customer is offered: ${options.join(", ")}`);
      await customer.selectOption({ label });
    } else {
      await customer.fill(server.appCustomer);
    }
  }
  await page.getByRole("button", { name: "Decide", exact: true }).click();
  const decision = page.locator("#decision");
  await decision.waitFor();
  const text = await decision.innerText();
  // The decision and its trace fill the picture (docs/images/playground.png).
  await decision.evaluate((el) => el.scrollIntoView());
  await screenshot(page, "playground-decision", "light");

  assert.match(text, expected.body.allowed ? /allowed/i : /blocked/i);
  assert.match(text, new RegExp(`\\b${expected.body.risk_score}\\b`), `score ${expected.body.risk_score}`);
  assert.match(text, new RegExp(expected.body.reason), `reason ${expected.body.reason}`);
  for (const c of expected.body.contributions) {
    assert.match(text, new RegExp(c.rule), `contribution of ${c.rule}`);
  }
  assert.ok(text.includes(expected.body.policy_version), "the same policy version");

  // A rejected body shows the rejection and its path.
  await textarea.fill(JSON.stringify({ model: "gpt-4", operation: "classify", metadata: { prompt: "x" } }));
  await page.getByRole("button", { name: "Decide", exact: true }).click();
  await page.locator("#decision").getByText("metadata.prompt").first().waitFor();

  // One more /v1/check: its row is queued after anything the playground
  // could have queued, so once it is written the count is final.
  assert.equal((await check(body)).status, 200);
  let total = await decisions();
  for (let i = 0; i < 50 && total === before; i += 1) {
    await page.waitForTimeout(100);
    total = await decisions();
  }
  assert.equal(total, before + 1, "the playground wrote no audit row (only the last check did)");
  await context.close();
  browser.assertClean();
});
