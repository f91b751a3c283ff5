/* wc_plugin.h: the C SDK for wc-host counting plugins (wc:plugin@0.2.0).
 *
 * A plugin is one C file, `rule.c`, that defines `wc_plugin` (what the
 * plugin says about itself and its three callbacks). The SDK owns the rest:
 * the WIT exports (`info`, the `task-counter` resource), batch decoding, the
 * count table, the packed `finish`, error strings and freeing everything.
 *
 *     #include "wc_plugin.h"
 *
 *     static int count_row(void *state, const wc_str *row, wc_counts *counts) {
 *         (void)state;
 *         wc_counts_add(counts, row[0].ptr, row[0].len, 1);   // the whole field
 *         return 0;
 *     }
 *
 *     const wc_plugin_def wc_plugin = {
 *         .name = "fields", .version = "0.1.0",
 *         .description = "counts each text field",
 *         .columns = WC_COLUMNS("text"),
 *         .count_row = count_row,
 *     };
 *
 * Per-task lifetime (one instance serves many tasks, one after the other):
 *   create  the SDK checks the parameter keys, allocates `state_size` zeroed
 *           bytes (if > 0) and calls `init(state, params)`;
 *   feed    `count_row(state, row, counts)` once per row, in file order;
 *   finish  the counts are handed to the host (no copy);
 *   drop    `free_state(state)` (if set), then the SDK frees the state block,
 *           the counts and the task itself.
 * `free_state` also runs when `init` fails (on a zeroed-then-partly-set
 * state), so it must accept whatever `init` left behind. Anything the rule
 * keeps across rows belongs in `state`, never in globals: the counts would
 * otherwise depend on how the input was split into tasks.
 *
 * Strings: `wc_str` is (ptr, len) UTF-8, NOT NUL-terminated. A row's values
 * and the parameter values are valid only during the call that receives them;
 * copy what you keep (`wc_strdup`). `wc_counts_add` copies the key.
 *
 * Errors: return `wc_fail("fmt", ...)` (which returns -1) from `init` or
 * `count_row`; the message goes to the user as the task's error. Out of
 * memory aborts (a trap in the component: the host fails the task).
 *
 * The same SDK compiles natively (no WIT bindings) for unit tests; see
 * `wc_task_*` below and plugins/c/template/test_rule.c.
 */
#ifndef WC_PLUGIN_H
#define WC_PLUGIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A UTF-8 string slice, not NUL-terminated. */
typedef struct {
    const char *ptr;
    size_t len;
} wc_str;

/* A literal or C string as a wc_str. */
#define WC_STR(lit) ((wc_str){(lit), sizeof(lit) - 1})
wc_str wc_cstr(const char *s);
bool wc_str_eq(wc_str a, const char *cstr);
/* A malloc'd NUL-terminated copy (free it in free_state). */
char *wc_strdup(wc_str s);

/* One declared parameter (`--plugin-arg NAME=VALUE`). */
typedef struct {
    const char *name;
    /* The value used when the parameter is not given ("" = absent). */
    const char *default_value;
    /* One line for `wc-host plugin info`. */
    const char *help;
} wc_param_info;

/* The --plugin-arg pairs of one task, in command-line order. */
typedef struct wc_params wc_params;
/* The counts of one task: an open-addressing table, keys in one arena. */
typedef struct wc_counts wc_counts;

/* The plugin's definition; `rule.c` defines `const wc_plugin_def wc_plugin`. */
typedef struct {
    const char *name;        /* short name, e.g. "words" */
    const char *version;     /* the plugin's own version, e.g. "0.1.0" */
    const char *description; /* one line */
    /* CSV header names read, NULL-terminated; row[i] follows this order. */
    const char *const *columns;
    /* Declared parameters, terminated by an entry with name NULL; NULL = none. */
    const wc_param_info *params;
    /* Bytes of per-task state the SDK allocates zeroed (0 = no state). */
    size_t state_size;
    /* Optional: reads the parameters into `state`; 0, or wc_fail(...). */
    int (*init)(void *state, const wc_params *params);
    /* Adds one row's keys: `row` has one value per column. 0, or wc_fail(...). */
    int (*count_row)(void *state, const wc_str *row, wc_counts *counts);
    /* Optional: frees what `init`/`count_row` allocated inside `state`. */
    void (*free_state)(void *state);
} wc_plugin_def;

extern const wc_plugin_def wc_plugin;

/* A NULL-terminated column list: `.columns = WC_COLUMNS("author", "text")`. */
#define WC_COLUMNS(...) ((const char *const[]){__VA_ARGS__, NULL})
/* A parameter list: `.params = WC_PARAMS({"min", "6", "shortest word"})`. */
#define WC_PARAMS(...) ((const wc_param_info[]){__VA_ARGS__, {NULL, NULL, NULL}})

/* ---- scanning -------------------------------------------------------- */

/* The first `byte` in [p, end), or NULL: memchr for short tokens. It reads
 * 8 bytes at a time inline, where wasi-libc's memchr is an out-of-line call
 * working on 4-byte words (the template's split went from ~0.41 to ~0.34 s
 * of CPU on a 59 MB CSV with it). */
static inline const char *wc_find_byte(const char *p, const char *end, char byte) {
    const uint64_t ones = 0x0101010101010101ULL, low7 = 0x7f7f7f7f7f7f7f7fULL;
    const uint64_t pattern = ones * (uint8_t)byte;
    while (end - p >= 8) {
        uint64_t w;
        __builtin_memcpy(&w, p, 8);
        w ^= pattern;
        /* The top bit of each byte of w that is zero (exact: no carries). */
        uint64_t zero = ~(((w & low7) + low7) | w) & ~low7;
        if (zero) return p + (__builtin_ctzll(zero) >> 3);
        p += 8;
    }
    for (; p < end; p++)
        if (*p == byte) return p;
    return NULL;
}

/* ---- errors ---------------------------------------------------------- */

/* Records the task's error message (printf format) and returns -1. */
int wc_fail(const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;
/* The last message recorded by wc_fail (or the SDK), "" if none. */
const char *wc_last_error(void);

/* ---- parameters (valid during init only) ----------------------------- */

/* The last value given for `name`, else its declared default; the result's
 * ptr is NULL when `name` is not declared at all. */
wc_str wc_param(const wc_params *params, const char *name);
/* Whether `name` was given on the command line. */
bool wc_param_given(const wc_params *params, const char *name);
/* An integer in [min, max]; 0, or -1 with "parameter `NAME` must be ...". */
int wc_param_int(const wc_params *params, const char *name, long long min, long long max, long long *out);
/* true/false/1/0/yes/no; 0, or -1 with "parameter `NAME` must be true or false ...". */
int wc_param_flag(const wc_params *params, const char *name, bool *out);
/* Number of pairs given, and pair i (for rules with free-form keys). */
size_t wc_params_len(const wc_params *params);
wc_str wc_params_key(const wc_params *params, size_t i);
wc_str wc_params_value(const wc_params *params, size_t i);

/* ---- counts ---------------------------------------------------------- */

/* Adds `n` to key (ptr, len); copies the key the first time it is seen. */
void wc_counts_add(wc_counts *counts, const char *ptr, size_t len, uint64_t n);
/* The count of a key (0 if absent). */
uint64_t wc_counts_get(const wc_counts *counts, const char *ptr, size_t len);
/* Number of distinct keys, and the sum of all counts. */
size_t wc_counts_len(const wc_counts *counts);
uint64_t wc_counts_total(const wc_counts *counts);
/* Key i and its count, in the order first added (i < wc_counts_len). */
wc_str wc_counts_key(const wc_counts *counts, size_t i);
uint64_t wc_counts_count(const wc_counts *counts, size_t i);

/* ---- tasks (what the WIT exports call; also for native tests) -------- */

typedef struct wc_task wc_task;
typedef struct {
    const char *key;
    const char *value;
} wc_kv;

/* `create`: NULL on error (message in wc_last_error()). */
wc_task *wc_task_new(const wc_kv *params, size_t n_params);
/* `feed`: values concatenated, ends[i] = byte offset where value i ends. */
int wc_task_feed(wc_task *task, const char *values, size_t values_len, const uint32_t *ends, size_t n_ends);
/* Feeds NUL-terminated values, row-major (n_values = rows * columns). */
int wc_task_feed_values(wc_task *task, const char *const *values, size_t n_values);
/* The task's counts so far. */
const wc_counts *wc_task_counts(const wc_task *task);
/* `drop`: frees the rule's state, the counts and the task. */
void wc_task_free(wc_task *task);

#ifdef __cplusplus
}
#endif

#endif
