// Unit tests of the JS SDK, natively: `node --test plugins/js/test`.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  Counter, Counts, Params, PluginError, Task, component, count, checkCase, pack, splitBatch, utf8Length,
} from "../sdk/wc_plugin.js";

class Words extends Counter {
  static info = {
    name: "words", version: "1.2.3", description: "d", columns: ["text"],
    params: [{ name: "min", default: "1", help: "shortest word" }, { name: "upper", default: "false", help: "h" }],
  };
  constructor(params) {
    super(params);
    this.min = params.int("min", undefined, { min: 1 });
    this.upper = params.flag("upper");
  }
  countRow(row, counts) {
    for (const w of row[0].split(" ")) if (w.length >= this.min) counts.add(this.upper ? w.toUpperCase() : w);
  }
}

class Pairs extends Counter {
  static info = { name: "pairs", columns: ["author", "text"], params: [] };
  countRow([author, text], counts) {
    counts.add(`${author}/${text}`, 2);
  }
}

// A reference: UTF-8 bytes through Buffer (Node only).
function batch(vals) {
  const ends = [];
  let at = 0;
  for (const v of vals) ends.push((at += Buffer.byteLength(v)));
  return [vals.join(""), ends];
}

test("splitBatch: ASCII and every UTF-8 width, values split at every position", () => {
  const alphabet = ["a", " ", "é", "日", "😀", "\u0000", "ß", "\u07ff", "\u0800", "\uffff", "\u{10ffff}"];
  let seed = 7;
  const rnd = (n) => ((seed = (seed * 1103515245 + 12345) % 2147483648), seed % n);
  for (let round = 0; round < 500; round++) {
    const vals = [];
    for (let i = rnd(6); i >= 0; i--) {
      let v = "";
      for (let j = rnd(5); j > 0; j--) v += alphabet[rnd(alphabet.length)];
      vals.push(round % 3 === 0 ? v.replace(/[^\x00-\x7f]/gu, "x") : v);
    }
    const [values, ends] = batch(vals);
    assert.deepEqual(splitBatch(values, ends), vals);
  }
  assert.deepEqual(splitBatch("", []), []);
  assert.deepEqual(splitBatch("", [0, 0]), ["", ""]);
});

test("splitBatch: bad offsets are errors", () => {
  assert.throws(() => splitBatch("日本", [1, 6]), /not on a character boundary/);
  assert.throws(() => splitBatch("日本", [4, 3]), /not on a character boundary|not in order/);
  assert.throws(() => splitBatch("ab", [2, 1]), /not in order/);
  assert.throws(() => splitBatch("é", [9]), /out of range/);
});

test("utf8Length matches Buffer.byteLength", () => {
  for (const s of ["", "abc", "é", "日本", "😀x", "a\u07ff\u0800\u{10ffff}"]) assert.equal(utf8Length(s), Buffer.byteLength(s), s);
});

test("pack: keys concatenated with UTF-8 byte ends, zeros dropped, bad counts refused", () => {
  const c = new Counts();
  c.add("é");
  c.add("ab", 3);
  c.add("z", 0);
  c.add("__proto__");
  c.add("constructor");
  assert.deepEqual(pack(c), { keys: "éab__proto__constructor", keyEnds: [2, 4, 13, 24], counts: [1, 3, 1, 1] });
  const bad = new Counts();
  bad.add("x", -1);
  assert.throws(() => pack(bad), /count of "x" is -1/);
  const frac = new Counts();
  frac.add("x", 0.5);
  assert.throws(() => pack(frac), PluginError);
});

test("Params: last value wins, declared defaults, int/flag checks, unknown keys", () => {
  assert.deepEqual(count(Words, ["a bb ccc"]), { a: 1, bb: 1, ccc: 1 });
  assert.deepEqual(count(Words, ["a bb ccc"], [["min", "9"], ["min", "2"]]), { bb: 1, ccc: 1 });
  assert.deepEqual(count(Words, ["a bb"], { upper: "yes" }), { A: 1, BB: 1 });
  assert.throws(() => count(Words, ["a"], { min: "x" }), /parameter `min` must be an integer, got `x`/);
  assert.throws(() => count(Words, ["a"], { min: "0" }), /parameter `min` must be at least 1, got 0/);
  assert.throws(() => count(Words, ["a"], { upper: "maybe" }), /parameter `upper` must be true or false/);
  assert.throws(() => count(Words, ["a"], { mni: "2" }), /unknown parameter `mni` \(known: min, upper\)/);
  const p = new Params([["k", "v"]]);
  assert.equal(p.get("k"), "v");
  assert.equal(p.get("other", "d"), "d");
  assert.equal(p.get("other"), undefined);
});

test("several columns arrive in info.columns order", () => {
  assert.deepEqual(count(Pairs, [["ann", "x"], ["bob", "é"], ["ann", "x"]]), { "ann/x": 4, "bob/é": 2 });
  const t = new Task(Pairs, []);
  assert.throws(() => t.feed("abc", [1, 2, 3]), /not a whole number of 2-column rows/);
});

test("component: info, create/feed/finish, errors are thrown strings (err results), never traps", () => {
  const wit = component(Words);
  assert.deepEqual(wit.info(), {
    name: "words", version: "1.2.3", description: "d", columns: ["text"],
    params: [{ name: "min", default: "1", help: "shortest word" }, { name: "upper", default: "false", help: "h" }],
  });
  const t = wit.TaskCounter.create([["min", "2"]]);
  t.feed(...batch(["a bb", "日本 é"]));
  assert.deepEqual(t.finish(), { keys: "bb日本", keyEnds: [2, 8], counts: [1, 1] });
  assert.throws(() => t.finish(), (e) => e === "finish called twice");
  assert.throws(() => wit.TaskCounter.create([["min", "x"]]), (e) => typeof e === "string" && e.includes("parameter `min`"));

  class Throws extends Counter {
    static info = { name: "t", columns: ["text"], params: [] };
    countRow(row) {
      return row[0].nope.deeper;
    }
  }
  const t2 = component(Throws).TaskCounter.create([]);
  assert.throws(() => t2.feed("x", [1]), (e) => typeof e === "string" && e.startsWith("countRow raised TypeError"));

  class BadCtor extends Counter {
    static info = { name: "b", columns: ["text"], params: [] };
    constructor(params) {
      super(params);
      throw new RangeError("boom");
    }
  }
  assert.throws(() => component(BadCtor).TaskCounter.create([]), (e) => e === "BadCtor(params) raised RangeError: boom");
  class ThrowsString extends Throws {
    countRow() {
      throw "plain";
    }
  }
  const t3 = component(ThrowsString).TaskCounter.create([]);
  assert.throws(() => t3.feed("x", [1]), (e) => e === "countRow raised string plain");
});

test("each task gets a fresh rule and fresh counts", () => {
  const wit = component(Words);
  const a = wit.TaskCounter.create([]);
  a.feed(...batch(["x y"]));
  const b = wit.TaskCounter.create([]);
  b.feed(...batch(["x"]));
  assert.deepEqual(a.finish().counts, [1, 1]);
  assert.deepEqual(b.finish(), { keys: "x", keyEnds: [1], counts: [1] });
});

test("checkCase reports mismatches and missing errors", () => {
  checkCase(Words, { name: "ok", text: "a a", expect: { a: 2 } });
  checkCase(Words, { name: "err", text: "", params: { min: "x" }, expect_error: "parameter `min`" });
  assert.throws(() => checkCase(Words, { name: "m", text: "a", expect: { a: 2 } }), /"a": want 2, got 1/);
  assert.throws(() => checkCase(Words, { name: "e", text: "a", expect_error: "boom" }), /expected an error/);
  assert.throws(() => checkCase(Words, { name: "p", text: "constructor", expect: {} }), /"constructor": want none, got 1/);
});

test("a rule must extend Counter and read at least one column", () => {
  assert.throws(() => component(class {}), /extending Counter/);
  class NoCols extends Counter {
    static info = { name: "n", columns: [], params: [] };
  }
  assert.throws(() => component(NoCols), /columns must be a non-empty/);
});
