/* Native tests of the SDK itself: the count table and the parameter helpers.
 * Built with a small rule of its own (below). `make test-c-plugins` runs it:
 *   cc -I plugins/c/sdk plugins/c/sdk/test_sdk.c plugins/c/sdk/wc_plugin.c && ./a.out */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wc_plugin.h"

static int failures;
#define CHECK(cond)                                                      \
    do {                                                                 \
        if (!(cond)) {                                                   \
            printf("FAIL %s:%d: %s (%s)\n", __FILE__, __LINE__, #cond, wc_last_error()); \
            failures++;                                                  \
        }                                                                \
    } while (0)

/* A rule with parameters: counts row[1] `times` times when row[0] is at
 * least `min` bytes long. */
typedef struct {
    long long min;
    bool twice;
    char *tag;
} state;

static int init(void *s, const wc_params *params) {
    state *st = s;
    if (wc_param_int(params, "min", 0, 100, &st->min) || wc_param_flag(params, "twice", &st->twice)) return -1;
    st->tag = wc_strdup(wc_param(params, "tag"));
    if (st->tag[0] == '!') return wc_fail("parameter `tag` must not start with `!`");
    return 0;
}

static int count_row(void *s, const wc_str *row, wc_counts *counts) {
    state *st = s;
    if (wc_str_eq(row[0], "boom")) return wc_fail("row says boom");
    if ((long long)row[0].len >= st->min) wc_counts_add(counts, row[1].ptr, row[1].len, st->twice ? 2 : 1);
    return 0;
}

static void free_state(void *s) { free(((state *)s)->tag); }

const wc_plugin_def wc_plugin = {
    .name = "sdk-test",
    .version = "0.0.0",
    .description = "the SDK's own test rule",
    .columns = WC_COLUMNS("a", "b"),
    .params = WC_PARAMS({"min", "1", "shortest a"}, {"twice", "false", "count twice"}, {"tag", "", "a tag"}),
    .state_size = sizeof(state),
    .init = init,
    .count_row = count_row,
    .free_state = free_state,
};

/* Keys of every length up to 40, and variants differing in one byte. */
static size_t samples(char keys[][48], size_t max) {
    size_t n = 0;
    keys[n++][0] = 0;
    for (size_t len = 1; len <= 40; len++) {
        char base[48];
        for (size_t i = 0; i < len; i++) base[i] = (char)('a' + i * 7 % 26);
        base[len] = 0;
        strcpy(keys[n++], base);
        size_t at[3] = {0, len / 2, len - 1};
        for (int k = 0; k < 3; k++) {
            char v[48];
            strcpy(v, base);
            v[at[k]] = 'Z';
            int dup = 0;
            for (size_t j = 0; j < n; j++) dup |= strcmp(keys[j], v) == 0;
            if (!dup) strcpy(keys[n++], v);
        }
    }
    const char *extra[] = {"é", "日本", "😀", "a b", "\n", "café", "cafe"};
    for (size_t i = 0; i < 7; i++) strcpy(keys[n++], extra[i]);
    if (n > max) abort();
    return n;
}

static void test_counts(void) {
    static char keys[200][48];
    size_t n = samples(keys, 200);
    wc_task *t = wc_task_new(NULL, 0);
    wc_counts *c = (wc_counts *)wc_task_counts(t);
    for (size_t i = 0; i < n; i++) {
        wc_counts_add(c, keys[i], strlen(keys[i]), 1);
        wc_counts_add(c, keys[i], strlen(keys[i]), 2);
    }
    CHECK(wc_counts_len(c) == n);
    CHECK(wc_counts_total(c) == 3 * n);
    for (size_t i = 0; i < n; i++) {
        CHECK(wc_counts_get(c, keys[i], strlen(keys[i])) == 3);
        wc_str k = wc_counts_key(c, i); /* insertion order */
        CHECK(k.len == strlen(keys[i]) && memcmp(k.ptr, keys[i], k.len) == 0);
    }
    CHECK(wc_counts_get(c, "missing", 7) == 0);
    wc_task_free(t);

    /* Growth: 50 000 keys, half of them added twice. */
    t = wc_task_new(NULL, 0);
    c = (wc_counts *)wc_task_counts(t);
    char buf[32];
    for (unsigned i = 0; i < 50000; i++) {
        int len = snprintf(buf, sizeof buf, "k%u", i);
        wc_counts_add(c, buf, (size_t)len, 1);
        len = snprintf(buf, sizeof buf, "k%u", i / 2);
        wc_counts_add(c, buf, (size_t)len, 1);
    }
    CHECK(wc_counts_len(c) == 50000);
    CHECK(wc_counts_get(c, "k0", 2) == 3 && wc_counts_get(c, "k24999", 6) == 3 && wc_counts_get(c, "k25000", 6) == 1);
    wc_task_free(t);
}

static void test_params_and_rows(void) {
    wc_task *t = wc_task_new((const wc_kv[]){{"min", "3"}, {"twice", "yes"}, {"min", "2"}}, 3);
    CHECK(t != NULL);
    CHECK(wc_task_feed_values(t, (const char *[]){"ab", "x", "a", "y", "abc", "x"}, 6) == 0);
    CHECK(wc_counts_get(wc_task_counts(t), "x", 1) == 4 && wc_counts_get(wc_task_counts(t), "y", 1) == 0);
    CHECK(wc_task_feed_values(t, (const char *[]){"ab"}, 1) == -1);
    CHECK(strstr(wc_last_error(), "whole number of 2-column rows") != NULL);
    CHECK(wc_task_feed_values(t, (const char *[]){"boom", "x"}, 2) == -1);
    CHECK(strcmp(wc_last_error(), "row says boom") == 0);
    /* Offsets: decreasing, past the end, inside a UTF-8 character. */
    CHECK(wc_task_feed(t, "abc", 3, (const uint32_t[]){2, 1}, 2) == -1);
    CHECK(wc_task_feed(t, "abc", 3, (const uint32_t[]){2, 4}, 2) == -1);
    CHECK(wc_task_feed(t, "éa", 3, (const uint32_t[]){1, 3}, 2) == -1);
    CHECK(strstr(wc_last_error(), "char boundary") != NULL);
    CHECK(wc_task_feed(t, "éa", 3, (const uint32_t[]){2, 3}, 2) == 0);
    wc_task_free(t);

    CHECK(wc_task_new((const wc_kv[]){{"min", "x"}}, 1) == NULL);
    CHECK(strcmp(wc_last_error(), "parameter `min` must be an integer from 0 to 100, got `x`") == 0);
    CHECK(wc_task_new((const wc_kv[]){{"min", "101"}}, 1) == NULL);
    CHECK(wc_task_new((const wc_kv[]){{"min", " 5"}}, 1) == NULL);
    CHECK(wc_task_new((const wc_kv[]){{"min", ""}}, 1) == NULL);
    CHECK(wc_task_new((const wc_kv[]){{"twice", "maybe"}}, 1) == NULL);
    CHECK(strcmp(wc_last_error(), "parameter `twice` must be true or false, got `maybe`") == 0);
    CHECK(wc_task_new((const wc_kv[]){{"tag", "!x"}}, 1) == NULL); /* free_state frees the tag */
    CHECK(wc_task_new((const wc_kv[]){{"nope", "1"}}, 1) == NULL);
    CHECK(strcmp(wc_last_error(), "unknown parameter `nope` (known: min, twice, tag)") == 0);
}

int main(void) {
    test_counts();
    test_params_and_rows();
    if (failures) {
        printf("%d failure(s)\n", failures);
        return 1;
    }
    printf("test_sdk: ok\n");
    return 0;
}
