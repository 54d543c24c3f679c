// Keys: create (the secret shown once, on a no-store page, copied with the
// button), rotate with a grace period, delete after confirming (Cancel
// keeps the key); each step checked against /v1/check. Then the same flow
// with the keyboard alone.

import { test, before, beforeEach, after } from "node:test";
import assert from "node:assert/strict";
import { Browser, server, check, unique, tabTo, storage, submit } from "../lib/harness.js";

let browser;
before(async () => {
  browser = await Browser.launch();
});
beforeEach(() => browser?.reset());
after(async () => {
  await browser?.close();
});

const body = { model: "gpt-4", operation: "classify", metadata: {} };

/**
 * A control named `name` (a string: exactly; a RegExp: matching) in
 * `scope`: a button or a link styled as one.
 */
function control(scope, name) {
  const options = typeof name === "string" ? { name, exact: true } : { name };
  return scope.getByRole("button", options).or(scope.getByRole("link", options)).first();
}

/** The keys table's row for the key named `name`. */
function row(page, name) {
  return page.locator("table tr").filter({ hasText: name });
}

/** Fills a field by its label, whether it is a select or a text input. */
async function choose(page, form, label, value, { keyboard = false } = {}) {
  const field = form.getByLabel(label, { exact: true });
  const tag = await field.evaluate((el) => el.tagName);
  if (keyboard) {
    await tabTo(page, field);
    if (tag !== "SELECT") {
      await page.keyboard.type(value);
      return;
    }
    // From the first option down until the wanted one is selected.
    await page.keyboard.press("Home");
    for (let i = 0; i < 100; i += 1) {
      const selected = await field.evaluate((el) => el.selectedOptions[0]?.textContent ?? "");
      if (selected.toLowerCase().includes(value.toLowerCase())) return;
      await page.keyboard.press("ArrowDown");
    }
    throw new Error(`no option of ${label} contains ${value}`);
  }
  if (tag === "SELECT") {
    const options = await field.locator("option").allInnerTexts();
    const label = options.find((o) => o.toLowerCase().includes(value.toLowerCase()));
    assert.ok(label, `an option contains ${value}: ${options.join(", ")}`);
    await field.selectOption({ label });
  } else {
    await field.fill(value);
  }
}

/** The one-time secret on the page, after waiting for it. */
async function secret(page) {
  const code = page.locator("#new-key");
  await code.waitFor();
  const text = (await code.innerText()).trim();
  assert.ok(text.length >= 20, "a secret is shown");
  return text;
}

/** Waits for the page that shows a secret (after the form post's redirect). */
function secretResponse(page) {
  return page.waitForResponse((r) => r.status() === 200 && /^\/ui\/keys\/[^/]+\/new$/.test(new URL(r.url()).pathname));
}

async function assertClipboard(page, expected) {
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), expected, "the copy button put the secret on the clipboard");
}

async function run({ keyboard }) {
  const context = await browser.context({ role: "admin" });
  await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: server.base });
  const page = await context.newPage();
  const name = unique(keyboard ? "kbd" : "e2e");
  const press = async (locator) => {
    if (keyboard) {
      await tabTo(page, locator);
      await page.keyboard.press("Enter");
    } else {
      await locator.click();
    }
  };

  await page.goto("/ui/keys");
  // Create.
  const form = page.getByRole("form", { name: /create/i });
  await choose(page, form, "Name", name, { keyboard });
  await choose(page, form, "Customer", server.appCustomer, { keyboard });
  await choose(page, form, "Role", "app", { keyboard });
  const created = secretResponse(page);
  await press(control(form, "Create"));
  assert.match((await created).headers()["cache-control"] ?? "", /no-store/, "the page with the secret is no-store");
  const first = await secret(page);
  await press(page.locator('button[data-copy="new-key"]'));
  await assertClipboard(page, first);
  assert.equal((await check(body, first)).status, 200, "the new key decides");
  assert.ok(!(await storage(page)).includes(first), "the secret is not kept in web storage");

  // Reloaded, the page does not show the secret any more; nor does the list.
  await page.reload();
  assert.ok(!(await page.content()).includes(first), "a reload does not show the secret again");
  assert.equal(await page.locator("#new-key").count(), 0);
  await page.goto("/ui/keys");
  await row(page, name).waitFor();
  assert.ok(!(await page.content()).includes(first), "the list does not show the secret");

  // Rotate with a grace period: both secrets work during it.
  await press(control(row(page, name), /^Rotate/));
  const grace = page.getByLabel(/grace/i);
  if (keyboard) {
    await tabTo(page, grace);
    await page.keyboard.type("300");
  } else {
    await grace.fill("300");
  }
  const rotated = secretResponse(page);
  await press(control(page.locator("main"), "Rotate"));
  assert.match((await rotated).headers()["cache-control"] ?? "", /no-store/);
  const second = await secret(page);
  assert.notEqual(second, first);
  await press(page.locator('button[data-copy="new-key"]'));
  await assertClipboard(page, second);
  assert.equal((await check(body, second)).status, 200, "the rotated key decides");
  assert.equal((await check(body, first)).status, 200, "the old secret works during the grace period");

  // Delete: Cancel keeps the key; confirming deletes it.
  await page.goto("/ui/keys");
  await press(control(row(page, name), /^Delete/));
  await press(control(page.locator("main"), "Cancel"));
  await page.waitForURL((url) => url.pathname === "/ui/keys");
  await row(page, name).waitFor();
  assert.equal((await check(body, second)).status, 200, "Cancel keeps the key");

  await press(control(row(page, name), /^Delete/));
  if (keyboard) await tabTo(page, control(page.locator("main"), "Delete"));
  await submit(page, control(page.locator("main"), "Delete"), { keyboard });
  await page.waitForURL((url) => url.pathname === "/ui/keys");
  assert.equal(await row(page, name).filter({ hasNotText: /deleted|revoked|inactive/i }).count(), 0, "the key is gone from the list");
  assert.equal((await check(body, second)).status, 401, "the deleted key is refused");
  assert.equal((await check(body, first)).status, 401, "so is its old secret");

  await context.close();
  browser.assertClean();
}

test("create, copy, rotate with grace and delete a key", () => run({ keyboard: false }));

test("the whole keys flow works with the keyboard alone", () => run({ keyboard: true }));
