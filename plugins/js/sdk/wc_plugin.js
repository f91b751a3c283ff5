// Guest-side SDK for wc-host counting plugins written in JavaScript.
//
// A plugin is a subclass of `Counter` in `rule.js` -- plain JavaScript,
// testable with `node --test` -- exported as the module's default export.
// The SDK owns the WIT exports of `wc:plugin/counting-plugin@0.2.0` (`info`,
// resource `task-counter`), the batch decoding and the count map, so a
// plugin is only its rule:
//
//     import { Counter } from "./.wc-sdk/wc_plugin.js";
//
//     export default class Shout extends Counter {
//       static info = {
//         name: "shout", version: "0.1.0",
//         description: "upper-cased whitespace-separated words of text",
//         columns: ["text"],
//         params: [],
//       };
//       countRow(row, counts) {
//         for (const w of row[0].split(/\s+/)) if (w) counts.add(w.toUpperCase());
//       }
//     }
//
// Lifetime: the host creates one rule object per task (a file or a byte range
// of one), feeds it every row of that task, then takes its counts. One
// WebAssembly instance serves many tasks one after the other and the QuickJS
// heap survives between them: module-level variables, static fields and
// caches outlive a task. Keep per-task state on `this` (set in the
// constructor) and treat module-level data as read-only constants; the SDK
// gives every task a fresh rule object and a fresh `Counts`, so counts never
// cross a task boundary unless the rule smuggles them through a global.
//
// Errors: throw `new PluginError("message")` for a message the user should
// read as is (a bad parameter, say). Any other exception from the constructor
// or `countRow` fails the task with a message naming it
// (`countRow raised TypeError: ...`); it never traps the instance.
//
// Runs unchanged in Node (the unit tests) and in QuickJS (the component):
// no TextEncoder/TextDecoder, no Node APIs. A rule gets no files, network,
// environment or clock: its counts must depend on the rows and parameters.

/** An error whose message is reported to the user verbatim. */
export class PluginError extends Error {
  constructor(message) {
    super(message);
    this.name = "PluginError";
  }
}

/**
 * The `--plugin-arg key=value` pairs, in command-line order, as an array of
 * `[key, value]`, plus the rule's declared `info.params` for the defaults.
 */
export class Params {
  constructor(pairs = [], declared = []) {
    this.pairs = pairs.map(([k, v]) => [String(k), String(v)]);
    this.declared = declared;
  }

  /** Whether `key` was given. */
  has(key) {
    return this.pairs.some(([k]) => k === key);
  }

  /**
   * The last value given for `key`; else `fallback` when passed; else the
   * declared default of `key` in `info.params`; else `undefined`.
   */
  get(key, fallback) {
    for (let i = this.pairs.length - 1; i >= 0; i--) {
      if (this.pairs[i][0] === key) return this.pairs[i][1];
    }
    if (fallback !== undefined) return fallback;
    const d = this.declared.find((p) => p.name === key);
    return d ? d.default : undefined;
  }

  /** Fails on the first key not in `known`, so a typo is not silently ignored. */
  checkKnown(known) {
    for (const [k] of this.pairs) {
      if (!known.includes(k)) {
        throw new PluginError(
          `unknown parameter \`${k}\`` + (known.length ? ` (known: ${known.join(", ")})` : " (this plugin takes none)"),
        );
      }
    }
  }

  /** A boolean parameter: true/false/1/0/yes/no. */
  flag(key, fallback) {
    const v = this.get(key, fallback === undefined ? undefined : String(fallback));
    if (v === undefined || v === "") return false;
    if (v === "true" || v === "1" || v === "yes") return true;
    if (v === "false" || v === "0" || v === "no") return false;
    throw new PluginError(`parameter \`${key}\` must be true or false, got \`${v}\``);
  }

  /** An integer parameter, at least `min` and at most `max` when given. */
  int(key, fallback, { min, max } = {}) {
    const v = this.get(key, fallback === undefined ? undefined : String(fallback));
    if (v === undefined) throw new PluginError(`parameter \`${key}\` is required`);
    if (!/^[+-]?\d+$/.test(v.trim())) {
      throw new PluginError(`parameter \`${key}\` must be an integer, got \`${v}\``);
    }
    const n = Number(v.trim());
    if (!Number.isSafeInteger(n)) throw new PluginError(`parameter \`${key}\` is out of range, got \`${v}\``);
    if (min !== undefined && n < min) throw new PluginError(`parameter \`${key}\` must be at least ${min}, got ${n}`);
    if (max !== undefined && n > max) throw new PluginError(`parameter \`${key}\` must be at most ${max}, got ${n}`);
    return n;
  }
}

/**
 * Counts of one task: key (string) -> count (integer), with `add(key, n = 1)`.
 * Keys are converted to strings; zero counts are dropped when the task
 * finishes; a count must stay below 2^53 (QuickJS passes u64 as a Number).
 *
 * Backed by a prototype-less object rather than a `Map`: in QuickJS a
 * property lookup interns the key once, where a `Map` hashes the whole string
 * on every `get` and `set`; `add` is about a third faster.
 */
export class Counts {
  constructor() {
    this.o = Object.create(null);
  }

  add(key, n = 1) {
    const o = this.o;
    o[key] = (o[key] ?? 0) + n;
  }

  /** The count of `key` (0 when absent). */
  get(key) {
    return this.o[key] ?? 0;
  }

  /** `[key, count]` pairs, zeros included. */
  *entries() {
    const o = this.o;
    for (const k in o) yield [k, o[k]];
  }

  [Symbol.iterator]() {
    return this.entries();
  }

  /** The non-zero counts as a plain object (for tests). */
  toObject() {
    const out = {};
    const o = this.o;
    for (const k in o) if (o[k] !== 0) setKey(out, k, o[k]);
    return out;
  }
}

// `out[k] = v` without the `__proto__` setter of plain objects.
function setKey(out, k, v) {
  Object.defineProperty(out, k, { value: v, enumerable: true, writable: true, configurable: true });
}

/**
 * A counting rule. One object per task: `new Rule(params)`, then
 * `countRow(row, counts)` per row. Describe the plugin with `static info`.
 */
export class Counter {
  static info = { name: "", version: "0.0.0", description: "", columns: ["text"], params: [] };

  /** Checks that every given parameter is declared in `info.params`. */
  constructor(params) {
    const declared = this.constructor.info.params ?? [];
    if (params) params.checkKnown(declared.map((p) => p.name));
  }

  /** Adds one row's keys: `row` has one string per column of `info.columns`. */
  countRow(row, counts) {
    throw new PluginError(`${this.constructor.name} does not implement countRow`);
  }
}

/** The rule's `info`, completed and checked (throws a TypeError when malformed). */
export function infoOf(Rule) {
  if (typeof Rule !== "function" || !(Rule.prototype instanceof Counter)) {
    throw new TypeError("the plugin must be a class extending Counter (export default class X extends Counter)");
  }
  const i = Rule.info ?? {};
  const info = {
    name: String(i.name || Rule.name),
    version: String(i.version ?? "0.0.0"),
    description: String(i.description ?? ""),
    columns: [...(i.columns ?? [])].map(String),
    params: (i.params ?? []).map((p) => ({ name: String(p.name), default: String(p.default ?? ""), help: String(p.help ?? "") })),
  };
  if (info.columns.length === 0) throw new TypeError(`${Rule.name}.info.columns must be a non-empty array of strings`);
  return info;
}

function describe(e) {
  if (e instanceof Error) return e.message ? `${e.name}: ${e.message}` : e.name;
  try {
    return `${typeof e} ${String(e)}`;
  } catch {
    return typeof e;
  }
}

const NON_ASCII = /[^\x00-\x7f]/g;

/**
 * Splits one batch (see `feed` in wit/plugin.wit) into its values.
 *
 * `ends` are UTF-8 *byte* offsets into `values`, a JS (UTF-16) string. A batch
 * whose byte length equals its string length is ASCII (every other character
 * takes more UTF-8 bytes than UTF-16 units), so byte offsets are string
 * offsets: sliced as is. Otherwise the offsets are converted by walking the
 * string, jumping over ASCII stretches with a regular expression and counting
 * the UTF-8 width of the other characters only.
 */
export function splitBatch(values, ends) {
  const n = ends.length;
  const out = new Array(n);
  if (n === 0) return out;
  const total = ends[n - 1];
  if (total === values.length) {
    let start = 0;
    for (let i = 0; i < n; i++) {
      const end = ends[i];
      if (end < start) throw new PluginError("batch offsets are not in order");
      out[i] = values.slice(start, end);
      start = end;
    }
    return out;
  }
  let ci = 0; // string index
  let bi = 0; // UTF-8 byte offset of ci
  let next = -1; // index of the next non-ASCII character at or after ci (-1: to find)
  let start = 0;
  const len = values.length;
  for (let i = 0; i < n; i++) {
    const end = ends[i];
    if (end < bi) throw new PluginError("batch offsets are not in order");
    while (bi < end) {
      if (next < ci) {
        NON_ASCII.lastIndex = ci;
        const m = NON_ASCII.exec(values);
        next = m ? m.index : len;
      }
      if (ci < next) {
        const step = Math.min(next - ci, end - bi);
        ci += step;
        bi += step;
        continue;
      }
      if (ci >= len) throw new PluginError("batch offsets out of range");
      const c = values.charCodeAt(ci);
      if (c < 0x800) {
        ci += 1;
        bi += 2;
      } else if (c >= 0xd800 && c < 0xdc00) {
        ci += 2;
        bi += 4;
      } else {
        ci += 1;
        bi += 3;
      }
    }
    if (bi !== end) throw new PluginError("batch offset not on a character boundary");
    out[i] = values.slice(start, ci);
    start = ci;
  }
  return out;
}

/** UTF-8 length of a string. */
export function utf8Length(s) {
  NON_ASCII.lastIndex = 0;
  if (!NON_ASCII.test(s)) return s.length;
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c < 0xdc00 && i + 1 < s.length) {
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
}

/** The counts packed for the host (`packed-counts`): zeros dropped, types checked. */
export function pack(counts) {
  const o = counts.o;
  const keys = [];
  const keyEnds = [];
  const out = [];
  let at = 0;
  for (const k in o) {
    const n = o[k];
    if (n === 0) continue;
    if (typeof n !== "number" || !Number.isSafeInteger(n) || n < 0) {
      throw new PluginError(`count of ${JSON.stringify(k)} is ${String(n)}, not an integer in 0..2^53-1`);
    }
    keys.push(k);
    at += utf8Length(k);
    keyEnds.push(at);
    out.push(n);
  }
  return { keys: keys.join(""), keyEnds, counts: out };
}

/**
 * One task: what the WIT resource `task-counter` does, minus the bindings.
 * `new Task(Rule, pairs)`, `feed(values, ends)` any number of times, `finish()`
 * once. Every failure is a `PluginError` with the message the host reports.
 */
export class Task {
  constructor(Rule, pairs = []) {
    const info = infoOf(Rule);
    this.columns = info.columns.length;
    let rule;
    try {
      rule = new Rule(new Params(pairs, info.params));
    } catch (e) {
      if (e instanceof PluginError) throw e;
      throw new PluginError(`${Rule.name}(params) raised ${describe(e)}`);
    }
    this.rule = rule;
    this.counts = new Counts();
  }

  feed(values, ends) {
    if (this.counts === null) throw new PluginError("feed after finish");
    const cols = this.columns;
    if (ends.length % cols !== 0) {
      throw new PluginError(`batch of ${ends.length} values is not a whole number of ${cols}-column rows`);
    }
    const vals = splitBatch(values, ends);
    const rule = this.rule;
    const counts = this.counts;
    try {
      if (cols === 1) {
        for (let i = 0; i < vals.length; i++) rule.countRow([vals[i]], counts);
      } else {
        for (let i = 0; i < vals.length; i += cols) rule.countRow(vals.slice(i, i + cols), counts);
      }
    } catch (e) {
      if (e instanceof PluginError) throw e;
      throw new PluginError(`countRow raised ${describe(e)}`);
    }
  }

  /** The packed counts (`{keys, keyEnds, counts}`); the task is over. */
  finish() {
    if (this.counts === null) throw new PluginError("finish called twice");
    const counts = this.counts;
    this.counts = null;
    this.rule = null;
    return pack(counts);
  }

  /** Test helper: feeds whole rows (arrays of strings, or strings for one column). */
  feedRows(rows) {
    const vals = [];
    const ends = [];
    let at = 0;
    for (const row of rows) {
      for (const v of Array.isArray(row) ? row : [row]) {
        vals.push(v);
        at += utf8Length(v);
        ends.push(at);
      }
    }
    this.feed(vals.join(""), ends);
  }

  /** Test helper: `finish()` unpacked into a plain object `{key: count}`. */
  finishObject() {
    const { keys, keyEnds, counts } = this.finish();
    const vals = splitBatch(keys, keyEnds);
    const o = {};
    vals.forEach((k, i) => setKey(o, k, counts[i]));
    return o;
  }
}

/**
 * Test helper: counts `rows` (strings, or arrays of strings for several
 * columns) with `Rule` and `params` (an object or `[key, value]` pairs) through
 * the same path as the component (one batch); returns `{key: count}`. Throws
 * a `PluginError` with the message the host would report.
 */
export function count(Rule, rows, params = {}) {
  const task = new Task(Rule, Array.isArray(params) ? params : Object.entries(params));
  task.feedRows(rows);
  return task.finishObject();
}

/**
 * Test helper: checks one golden case of a cases.json (see plugins/README.md)
 * natively; throws an `Error` explaining a mismatch.
 */
export function checkCase(Rule, c) {
  const rows = c.texts ?? [c.text];
  let got;
  try {
    got = count(Rule, rows, c.params ?? {});
  } catch (e) {
    if (c.expect_error !== undefined && String(e.message).includes(c.expect_error)) return;
    throw new Error(`${c.name}: ${c.expect_error !== undefined ? `error \`${e.message}\` lacks \`${c.expect_error}\`` : `failed: ${e.message}`}`);
  }
  if (c.expect_error !== undefined) throw new Error(`${c.name}: expected an error with \`${c.expect_error}\`, got counts`);
  const want = c.expect ?? {};
  const diff = [];
  for (const k of new Set([...Object.keys(want), ...Object.keys(got)])) {
    const w = Object.hasOwn(want, k) ? want[k] : "none";
    const g = Object.hasOwn(got, k) ? got[k] : "none";
    if (w !== g) diff.push(`${JSON.stringify(k)}: want ${w}, got ${g}`);
  }
  if (diff.length) throw new Error(`${c.name}: ${diff.join("; ")}`);
}

function message(e) {
  return e instanceof PluginError ? e.message : `internal error: ${describe(e)}`;
}

/**
 * The WIT interface `counter` for `Rule`: build.sh's generated entry module
 * does `export const counter = component(Rule)`. A `result` export is an `err`
 * when it throws a string; so every failure is turned into one, never a trap.
 */
export function component(Rule) {
  const info = infoOf(Rule);
  class TaskCounter {
    constructor(task) {
      this.task = task;
    }
    static create(params) {
      try {
        return new TaskCounter(new Task(Rule, params));
      } catch (e) {
        throw message(e);
      }
    }
    feed(values, ends) {
      try {
        this.task.feed(values, ends);
      } catch (e) {
        throw message(e);
      }
    }
    finish() {
      try {
        return this.task.finish();
      } catch (e) {
        throw message(e);
      } finally {
        this.task.rule = null;
        this.task.counts = null;
      }
    }
  }
  return {
    info() {
      return info;
    },
    TaskCounter,
  };
}
