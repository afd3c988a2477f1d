#include "rw_body.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/snap.h"

#include "prometheus/remote.pb-c.h"

int rw_body(long n, struct buf *body)
{
    static const char *const names[] = {"http_requests_total", "http_request_duration_seconds_sum",
                                        "process_cpu_seconds_total", "node_network_receive_bytes"};
    static const char *const handlers[] = {"/api/items", "/api/cart", "/api/pay", "/login"};
    static const char *const methods[] = {"GET", "POST"};
    static const char *const codes[] = {"200", "404", "500"};
    Prometheus__TimeSeries *ts = calloc((size_t)n, sizeof(*ts));
    Prometheus__TimeSeries **tsp = calloc((size_t)n, sizeof(*tsp));
    Prometheus__Label *lv = calloc((size_t)n * 6, sizeof(*lv));
    Prometheus__Label **lp = calloc((size_t)n * 6, sizeof(*lp));
    Prometheus__Sample *sv = calloc((size_t)n, sizeof(*sv));
    Prometheus__Sample **sp = calloc((size_t)n, sizeof(*sp));
    char *inst = calloc((size_t)n, 24);
    struct buf pb = {0};
    int rc = 1;
    if (!ts || !tsp || !lv || !lp || !sv || !sp || !inst)
        goto done;
    for (long i = 0; i < n; i++) {
        Prometheus__Label *l = lv + i * 6;
        snprintf(inst + i * 24, 24, "10.0.%ld.%ld:9100", (i / 250) % 250, i % 250);
        const char *kv[6][2] = {{"__name__", names[i % 4]},
                                {"code", codes[(i / 4) % 3]},
                                {"handler", handlers[(i / 12) % 4]},
                                {"instance", inst + i * 24},
                                {"job", "node"},
                                {"method", methods[(i / 48) % 2]}};
        for (int k = 0; k < 6; k++) {
            prometheus__label__init(&l[k]);
            l[k].name = (char *)kv[k][0];
            l[k].value = (char *)kv[k][1];
            lp[i * 6 + k] = &l[k];
        }
        prometheus__sample__init(&sv[i]);
        sv[i].value = (double)(i * 7 % 1000) + 0.5;
        sv[i].timestamp = 1795773600000LL + i % 1000;
        sp[i] = &sv[i];
        prometheus__time_series__init(&ts[i]);
        ts[i].n_labels = 6;
        ts[i].labels = lp + i * 6;
        ts[i].n_samples = 1;
        ts[i].samples = sp + i;
        tsp[i] = &ts[i];
    }
    Prometheus__WriteRequest r = PROMETHEUS__WRITE_REQUEST__INIT;
    r.n_timeseries = (size_t)n;
    r.timeseries = tsp;
    size_t len = prometheus__write_request__get_packed_size(&r);
    if (buf_reserve(&pb, len + 1))
        goto done;
    pb.len = prometheus__write_request__pack(&r, (uint8_t *)pb.data);
    rc = snap_compress(pb.data, pb.len, body) ? 1 : 0;
done:
    free(ts);
    free(tsp);
    free(lv);
    free(lp);
    free(sv);
    free(sp);
    free(inst);
    buf_free(&pb);
    return rc;
}
