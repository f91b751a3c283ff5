/* Native unit test of rule.c, built with the host's cc against the SDK:
 *   plugins/c/build.sh --test DIR     (also run by every build) */
#include <stdio.h>
#include <string.h>

#include "wc_plugin.h"

static int failures;

/* Counts `rows` (one `text` value each) with a fresh task. */
static wc_task *count(const char *const *rows, size_t n) {
    wc_task *task = wc_task_new(NULL, 0);
    if (!task || wc_task_feed_values(task, rows, n) != 0) {
        printf("FAIL: unexpected error: %s\n", wc_last_error());
        failures++;
    }
    return task;
}

static void expect(const wc_task *task, const char *key, uint64_t want) {
    uint64_t got = task ? wc_counts_get(wc_task_counts(task), key, strlen(key)) : 0;
    if (got != want) {
        printf("FAIL: count of \"%s\": got %llu, want %llu\n", key, (unsigned long long)got, (unsigned long long)want);
        failures++;
    }
}

static void expect_keys(const wc_task *task, size_t want) {
    size_t got = task ? wc_counts_len(wc_task_counts(task)) : 0;
    if (got != want) {
        printf("FAIL: %zu distinct keys, want %zu\n", got, want);
        failures++;
    }
}

int main(void) {
    wc_task *t;

    t = count((const char *[]){"a b a"}, 1);
    expect(t, "a", 2), expect(t, "b", 1), expect_keys(t, 2);
    wc_task_free(t);

    t = count((const char *[]){"a  b"}, 1); /* two spaces: one empty string */
    expect(t, "a", 1), expect(t, "", 1), expect(t, "b", 1), expect_keys(t, 3);
    wc_task_free(t);

    t = count((const char *[]){" a "}, 1);
    expect(t, "", 2), expect(t, "a", 1), expect_keys(t, 2);
    wc_task_free(t);

    t = count((const char *[]){"", "Café café\t日本"}, 2);
    expect(t, "", 1), expect(t, "Café", 1), expect(t, "café\t日本", 1), expect_keys(t, 3);
    wc_task_free(t);

    /* No parameters: any key is refused with the host's wording. */
    t = wc_task_new((const wc_kv[]){{"case", "keep"}}, 1);
    if (t || !strstr(wc_last_error(), "unknown parameter `case`")) {
        printf("FAIL: parameter `case` accepted or wrong message: %s\n", wc_last_error());
        failures++;
    }
    wc_task_free(t);

    if (failures) {
        printf("%d failure(s)\n", failures);
        return 1;
    }
    printf("test_rule: ok\n");
    return 0;
}
