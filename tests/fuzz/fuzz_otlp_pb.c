/* OTLP protobuf export requests (collector/otlp.h, OTLP_PROTOBUF): the same bytes decoded as
 * ExportLogsServiceRequest, ExportTraceServiceRequest and ExportMetricsServiceRequest, as the
 * http input does for /v1/logs, /v1/traces and /v1/metrics with application/x-protobuf.
 *
 * What must hold for each signal: no crash, no read past the input, no unbounded recursion (the
 * decoder walks the wire form before protobuf-c unpacks it); the count returned is the number of
 * events handed over (protobuf has no invalid records: a body decodes whole or not at all), or
 * -EINVAL / -E2BIG with a reason and nothing handed over; every event is one line holding a JSON
 * object with no duplicate key, whatever bytes the strings held (invalid UTF-8, NUL, quotes); a
 * second decode by the same decoder gives the same bytes. */
#include "fuzz.h"
#include "collector/otlp.h"

struct ctx {
    const char *signal;
    int events, invalid;
    struct buf all;
};

static void on_event(void *ud, const char *json, size_t len)
{
    struct ctx *c = ud;
    c->events++;
    fuzz_check_object(c->signal, json, len, JSON_ALLOW_NUL | JSON_REJECT_DUPLICATES);
    buf_append(&c->all, json, len);
    buf_putc(&c->all, '\n');
}

static void on_invalid(void *ud, const char *why, const char *raw, size_t len)
{
    struct ctx *c = ud;
    c->invalid++;
    /* Only an event that could not be written (out of memory) is handed over as invalid. */
    FUZZ_CHECK(why && !strncmp(why, "out of memory", 13), "%s: protobuf record invalid: %s",
               c->signal, why ? why : "(null)");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const names[] = {"otlp logs", "otlp traces", "otlp metrics"};
    static const enum otlp_signal sigs[] = {OTLP_LOGS, OTLP_TRACES, OTLP_METRICS};
    struct recv_time rt = fuzz_recv_time();
    struct otlp_decoder *d = otlp_decoder_new("otlp");
    FUZZ_CHECK(d, "otlp_decoder_new failed");
    for (int s = 0; s < 3; s++) {
        struct buf first = {0};
        for (int round = 0; round < 2; round++) {
            struct ctx c = {names[s], 0, 0, {0}};
            const struct otlp_out out = {on_event, on_invalid, &c};
            const char *err = NULL;
            int n =
                otlp_decode(d, sigs[s], OTLP_PROTOBUF, (const char *)data, size, &rt, &out, &err);
            if (n < 0) {
                FUZZ_CHECK((n == -EINVAL || n == -E2BIG) && err && *err,
                           "%s: returned %d (reason %s)", names[s], n, err ? err : "none");
                FUZZ_CHECK(c.events + c.invalid == 0,
                           "%s: refused the body (%s) after handing over %d records", names[s], err,
                           c.events + c.invalid);
            } else {
                FUZZ_CHECK(n == c.events + c.invalid, "%s: returned %d but handed over %d",
                           names[s], n, c.events + c.invalid);
            }
            buf_putc(&c.all, (char)(n < 0 ? -n : 0));
            if (round == 0)
                first = c.all;
            else
                FUZZ_CHECK(first.len == c.all.len && !memcmp(first.data, c.all.data, first.len),
                           "%s: a second decode gave other events", names[s]);
            if (round == 1)
                buf_free(&c.all);
        }
        buf_free(&first);
    }
    otlp_decoder_free(d);
    return 0;
}
