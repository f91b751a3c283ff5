// Native unit tests: `node --test plugins/bigrams`.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import Bigrams from "./rule.js";
import { count, checkCase } from "./.wc-sdk/wc_plugin.js";

test("a b c gives a b and b c", () => {
  assert.deepEqual(count(Bigrams, ["a b c"]), { "a b": 1, "b c": 1 });
});

test("a repeated word pairs with itself", () => {
  assert.deepEqual(count(Bigrams, ["la la la"]), { "la la": 2 });
});

test("digits and letters of every script are words; marks and symbols are not", () => {
  // U+0301 (combining acute) is a mark, not a letter: it splits "e\u0301t".
  assert.deepEqual(count(Bigrams, ["ΑΒΓ δ٣ e\u0301t"]), { "αβγ δ٣": 1, "δ٣ e": 1, "e t": 1 });
});

test("lowercasing after matching: a word never splits on lowercasing", () => {
  // "İ".toLowerCase() is "i̇" (i + U+0307, a mark): kept inside the word.
  assert.deepEqual(count(Bigrams, ["İstanbul X"]), { "i\u0307stanbul x": 1 });
});

test("min_len counts code points", () => {
  assert.deepEqual(count(Bigrams, ["😀😀 a 😀b"], { min_len: "2" }), {});
  assert.deepEqual(count(Bigrams, ["xx 😀 yy"], { min_len: "2" }), { "xx yy": 1 });
  // U+1D400 (a letter): two UTF-16 units, one character.
  assert.deepEqual(count(Bigrams, ["xx \u{1D400} yy"], { min_len: "2" }), { "xx yy": 1 });
  assert.deepEqual(count(Bigrams, ["xx \u{1D400} yy"]), { "xx \u{1D400}": 1, "\u{1D400} yy": 1 });
});

test("parameters: last value wins", () => {
  assert.deepEqual(count(Bigrams, ["a b"], [["sep", "+"], ["sep", "/"]]), { "a/b": 1 });
});

const cases = JSON.parse(readFileSync(new URL("./cases.json", import.meta.url), "utf8"));
for (const c of cases) test(`cases.json: ${c.name}`, () => checkCase(Bigrams, c));
