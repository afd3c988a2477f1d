#include "otlp_body.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "opentelemetry/proto/collector/logs/v1/logs_service.pb-c.h"

typedef Opentelemetry__Proto__Common__V1__KeyValue KeyValue;
typedef Opentelemetry__Proto__Common__V1__AnyValue AnyValue;

int otlp_body(long n, struct buf *pbuf, struct buf *jf)
{
    static const char *levels[] = {"DEBUG", "INFO", "INFO", "INFO", "INFO", "WARN", "ERROR"};
    static const int sevs[] = {5, 9, 9, 9, 9, 13, 17};
    static const char *paths[] = {"/api/items", "/api/cart", "/api/pay", "/login", "/search"};
    Opentelemetry__Proto__Logs__V1__LogRecord *recs = calloc((size_t)n, sizeof(*recs));
    Opentelemetry__Proto__Logs__V1__LogRecord **rp = calloc((size_t)n, sizeof(*rp));
    KeyValue *kvs = calloc((size_t)n * 4, sizeof(*kvs));
    KeyValue **kvp = calloc((size_t)n * 4, sizeof(*kvp));
    AnyValue *vals = calloc((size_t)n * 5, sizeof(*vals));
    char *text = calloc((size_t)n, 256);
    uint8_t *ids = calloc((size_t)n, 24);
    if (!recs || !rp || !kvs || !kvp || !vals || !text || !ids)
        return 1;
    buf_printf(jf, "{\"resourceLogs\":[{\"resource\":{\"attributes\":["
                   "{\"key\":\"service.name\",\"value\":{\"stringValue\":\"checkout\"}},"
                   "{\"key\":\"host.name\",\"value\":{\"stringValue\":\"web-07\"}}]},"
                   "\"scopeLogs\":[{\"scope\":{\"name\":\"bench\"},\"logRecords\":[");
    unsigned long x = 88172645463325252UL;
    for (long i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        unsigned long t = x % 50000, lvl = x % 7;
        char *msg = text + i * 256, *user = msg + 100, *email = msg + 130, *trace = msg + 180;
        snprintf(msg, 100, "GET %s/%lu returned %d", paths[(x >> 14) % 5], (x >> 16) % 100000,
                 (x % 13) ? 200 : 503);
        snprintf(user, 30, "u%05lu", (x >> 12) % 99991);
        snprintf(email, 50, "user%lu@example.com", (x >> 20) % 9973);
        snprintf(trace, 33, "%016lx%016lx", t * 2654435761UL, t);
        uint8_t *id = ids + i * 24;
        for (int k = 0; k < 16; k++)
            sscanf(trace + 2 * k, "%2hhx", &id[k]);
        for (int k = 0; k < 8; k++)
            id[16 + k] = (uint8_t)(x >> (8 * k));
        char lat[24]; /* the double the JSON text reads as, exactly */
        snprintf(lat, sizeof(lat), "%lu.%lu", (x >> 9) % 900, (x >> 3) % 10);
        double latency = strtod(lat, NULL);
        uint64_t ts = 1795773600000000000ULL + (uint64_t)i * 1000000ULL; /* 2026-11-27T10:00Z */
        Opentelemetry__Proto__Logs__V1__LogRecord *r = &recs[i];
        opentelemetry__proto__logs__v1__log_record__init(r);
        r->time_unix_nano = ts;
        r->severity_number = sevs[lvl];
        r->severity_text = (char *)levels[lvl];
        AnyValue *v = &vals[i * 5];
        for (int k = 0; k < 5; k++)
            opentelemetry__proto__common__v1__any_value__init(&v[k]);
        v[0].value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
        v[0].string_value = msg;
        r->body = &v[0];
        r->trace_id = (ProtobufCBinaryData){16, id};
        r->span_id = (ProtobufCBinaryData){8, id + 16};
        const char *keys[] = {"user", "email", "latency_ms", "seq"};
        v[1].value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
        v[1].string_value = user;
        v[2].value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
        v[2].string_value = email;
        v[3].value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE;
        v[3].double_value = latency;
        v[4].value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
        v[4].int_value = i;
        for (int k = 0; k < 4; k++) {
            KeyValue *kv = &kvs[i * 4 + k];
            opentelemetry__proto__common__v1__key_value__init(kv);
            kv->key = (char *)keys[k];
            kv->value = &v[k + 1];
            kvp[i * 4 + k] = kv;
        }
        r->attributes = &kvp[i * 4];
        r->n_attributes = 4;
        rp[i] = r;
        buf_printf(jf,
                   "%s{\"timeUnixNano\":\"%llu\",\"severityNumber\":%d,\"severityText\":\"%s\","
                   "\"body\":{\"stringValue\":\"%s\"},\"traceId\":\"%s\","
                   "\"spanId\":\"%016llx\",\"attributes\":["
                   "{\"key\":\"user\",\"value\":{\"stringValue\":\"%s\"}},"
                   "{\"key\":\"email\",\"value\":{\"stringValue\":\"%s\"}},"
                   "{\"key\":\"latency_ms\",\"value\":{\"doubleValue\":%s}},"
                   "{\"key\":\"seq\",\"value\":{\"intValue\":\"%ld\"}}]}",
                   i ? "," : "", (unsigned long long)ts, sevs[lvl], levels[lvl], msg, trace,
                   (unsigned long long)__builtin_bswap64(x), user, email, lat, i);
    }
    buf_puts(jf, "]}]}]}");
    Opentelemetry__Proto__Common__V1__InstrumentationScope scope =
        OPENTELEMETRY__PROTO__COMMON__V1__INSTRUMENTATION_SCOPE__INIT;
    scope.name = "bench";
    AnyValue rv[2];
    KeyValue rkv[2], *rkvp[2] = {&rkv[0], &rkv[1]};
    const char *rk[] = {"service.name", "host.name"}, *rs[] = {"checkout", "web-07"};
    for (int k = 0; k < 2; k++) {
        opentelemetry__proto__common__v1__any_value__init(&rv[k]);
        rv[k].value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
        rv[k].string_value = (char *)rs[k];
        opentelemetry__proto__common__v1__key_value__init(&rkv[k]);
        rkv[k].key = (char *)rk[k];
        rkv[k].value = &rv[k];
    }
    Opentelemetry__Proto__Resource__V1__Resource res =
        OPENTELEMETRY__PROTO__RESOURCE__V1__RESOURCE__INIT;
    res.attributes = rkvp;
    res.n_attributes = 2;
    Opentelemetry__Proto__Logs__V1__ScopeLogs sl = OPENTELEMETRY__PROTO__LOGS__V1__SCOPE_LOGS__INIT;
    sl.scope = &scope;
    sl.log_records = rp;
    sl.n_log_records = (size_t)n;
    Opentelemetry__Proto__Logs__V1__ScopeLogs *slp = &sl;
    Opentelemetry__Proto__Logs__V1__ResourceLogs rl =
        OPENTELEMETRY__PROTO__LOGS__V1__RESOURCE_LOGS__INIT;
    rl.resource = &res;
    rl.scope_logs = &slp;
    rl.n_scope_logs = 1;
    Opentelemetry__Proto__Logs__V1__ResourceLogs *rlp = &rl;
    Opentelemetry__Proto__Collector__Logs__V1__ExportLogsServiceRequest req =
        OPENTELEMETRY__PROTO__COLLECTOR__LOGS__V1__EXPORT_LOGS_SERVICE_REQUEST__INIT;
    req.resource_logs = &rlp;
    req.n_resource_logs = 1;
    size_t len =
        opentelemetry__proto__collector__logs__v1__export_logs_service_request__get_packed_size(
            &req);
    int bad = buf_reserve(pbuf, len);
    if (!bad)
        pbuf->len += opentelemetry__proto__collector__logs__v1__export_logs_service_request__pack(
            &req, (uint8_t *)pbuf->data + pbuf->len);
    free(recs);
    free(rp);
    free(kvs);
    free(kvp);
    free(vals);
    free(text);
    free(ids);
    return bad ? 1 : 0;
}
