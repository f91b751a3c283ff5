// Native unit tests: `node --test` in this folder (Node >= 18, no install).
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import Rule from "./rule.js";
import { count, checkCase } from "./.wc-sdk/wc_plugin.js";

test("consecutive spaces give empty strings", () => {
  assert.deepEqual(count(Rule, ["a  b "]), { a: 1, "": 2, b: 1 });
});

// The golden cases the host checks on the component, checked natively too.
const cases = JSON.parse(readFileSync(new URL("./cases.json", import.meta.url), "utf8"));
for (const c of cases) test(`cases.json: ${c.name}`, () => checkCase(Rule, c));
