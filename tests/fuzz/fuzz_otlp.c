/* OTLP/HTTP JSON export requests (collector/otlp.h): the same body parsed as logs, traces and
 * metrics, as the http input does for /v1/logs, /v1/traces and /v1/metrics.
 *
 * What must hold for each signal: the count returned is the number of events emitted, or
 * -EINVAL with a reason and no event; every event is one line holding a JSON object that
 * jansson loads with no duplicate key (attribute keys are merged into one object, so clashes
 * must be resolved, not repeated; otlp_parse reads the body with jansson, so a duplicate
 * member of the body is already gone). */
#include "fuzz.h"
#include "collector/otlp.h"

struct ctx {
    const char *signal;
    int events;
};

static void on_event(void *ud, const char *json, size_t len)
{
    struct ctx *c = ud;
    c->events++;
    fuzz_check_object(c->signal, json, len, JSON_ALLOW_NUL | JSON_REJECT_DUPLICATES);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const names[] = {"otlp logs", "otlp traces", "otlp metrics"};
    static const enum otlp_signal sigs[] = {OTLP_LOGS, OTLP_TRACES, OTLP_METRICS};
    const char *body = (const char *)data;
    struct recv_time rt = fuzz_recv_time();
    for (int s = 0; s < 3; s++) {
        struct ctx c = {names[s], 0};
        const char *err = NULL;
        int n = otlp_parse(sigs[s], body, size, "otlp", &rt, on_event, &c, &err);
        if (n < 0) {
            FUZZ_CHECK(n == -EINVAL && err, "%s: returned %d (reason %s)", names[s], n,
                       err ? err : "none");
            FUZZ_CHECK(c.events == 0, "%s: refused the body (%s) after emitting %d events",
                       names[s], err, c.events);
        } else {
            FUZZ_CHECK(n == c.events, "%s: returned %d but emitted %d events", names[s], n,
                       c.events);
        }
    }
    return 0;
}
