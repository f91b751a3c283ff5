// bigrams: adjacent pairs of lowercased words of the `text` column.
//
// Words are the maximal runs of Unicode letters and digits (/[\p{L}\p{N}]+/gu)
// in the field as written; each is then lowercased (String.prototype.toLowerCase,
// locale-independent), so "Don't STOP" has the words "don", "t", "stop".
// Words shorter than `min_len` characters (code points) are dropped first;
// the pairs are those of adjacent remaining words, joined by `sep`:
// "a b c" counts "a b" and "b c". A row with fewer than two words counts
// nothing; pairs never span two rows.
import { Counter, PluginError } from "./.wc-sdk/wc_plugin.js";

const WORD = /[\p{L}\p{N}]+/gu;

export default class Bigrams extends Counter {
  static info = {
    name: "bigrams",
    version: "0.1.0",
    description: "pairs of adjacent lowercased words (runs of letters/digits) of the text column",
    columns: ["text"],
    params: [
      { name: "sep", default: " ", help: "the string joining the two words of a pair (not empty)" },
      { name: "min_len", default: "1", help: "drop words shorter than this many characters before pairing" },
    ],
  };

  constructor(params) {
    super(params); // refuses undeclared parameters
    this.sep = params.get("sep");
    if (this.sep === "") throw new PluginError("parameter `sep` must not be empty");
    this.minLen = params.int("min_len", undefined, { min: 1 });
  }

  countRow(row, counts) {
    const words = row[0].match(WORD);
    if (words === null) return;
    const sep = this.sep;
    const minLen = this.minLen;
    let prev = null;
    for (let i = 0; i < words.length; i++) {
      const w = words[i];
      // w.length counts UTF-16 units (>= code points): spread only when needed.
      if (minLen > 1 && (w.length < minLen || [...w].length < minLen)) continue;
      const word = w.toLowerCase();
      if (prev !== null) counts.add(prev + sep + word);
      prev = word;
    }
  }
}
