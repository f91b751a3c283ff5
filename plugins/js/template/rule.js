// __PLUGIN_NAME__: Python's text.split(" ") over the `text` column.
// Consecutive spaces give empty strings; an empty field gives one "".
import { Counter } from "./.wc-sdk/wc_plugin.js";

export default class Rule extends Counter {
  static info = {
    name: "__PLUGIN_NAME__",
    version: "0.1.0",
    description: 'text.split(" ") over the text column',
    columns: ["text"], // CSV header names; row[i] follows this order
    params: [], // [{ name: "min_len", default: "1", help: "..." }]
  };

  countRow(row, counts) {
    for (const token of row[0].split(" ")) counts.add(token);
  }
}
