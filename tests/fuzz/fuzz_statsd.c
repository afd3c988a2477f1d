/* StatsD and DogStatsD lines (collector/format_statsd.h) as the statsd input reads a datagram: the
 * whole datagram as one line, then every line of it split at newlines.
 *
 * What must hold: a line kept is appended as one line holding a JSON object with no duplicate
 * key (repeated tags become arrays, not repeated keys) and kind "metric"; a refused line leaves
 * the output as it was and says why. */
#include "fuzz.h"
#include "collector/format_statsd.h"

static void one_line(const char *line, size_t len)
{
    struct recv_time rt = fuzz_recv_time();
    struct buf out = {0};
    buf_puts(&out, "previous");
    const char *err = NULL;
    int rc = statsd_to_event(line, len, "statsd", &rt, &out, &err);
    FUZZ_CHECK(out.len >= 8 && memcmp(out.data, "previous", 8) == 0,
               "statsd_to_event changed what the output held before");
    if (rc) {
        FUZZ_CHECK(rc == -EINVAL && err, "returned %d (reason %s)", rc, err ? err : "none");
        FUZZ_CHECK(out.len == 8, "refused (%s) but appended to the output", err);
    } else {
        const char *ev = out.data + 8;
        size_t n = out.len - 8;
        fuzz_check_object("statsd_to_event", ev, n, JSON_ALLOW_NUL | JSON_REJECT_DUPLICATES);
        json_t *j = json_loadb(ev, n, JSON_ALLOW_NUL, NULL);
        const char *kind = json_string_value(json_object_get(j, "kind"));
        FUZZ_CHECK(kind && !strcmp(kind, "metric"), "event of kind %s: %.*s",
                   kind ? kind : "(none)", (int)n, ev);
        json_decref(j);
    }
    buf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    one_line(s, size);
    for (size_t p = 0; p < size;) {
        const char *nl = memchr(s + p, '\n', size - p);
        size_t e = nl ? (size_t)(nl - s) : size;
        if (e > p && !(nl == NULL && p == 0))
            one_line(s + p, e - p);
        p = e + 1;
    }
    return 0;
}
