// Rules and customers: switching a rule off globally (after a warning)
// changes the next /v1/check; a customer's override and threshold show in
// its effective policy with their sources, and change its decisions.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { Browser, server, check, customerId } from "../lib/harness.js";

let browser;
before(async () => {
  browser = await Browser.launch();
});
after(async () => {
  await browser?.close();
});

const external = { model: "gpt-4", operation: "classify", metadata: { is_external_model: true } };
const personal = { model: "gpt-4", operation: "classify", metadata: { contains_personal_data: true } };

/** A button, or a link styled as one, whose name matches `name`. */
function control(scope, name) {
  return scope.getByRole("button", { name }).or(scope.getByRole("link", { name })).first();
}

/** Submits the rule's global toggle and its confirmation; returns the warning shown. */
async function toggle(page, rule, name) {
  await page.goto("/ui/rules");
  await control(page.locator("tr").filter({ hasText: rule }), name).click();
  // A confirmation page says what the change means before it is made.
  const warning = await page.locator("main .alert").first().innerText();
  await control(page.locator("main"), name).click();
  await page.waitForURL(/\/ui\/rules/);
  return warning;
}

test("switching a rule off globally shows a warning and changes the next decision", async () => {
  const context = await browser.context({ role: "admin" });
  const page = await context.newPage();
  assert.equal((await check(external)).body?.allowed, false, "external_model blocks at first");

  const warning = await toggle(page, "external_model", /off|disable/i);
  assert.match(warning, /off|disable|no longer|stop/i, "the confirmation warns what switching off means");
  const after = await check(external);
  assert.equal(after.status, 200);
  assert.equal(after.body.allowed, true, "with the rule off, the next check allows");

  await toggle(page, "external_model", /\bon\b|enable/i);
  assert.equal((await check(external)).body.allowed, false, "switched back on, it blocks again");
  await context.close();
  browser.assertClean();
});

test("a customer override and threshold show in the effective policy with their sources", async () => {
  const context = await browser.context({ role: "admin" });
  const page = await context.newPage();
  const id = await customerId(server.appCustomer);
  assert.equal((await check(personal)).body.allowed, false, "personal data (70) blocks at the file's threshold 50");

  await page.goto(`/ui/customers/${id}`);
  // Settings: a threshold of its own.
  await page.getByLabel(/threshold/i).first().fill("90");
  await control(page.locator("form").filter({ has: page.getByLabel(/threshold/i) }), /save|set|update|change/i).click();
  await page.waitForLoadState("networkidle");

  // An override: contains_personal_data scores 95 for this customer.
  const overrides = page.locator("form").filter({ hasText: /score/i }).filter({ has: page.getByRole("combobox").or(page.locator("select")) }).first();
  await page.goto(`/ui/customers/${id}`);
  const overrideForm = page.locator("form").filter({ has: page.getByLabel(/^score/i) }).first();
  const ruleField = overrideForm.getByLabel(/rule/i);
  if (await ruleField.count()) await ruleField.selectOption("contains_personal_data");
  await overrideForm.getByLabel(/^score/i).fill("95");
  await control(overrideForm, /save|set|override|score/i).click();
  await page.waitForLoadState("networkidle");
  void overrides;

  await page.goto(`/ui/customers/${id}`);
  const effective = page.locator("section, .card").filter({ hasText: /effective/i }).last();
  const thresholdRow = effective.locator("tr").filter({ hasText: /threshold/i }).first();
  assert.match(await thresholdRow.innerText(), /90/);
  assert.match(await thresholdRow.innerText(), /override|customer/i, "the threshold's source is the customer's setting");
  const ruleRow = effective.locator("tr").filter({ hasText: "contains_personal_data" }).first();
  assert.match(await ruleRow.innerText(), /95/);
  assert.match(await ruleRow.innerText(), /override/i, "the score's source is the override");
  const untouched = effective.locator("tr").filter({ hasText: "external_model" }).first();
  assert.match(await untouched.innerText(), /file|global|default/i);

  // The decision follows: 95 reaches 90.
  const decided = await check(personal);
  assert.equal(decided.body.risk_score, 95);
  assert.equal(decided.body.allowed, false);

  // Clear both, through the API, so the other tests see the file's policy.
  await fetch(new URL(`/api/admin/customers/${id}/policies/contains_personal_data`, server.base), {
    method: "DELETE",
    headers: { authorization: `Bearer ${server.adminKey}` },
  });
  await context.close();
  browser.assertClean();
});
