#include "collector/otlp_intake.h"

#include <stdio.h>

#include "collector/collector.h"
#include "collector/input.h"

static void intake_event(void *ud, const char *json, size_t len, const char *key, size_t klen)
{
    struct otlp_intake *t = ud;
    if (len > t->max) {
        collector_dead(t->in, "too large", json, len); /* raw keeps its start, raw_bytes its size */
        return;
    }
    collector_event_keyed(t->in, json, len, key, klen);
}

static void intake_invalid(void *ud, const char *why, const char *raw, size_t len)
{
    struct otlp_intake *t = ud;
    if (!t->invalid++)
        snprintf(t->why, sizeof(t->why), "%s", why);
    collector_dead(t->in, why, raw, len);
}

void otlp_intake_begin(struct otlp_intake *t, struct input *in, size_t max)
{
    *t = (struct otlp_intake){.out = {intake_event, intake_invalid, t}, .in = in, .max = max};
    t->dead0 = counter_get(&in->stats.dead_letter);
}

/* What was dead-lettered and did not fail to decode was too large: over max_event_size, or over
 * the pipeline's largest record. */
int64_t otlp_intake_rejected(const struct otlp_intake *t, char *msg, size_t size)
{
    int dead = (int)(counter_get(&t->in->stats.dead_letter) - t->dead0);
    int large = dead - t->invalid, n = 0;
    msg[0] = '\0';
    if (large > 0)
        n = snprintf(msg, size, "%d %s too large, dead-lettered (max_event_size %zu bytes)", large,
                     large == 1 ? "record" : "records", t->max);
    if (t->invalid && n >= 0 && (size_t)n < size)
        snprintf(msg + n, size - (size_t)n, "%s%d %s invalid, dead-lettered (%s%s)", n ? "; " : "",
                 t->invalid, t->invalid == 1 ? "record" : "records",
                 t->invalid > 1 ? "first: " : "", t->why);
    return dead;
}
