/* __PLUGIN_NAME__: Python's text.split(" ") over the `text` column.
 *
 * Split on the single ASCII space only: consecutive spaces give empty
 * strings, an empty field gives one empty string, tabs, newlines and
 * punctuation stay inside tokens. The SDK (plugins/c/sdk/wc_plugin.h) does
 * everything else. */
#include "wc_plugin.h"

/* One row: row[0] is the `text` column (UTF-8, not NUL-terminated). */
static int count_row(void *state, const wc_str *row, wc_counts *counts) {
    (void)state; /* no parameters, nothing kept across rows */
    const char *p = row[0].ptr, *end = p + row[0].len;
    const char *space;
    while ((space = wc_find_byte(p, end, ' ')) != NULL) {
        wc_counts_add(counts, p, (size_t)(space - p), 1);
        p = space + 1;
    }
    wc_counts_add(counts, p, (size_t)(end - p), 1);
    return 0;
}

const wc_plugin_def wc_plugin = {
    .name = "__PLUGIN_NAME__",
    .version = "0.1.0",
    .description = "Python's text.split(\" \") over the text column",
    .columns = WC_COLUMNS("text"),
    .count_row = count_row,
};
