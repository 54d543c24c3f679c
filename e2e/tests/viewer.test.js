// A viewer sees every page but no write control, and a forged write (with
// the viewer's own session and CSRF token) gets 403.

import { test, before, beforeEach, after } from "node:test";
import assert from "node:assert/strict";
import { Browser, NAV, customerId, server } from "../lib/harness.js";

let browser;
before(async () => {
  browser = await Browser.launch();
});
beforeEach(() => browser?.reset());
after(async () => {
  await browser?.close();
});

/** Forms that may post for a viewer: signing out and the playground. */
const ALLOWED_POSTS = ["/ui/logout", "/ui/playground"];

test("a viewer sees every page without write controls, and a forged write gets 403", { skip: !server.viewerKey && "this build has no viewer keys" }, async () => {
  const customer = await customerId(server.appCustomer);
  const context = await browser.context({ role: "viewer" });
  const page = await context.newPage();
  const paths = [...NAV.map(([, path]) => path), `/ui/customers/${customer}`, "/ui/rules/external_model"];
  const problems = [];
  browser.expected.push(/status of 404/);
  for (const path of paths) {
    const response = await page.goto(path);
    if (response.status() !== 200) {
      problems.push(`${path}: status ${response.status()}`);
      continue;
    }
    const posts = await page.locator("form").evaluateAll((forms) =>
      forms.filter((f) => f.method.toLowerCase() === "post").map((f) => new URL(f.action, location.href).pathname),
    );
    for (const action of posts.filter((p) => !ALLOWED_POSTS.includes(p))) problems.push(`${path}: a form posts to ${action}`);
    for (const name of ["Create", "Rotate", "Delete"]) {
      const count = await page.getByRole("button", { name }).or(page.getByRole("link", { name })).count();
      if (count) problems.push(`${path}: ${count} ${name} control(s)`);
    }
  }
  browser.expected.pop();

  // A forged write: the viewer's own CSRF token, same origin, still 403.
  await page.goto("/ui/keys");
  const csrf = await page.locator('input[name="csrf"]').first().inputValue().catch(() => "");
  const token = csrf || (await page.locator("body").getAttribute("hx-headers")).match(/"x-csrf-token"\s*:\s*"([^"]+)"/i)?.[1];
  assert.ok(token, "the page carries the session's CSRF token");
  const forged = [
    ["/ui/keys", { csrf: token, name: "forged", customer_id: customer, role: "admin" }],
    [`/ui/customers/${customer}/settings`, { csrf: token, threshold: "1" }],
    ["/ui/rules/external_model/toggle", { csrf: token, enabled: "false" }],
  ];
  for (const [path, form] of forged) {
    const response = await context.request.post(path, { form, headers: { origin: server.base }, maxRedirects: 0 });
    assert.equal(response.status(), 403, `POST ${path} as a viewer`);
  }
  await context.close();
  assert.deepEqual(problems, [], "every page, seen by a viewer, without write controls");
  browser.assertClean();
});
