// Rules and customers: switching a rule off globally (after a warning)
// changes the next /v1/check; a customer's override and threshold show in
// its effective policy with their sources, and change its decisions.

import { test, before, beforeEach, after } from "node:test";
import assert from "node:assert/strict";
import { Browser, server, check, checkUntil, customerId, submit } from "../lib/harness.js";

let browser;
before(async () => {
  browser = await Browser.launch();
});
beforeEach(() => browser?.reset());
after(async () => {
  await browser?.close();
});

const external = { model: "gpt-4", operation: "classify", metadata: { is_external_model: true } };
const personal = { model: "gpt-4", operation: "classify", metadata: { contains_personal_data: true } };

/** A button, or a link styled as one, whose name matches `name`. */
function control(scope, name) {
  return scope.getByRole("button", { name }).or(scope.getByRole("link", { name })).first();
}

/**
 * Follows the rule's global toggle link named `name` on /ui/rules, and
 * confirms; returns the text of the confirmation page's alert.
 */
async function toggle(page, rule, name) {
  await page.goto("/ui/rules");
  const row = page.locator("tr").filter({ has: page.getByRole("link", { name: rule, exact: true }) });
  await control(row, name).click();
  await page.waitForURL(/\/toggle/);
  const warning = await page.locator("main .alert").first().innerText();
  await submit(page, control(page.locator("main"), /^Confirm$/));
  await page.waitForURL(/\/ui\/rules$/);
  return warning;
}

test("switching a rule off globally shows a warning and changes the next decision", async () => {
  const context = await browser.context({ role: "admin" });
  const page = await context.newPage();
  assert.equal((await check(external)).body?.allowed, false, "external_model blocks at first");

  const warning = await toggle(page, "external_model", /^Switch off$/);
  assert.match(warning, /switching this rule off means requests it would have blocked are allowed/i);
  const after = await checkUntil(external, (d) => d.allowed);
  assert.equal(after.status, 200);
  assert.equal(after.body.allowed, true, "with the rule off, the next check allows");

  // Back to what the policy files say: on.
  await toggle(page, "external_model", /^Follow files$/);
  assert.equal((await checkUntil(external, (d) => !d.allowed)).body.allowed, false, "following the files again, it blocks");
  await context.close();
  browser.assertClean();
});

test("a customer override and threshold show in the effective policy with their sources", async () => {
  const context = await browser.context({ role: "admin" });
  const page = await context.newPage();
  const id = await customerId(server.appCustomer);
  const before = await check(personal);
  assert.equal(before.body.risk_score, 70);
  assert.equal(before.body.allowed, false, "personal data (70) blocks at the files' threshold 50");

  await page.goto(`/ui/customers/${id}`);
  const settings = page.locator("#settings");
  await settings.getByLabel("Threshold", { exact: true }).fill("90");
  await submit(page, settings.getByRole("button", { name: "Save settings" }));
  assert.equal((await checkUntil(personal, (d) => d.allowed)).body.allowed, true, "70 is under the customer's threshold 90");

  const effective = page.locator("#rules");
  const rowOf = (rule) => effective.locator("tbody tr").filter({ has: page.getByRole("link", { name: rule, exact: true }) });
  await rowOf("contains_personal_data").getByLabel("Score", { exact: true }).fill("95");
  await submit(page, rowOf("contains_personal_data").getByRole("button", { name: /^Set score/ }));

  await page.goto(`/ui/customers/${id}`);
  const threshold = await settings.locator("dd").first().textContent();
  assert.match(threshold, /\b90\b/);
  assert.match(threshold, /override|customer/i, `the threshold's source is the customer's setting: ${threshold}`);
  const overridden = await rowOf("contains_personal_data").textContent();
  assert.match(overridden, /\b95\b/);
  assert.match(overridden, /override/i, `the score's source is the override: ${overridden}`);
  assert.match(await rowOf("external_model").textContent(), /\bfile\b/, "an untouched rule comes from the files");

  const decided = await checkUntil(personal, (d) => d.risk_score === 95);
  assert.equal(decided.body.risk_score, 95, "the override's score applies");
  assert.equal(decided.body.allowed, false, "95 reaches the threshold 90");

  // Clear both from the page: the customer follows the files again.
  await submit(page, rowOf("contains_personal_data").getByRole("button", { name: /^Clear/ }));
  await page.goto(`/ui/customers/${id}`);
  await settings.getByLabel("Threshold", { exact: true }).fill("");
  await submit(page, settings.getByRole("button", { name: "Save settings" }));
  const cleared = await checkUntil(personal, (d) => d.risk_score === 70 && !d.allowed);
  assert.equal(cleared.body.risk_score, 70);
  assert.equal(cleared.body.allowed, false);
  await context.close();
  browser.assertClean();
});
