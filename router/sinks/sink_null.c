/* `null` sink: counts and discards (benchmarks, and a shadow that measures a route's volume). */
#include "core/ring.h"
#include "router/sinks/sink.h"

struct null_opts {
    struct sink_common common;
};

static enum sink_result null_write(struct sink *s, const char *span, size_t len, uint64_t nrec)
{
    uint64_t bytes = 0;
    for (size_t off = 0; off < len;) {
        const struct ring_rec *r = (const struct ring_rec *)(span + off);
        bytes += r->len + 1;
        off += RING_REC_SIZE(r->len);
    }
    counter_add(&s->stats.bytes, bytes);
    return SINK_OK;
}

static const struct cfg_key null_keys[] = {
    SINK_COMMON_KEYS(struct null_opts),
    {0},
};

const struct sink_type sink_null = {
    .cfg =
        {
            .name = "null",
            .desc = "Counts and discards every event.",
            .size = sizeof(struct null_opts),
            .keys = null_keys,
        },
    .write = null_write,
};
