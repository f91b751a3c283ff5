/* lifetime: the SDK's leak check (make test-c-plugins). Each task holds a
 * `size_kib` KiB buffer from init to free_state; cases.json runs many tasks
 * that succeed, fail in count_row and fail in init in ONE instance under a
 * small memory cap, so a task whose state is not freed (on any of those
 * paths) runs the instance out of memory. Counts each whole `text` field. */
#include <stdlib.h>
#include <string.h>

#include "wc_plugin.h"

typedef struct {
    char *buf;
} state;

static int init(void *s, const wc_params *params) {
    state *st = s;
    long long kib;
    bool fail;
    if (wc_param_int(params, "size_kib", 1, 1 << 20, &kib) || wc_param_flag(params, "fail_init", &fail)) return -1;
    st->buf = malloc((size_t)kib << 10);
    if (!st->buf) return wc_fail("no memory for %lld KiB", kib);
    memset(st->buf, 1, (size_t)kib << 10); /* really use the pages */
    if (fail) return wc_fail("init fails on request (fail_init)");
    return 0;
}

static int count_row(void *s, const wc_str *row, wc_counts *counts) {
    if (wc_str_eq(row[0], "fail")) return wc_fail("count_row fails on the text `fail`");
    wc_counts_add(counts, row[0].ptr, row[0].len, 1);
    return 0;
}

static void free_state(void *s) { free(((state *)s)->buf); }

const wc_plugin_def wc_plugin = {
    .name = "lifetime",
    .version = "0.1.0",
    .description = "the C SDK's leak check: each task holds size_kib KiB",
    .columns = WC_COLUMNS("text"),
    .params = WC_PARAMS({"size_kib", "256", "KiB each task holds until it is dropped"},
                        {"fail_init", "false", "make create fail after allocating"}),
    .state_size = sizeof(state),
    .init = init,
    .count_row = count_row,
    .free_state = free_state,
};
