// Every page, in light and dark: it renders in the layout with the
// navigation, axe-core finds no serious or critical violation, nothing
// is requested from another origin, nothing is logged as an error, the
// page fits 768 px without scrolling sideways; and a screenshot of each
// is saved.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { Browser, NAV, axeViolations, check, customerId, screenshot, server } from "../lib/harness.js";

let browser;
let extra;
before(async () => {
  browser = await Browser.launch();
  // Something to show: one decision of each outcome.
  await check({ model: "gpt-4", operation: "classify", metadata: {} });
  const blocked = await check({ model: "gpt-4", operation: "summarise", metadata: { contains_personal_data: true } });
  const customer = await customerId(server.appCustomer);
  extra = [
    ["customer", `/ui/customers/${customer}`],
    ["rule", "/ui/rules/contains_personal_data"],
    ["decision", `/ui/logs/${blocked.body.decision_id}`],
    ["not-found", "/ui/no-such-page"],
  ];
});
after(async () => {
  await browser?.close();
});

function pages() {
  return [...NAV.map(([name, path]) => [name.toLowerCase(), path]), ...extra, ["login", "/ui/login"]];
}

for (const theme of ["light", "dark"]) {
  test(`every page in ${theme} mode: layout, axe-core, screenshot`, async () => {
    const signedIn = await browser.context({ role: "admin", colorScheme: theme });
    const anonymous = await browser.context({ colorScheme: theme });
    const failures = [];
    for (const [name, path] of pages()) {
      const context = name === "login" ? anonymous : signedIn;
      const page = await context.newPage();
      if (name === "not-found") browser.expected.push(/status of 404/);
      const response = await page.goto(path);
      await page.waitForLoadState("networkidle");
      assert.equal(response.status(), name === "not-found" ? 404 : 200, path);
      if (name !== "login") {
        const nav = page.getByRole("navigation").first();
        for (const [label] of NAV) {
          assert.equal(await nav.getByRole("link", { name: label, exact: true }).count(), 1, `${path}: nav link ${label}`);
        }
        assert.equal(await page.getByRole("button", { name: "Sign out" }).count(), 1, `${path}: Sign out`);
      }
      for (const v of await axeViolations(page)) failures.push(`${path} (${theme}): ${v}`);
      await screenshot(page, name, theme);
      if (name === "not-found") browser.expected.pop();
      await page.close();
    }
    await signedIn.close();
    await anonymous.close();
    assert.deepEqual(failures, [], "serious or critical axe-core violations");
    browser.assertClean();
  });
}

test("every page fits 768 px without scrolling sideways", async () => {
  const context = await browser.context({ role: "admin", viewport: { width: 768, height: 1024 } });
  const page = await context.newPage();
  const wide = [];
  for (const [name, path] of pages()) {
    if (name === "not-found") continue;
    await page.goto(path);
    const [scroll, client] = await page.evaluate(() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]);
    if (scroll > client) wide.push(`${path}: ${scroll}px wide`);
  }
  await context.close();
  assert.deepEqual(wide, []);
  browser.assertClean();
});

test("pages work without JavaScript: every navigation link opens its page", async () => {
  const context = await browser.context({ role: "admin", javaScript: false });
  const page = await context.newPage();
  await page.goto("/ui/");
  for (const [label, path] of NAV) {
    await page.getByRole("navigation").first().getByRole("link", { name: label, exact: true }).click();
    await page.waitForURL((url) => url.pathname === path);
    assert.equal(await page.locator("h1").count(), 1, `${path} has one heading`);
  }
  await context.close();
  browser.assertClean();
});
