#include "collector/prom_event.h"

#include <errno.h>
#include <math.h>
#include <string.h>

#include "core/jsonw.h"
#include "core/timeutil.h"

int prom_event_value(struct buf *out, double v)
{
    if (isfinite(v))
        return jsonw_double(out, v);
    if (isinf(v))
        return buf_puts(out, v > 0 ? "\"+Inf\"" : "\"-Inf\"");
    uint64_t bits;
    memcpy(&bits, &v, sizeof(bits));
    return buf_puts(out, bits == PROM_STALE_NAN_BITS ? "\"StaleNaN\"" : "\"NaN\"");
}

int prom_event_write(struct buf *out, const char *source, const struct recv_time *rt, int64_t ts_ms,
                     const char *name, size_t nlen, enum prom_type type, double v,
                     const struct prom_label *l, size_t n)
{
    static const char *const types[] = {"unknown", "counter", "gauge"};
    char ts[TIME_RFC3339_LEN + 1];
    size_t start = out->len;
    if (ts_ms == INT64_MIN)
        memcpy(ts, rt->text, sizeof(ts));
    else
        time_format_rfc3339(ts_ms * 1000000, ts);
    int rc = buf_puts(out, "{\"timestamp\":\"") | buf_append(out, ts, TIME_RFC3339_LEN) |
             buf_puts(out, "\",\"kind\":\"metric\",\"source\":") |
             jsonw_string(out, source, strlen(source)) | buf_puts(out, ",\"name\":") |
             jsonw_string(out, name, nlen) | buf_puts(out, ",\"metric_type\":\"") |
             buf_puts(out, types[type]) | buf_puts(out, "\",\"value\":") | prom_event_value(out, v);
    if (type == PROM_COUNTER)
        rc |= buf_puts(out, ",\"temporality\":\"cumulative\"");
    rc |= buf_puts(out, ",\"labels\":{");
    for (size_t i = 0; i < n; i++) {
        rc |= (i ? buf_putc(out, ',') : 0) | jsonw_string(out, l[i].name, l[i].nlen) |
              buf_putc(out, ':') | jsonw_string(out, l[i].value, l[i].vlen);
    }
    rc |= buf_puts(out, "},\"received_at\":\"") | buf_append(out, rt->text, TIME_RFC3339_LEN) |
          buf_puts(out, "\"}");
    if (rc) {
        out->len = start;
        return -ENOMEM;
    }
    return 0;
}
