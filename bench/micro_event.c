/* Micro-benchmark of the event representation on realistic ~230-byte events: what one event
 * costs to parse, have a Lua route read two fields and write one, and serialize, for
 *   A. a jansson tree (json_loadb + json_object_get/set + json_dumpb),
 *   B. our path: jsontok (one strict checking pass) and normalization by splicing (collector),
 *   C. the worker: event view + Lua process() through the proxy + splice serialization,
 *   D. the pieces of C on their own (tokenize, Lua call, serialize),
 *   F. framing NDJSON lines out of 64 KiB reads, R. a ring push and pop in batches of 1,000,
 *   O, OJ. an OTLP request of 512 log records (S7's) decoded and mapped into events, per record:
 *      protobuf, and the same records as OTLP/JSON.
 * Prints ns/event and events/s per core. Usage: micro_event [iterations] [ID...] */
#define JSMN_STATIC
#include <jsmn.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "collector/format_syslog.h"
#include "collector/framer.h"
#include "collector/input.h"
#include "collector/normalize.h"
#include "collector/otlp.h"
#include "core/arena.h"
#include "core/buf.h"
#include "core/eview.h"
#include "core/jsontok.h"
#include "core/ring.h"
#include "router/metric_agg.h"
#include "router/metric_rules.h"
#include "router/script.h"
#include "opentelemetry/proto/collector/logs/v1/logs_service.pb-c.h"
#include "otlp_body.h"
#include "proto/pb_arena.h"

#define NEV 1024

static char *events[NEV];
static size_t lens[NEV];
static char *canon[NEV]; /* the same events as the collector hands them to the workers */
static size_t clens[NEV];

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void make_events(void)
{
    static const char *levels[] = {"DEBUG", "INFO", "INFO", "INFO", "WARN", "ERROR"};
    static const char *services[] = {"checkout", "cart", "search", "auth"};
    unsigned x = 12345;
    for (int i = 0; i < NEV; i++) {
        char buf[512];
        x = x * 1103515245 + 12345;
        int n = snprintf(
            buf, sizeof(buf),
            "{\"timestamp\":\"2026-11-27T10:00:%02d.%06dZ\",\"level\":\"%s\","
            "\"service\":\"%s\",\"host\":\"web-%02u\",\"trace_id\":\"%08x%08x%08x%08x\","
            "\"user\":\"u%05u\",\"email\":\"user%u@example.com\",\"latency_ms\":%u.%u,"
            "\"message\":\"GET /api/items/%u returned 200\",\"seq\":%d}",
            i % 60, (int)(x % 1000000), levels[x % 6], services[(x >> 8) % 4], (x >> 4) % 32, x,
            x * 7, x * 13, x * 31, x % 99991, x % 9973, x % 900, x % 10, x % 100000, i);
        events[i] = strdup(buf);
        lens[i] = (size_t)n;
    }
    struct input_common defaults = {0};
    struct normalizer nz;
    normalizer_init(&nz, "app", input_aliases(&defaults), "trace_id");
    struct recv_time rt;
    recv_time_now(&rt);
    struct buf out = {0};
    for (int i = 0; i < NEV; i++) {
        uint64_t h;
        int has;
        const char *err;
        buf_reset(&out);
        if (normalize_json(&nz, events[i], lens[i], &rt, &out, &h, &has, &err))
            exit(1);
        canon[i] = strndup(out.data, out.len);
        clens[i] = out.len;
    }
    buf_free(&out);
    normalizer_free(&nz);
}

static void report(const char *name, double secs, long iters)
{
    double ns = secs * 1e9 / (double)iters;
    printf("%-52s %8.0f ns/event %10.0f events/s\n", name, ns, 1e9 / ns);
}

static void bench_jansson(long iters)
{
    double t0 = now_s();
    size_t sink = 0;
    char out[1024];
    for (long i = 0; i < iters; i++) {
        json_t *o = json_loadb(events[i % NEV], lens[i % NEV], 0, NULL);
        const char *lvl = json_string_value(json_object_get(o, "level"));
        const char *svc = json_string_value(json_object_get(o, "service"));
        sink += (lvl && lvl[0] == 'E') + (svc && svc[0] == 'c');
        json_object_set_new(o, "env", json_string("prod"));
        sink += json_dumpb(o, out, sizeof(out), JSON_COMPACT);
        json_decref(o);
    }
    report("A. jansson parse + 2 reads + 1 write + dump", now_s() - t0, iters);
    if (sink == 1)
        puts("");
}

static void bench_tokenize(long iters)
{
    struct jsontok t = {0};
    double t0 = now_s();
    long sink = 0;
    for (long i = 0; i < iters; i++) {
        jsontok_parse(&t, events[i % NEV], lens[i % NEV]);
        sink += t.ntok;
    }
    report("D1. jsontok_parse (one strict checking pass)", now_s() - t0, iters);
    jsontok_free(&t);
    if (sink == 1)
        puts("");
}

static void bench_jsmn(long iters)
{
    jsmntok_t tok[256];
    double t0 = now_s();
    long sink = 0;
    for (long i = 0; i < iters; i++) {
        jsmn_parser p;
        jsmn_init(&p);
        sink += jsmn_parse(&p, events[i % NEV], lens[i % NEV], tok, 256);
    }
    report("D0. jsmn_parse alone (strict, parent links)", now_s() - t0, iters);
    if (sink == 1)
        puts("");
}

static void bench_normalize(long iters)
{
    struct normalizer n;
    struct input_common defaults = {0}; /* the default aliases, as an input without any */
    normalizer_init(&n, "app", input_aliases(&defaults), "trace_id");
    struct recv_time rt;
    recv_time_now(&rt);
    struct buf out = {0};
    double t0 = now_s();
    for (long i = 0; i < iters; i++) {
        uint64_t h;
        int has;
        const char *err;
        buf_reset(&out);
        normalize_json(&n, events[i % NEV], lens[i % NEV], &rt, &out, &h, &has, &err);
    }
    report("B. collector: tokenize + normalize by splicing", now_s() - t0, iters);
    normalizer_free(&n);
    buf_free(&out);
}

/* A route's work in a worker, on canonical events, at the route's sampling rate (with agg: its
 * spillway.metric aggregates, flushed as the worker would, every 100,000 events; with rules:
 * its declared metrics, added to agg before the script runs, as the worker does). */
static void bench_worker_agg(long iters, const char *script, double rate, const char *label,
                             struct metric_agg *agg, const struct metric_rules *rules);

static void bench_worker(long iters, const char *script, double rate, const char *label)
{
    bench_worker_agg(iters, script, rate, label, NULL, NULL);
}

/* The S2 route's script (bench/run.py's S2_SCRIPT). */
static const char S2_SCRIPT[] = "function process(ev)\n"
                                "  local l = ev.level\n"
                                "  if l == 'DEBUG' then return false end\n"
                                "  if l ~= 'WARN' and l ~= 'ERROR' and not "
                                "spillway.sample(ev.trace_id) then\n"
                                "    return false end\n"
                                "  ev.env = 'prod'\n"
                                "  ev.email = spillway.mask(ev.email)\n"
                                "  return true\nend\n";

static void drop_event(void *ud, const char *json, size_t len)
{
    (void)ud, (void)json, (void)len;
}

static void bench_worker_agg(long iters, const char *script, double rate, const char *label,
                             struct metric_agg *agg, const struct metric_rules *rules)
{
    struct script_limits lim = {1000000, 64 << 20};
    struct script_host *h = script_host_new(&lim, NULL, 1);
    char err[512];
    int hd = script_load(h, "bench.lua", script, strlen(script), err, sizeof(err));
    if (hd < 0) {
        fprintf(stderr, "%s\n", err);
        exit(1);
    }
    struct script_route rt = {"bench", rate, 0, agg};
    struct eview ev;
    eview_init(&ev);
    struct buf out = {0}, scratch = {0};
    double t0 = now_s();
    long kept = 0;
    for (long i = 0; i < iters; i++) {
        const char *e;
        eview_reset(&ev, canon[i % NEV], clens[i % NEV]);
        if (rules)
            metric_rules_apply(rules, &ev, agg, &scratch);
        int k = script_run(h, hd, &ev, &rt, &e);
        if (agg && i % 100000 == 99999)
            metric_agg_flush(agg, "route:bench", 0, 0, drop_event, NULL);
        if (k > 0) {
            buf_reset(&out);
            eview_serialize(&ev, &out);
            kept++;
        }
    }
    report(label, now_s() - t0, iters);
    eview_free(&ev);
    buf_free(&out);
    buf_free(&scratch);
    script_host_free(h);
    if (kept == -1)
        puts("");
}

static void bench_serialize_edit(long iters)
{
    struct eview ev;
    eview_init(&ev);
    struct buf out = {0};
    double t0 = now_s();
    for (long i = 0; i < iters; i++) {
        eview_reset(&ev, events[i % NEV], lens[i % NEV]);
        eview_parse(&ev);
        eview_set(&ev, "env", 3, "\"prod\"", 6);
        buf_reset(&out);
        eview_serialize(&ev, &out);
    }
    report("D3. tokenize + 1 edit + splice serialize", now_s() - t0, iters);
    eview_free(&ev);
    buf_free(&out);
}

static void count_line(void *ud, const char *line, size_t len, int flags)
{
    (void)line;
    (void)len;
    (void)flags;
    (*(long *)ud)++;
}

/* F: the NDJSON framer over the events joined by newlines, fed in 64 KiB reads (lines cross
 * the read boundaries as they do from a socket). */
static void bench_framing(long iters)
{
    struct buf all = {0};
    for (int i = 0; i < NEV; i++) {
        buf_append(&all, events[i], lens[i]);
        buf_putc(&all, '\n');
    }
    struct framer f;
    framer_init(&f, FRAMING_LINE, 1 << 20);
    long lines = 0;
    double t0 = now_s();
    while (lines < iters) {
        for (size_t off = 0; off < all.len; off += 65536) {
            size_t n = all.len - off < 65536 ? all.len - off : 65536;
            framer_feed(&f, all.data + off, n, count_line, &lines);
        }
    }
    report("F. framing NDJSON lines from 64 KiB reads", now_s() - t0, lines);
    framer_free(&f);
    buf_free(&all);
}

/* R: what a collector flush and a worker chunk cost per event: 1,000 records staged, pushed into
 * a ring (one lock, one copy), peeked in place and released (one thread: no waiting). */
static void bench_ring(long iters)
{
    struct ring *r = ring_new(16 << 20);
    struct buf batch = {0};
    for (int i = 0; i < 1000; i++)
        ring_batch_add(&batch, events[i % NEV], lens[i % NEV], 0, 0);
    long done = 0;
    double t0 = now_s();
    while (done < iters) {
        ring_push(r, batch.data, batch.len, NULL);
        const char *span;
        uint64_t nrec;
        size_t n = ring_peek(r, &span, 0, &nrec);
        done += (long)nrec;
        ring_release(r, n, nrec);
    }
    report("R. ring push + peek + release, batches of 1,000", now_s() - t0, done);
    buf_free(&batch);
    ring_free(r);
}

/* micro_event [ITERS] [ID...]: only the benchmarks named (F, R, O0, O, OJ, A, B, D0, D1, D3, D2, C,
 * C2, C2M, C2MD), e.g. to count instructions of one under callgrind on a noisy machine. */
static void otlp_event(void *ud, const char *json, size_t len, const char *key, size_t klen)
{
    *(size_t *)ud += len + klen;
    (void)json, (void)key;
}

static void otlp_invalid(void *ud, const char *why, const char *raw, size_t len)
{
    (void)ud, (void)why, (void)raw, (void)len;
}

/* One S7 request decoded again and again (iterations / 512 times, at least once). */
static void bench_otlp(long iters, enum otlp_encoding enc)
{
    struct buf pb = {0}, js = {0};
    if (otlp_body(512, &pb, &js))
        return;
    const struct buf *body = enc == OTLP_PROTOBUF ? &pb : &js;
    struct otlp_decoder *d = otlp_decoder_new("otlp", "trace_id");
    struct recv_time rt;
    recv_time_now(&rt);
    size_t bytes = 0;
    const struct otlp_out out = {otlp_event, otlp_invalid, &bytes};
    const char *err;
    long reqs = (iters + 511) / 512;
    double t0 = now_s();
    for (long i = 0; i < reqs; i++) {
        if (otlp_decode(d, OTLP_LOGS, enc, body->data, body->len, &rt, &out, &err) != 512) {
            fprintf(stderr, "otlp_decode: %s\n", err);
            break;
        }
    }
    report(enc == OTLP_PROTOBUF ? "O. OTLP protobuf -> events, per record"
                                : "OJ. OTLP/JSON -> events, per record",
           now_s() - t0, reqs * 512);
    otlp_decoder_free(d);
    buf_free(&pb);
    buf_free(&js);
}

/* protobuf-c's unpack of S7's request alone, into an arena reset per request as the OTLP decoder
 * does: the floor under O's cost that the library sets. */
static void bench_pb_unpack(long iters)
{
    struct buf pb = {0}, js = {0};
    if (otlp_body(512, &pb, &js))
        return;
    struct arena a = {0};
    ProtobufCAllocator alloc = pb_arena_allocator(&a);
    long reqs = (iters + 511) / 512;
    double t0 = now_s();
    for (long i = 0; i < reqs; i++) {
        arena_reset(&a);
        if (!opentelemetry__proto__collector__logs__v1__export_logs_service_request__unpack(
                &alloc, pb.len, (const uint8_t *)pb.data)) {
            fprintf(stderr, "unpack failed\n");
            break;
        }
    }
    report("O0. protobuf-c unpack of the OTLP request alone, per record", now_s() - t0, reqs * 512);
    arena_free(&a);
    buf_free(&pb);
    buf_free(&js);
}

/* S4's collector stage: an RFC 5424 message carrying one of the JSON events as its text (the
 * benchmark's, `bench/loadgen syslog`) made into the canonical event. */
static void bench_syslog(long iters)
{
    char *msgs[NEV];
    size_t mlens[NEV];
    for (int i = 0; i < NEV; i++) {
        char m[1024];
        int n = snprintf(m, sizeof(m), "<%d>1 2026-11-27T10:00:00.%06dZ web-%02d cart %d - - %s",
                         8 + i % 8, i, i % 32, 1000 + i, events[i]);
        msgs[i] = strndup(m, (size_t)n);
        mlens[i] = (size_t)n;
    }
    struct recv_time rt;
    recv_time_now(&rt);
    struct buf out = {0};
    size_t bytes = 0;
    double t0 = now_s();
    for (long i = 0; i < iters; i++) {
        const char *err;
        buf_reset(&out);
        if (syslog_to_event(msgs[i % NEV], mlens[i % NEV], "app", &rt, &out, &err) != SYSLOG_OK) {
            fprintf(stderr, "syslog: %s\n", err);
            break;
        }
        bytes += out.len;
    }
    report("S4. syslog (RFC 5424, JSON text) to the event", now_s() - t0, iters);
    if (bytes == 0)
        printf("nothing built\n");
    buf_free(&out);
    for (int i = 0; i < NEV; i++)
        free(msgs[i]);
}

static int nwant;
static char **wanted;

static int want(const char *id)
{
    for (int i = 0; i < nwant; i++)
        if (strcmp(wanted[i], id) == 0)
            return 1;
    return nwant == 0;
}

int main(int argc, char **argv)
{
    long iters = argc > 1 ? atol(argv[1]) : 1000000;
    nwant = argc > 2 ? argc - 2 : 0;
    wanted = argv + 2;
    make_events();
    size_t total = 0;
    for (int i = 0; i < NEV; i++)
        total += lens[i];
    printf("events: %d distinct, %zu bytes on average; %ld iterations each\n", NEV, total / NEV,
           iters);
    if (want("F"))
        bench_framing(iters);
    if (want("S4"))
        bench_syslog(iters);
    if (want("R"))
        bench_ring(iters);
    if (want("O0"))
        bench_pb_unpack(iters);
    if (want("O"))
        bench_otlp(iters, OTLP_PROTOBUF);
    if (want("OJ"))
        bench_otlp(iters, OTLP_JSON);
    if (want("A"))
        bench_jansson(iters);
    if (want("B"))
        bench_normalize(iters);
    if (want("D0"))
        bench_jsmn(iters);
    if (want("D1"))
        bench_tokenize(iters);
    if (want("D3"))
        bench_serialize_edit(iters);
    if (want("D2"))
        bench_worker(iters, "function process(ev) return true end", 1.0,
                     "D2. Lua call, no field access (proxy, pcall)");
    if (want("C"))
        bench_worker(iters,
                     "function process(ev)\n"
                     "  if ev.level == 'DEBUG' and ev.service == 'x' then return false end\n"
                     "  ev.env = 'prod'\n"
                     "  return true\nend\n",
                     1.0, "C. worker: 2 Lua reads + 1 write + serialize");
    if (want("C2"))
        bench_worker(iters, S2_SCRIPT, 0.1, "C2. worker: the S2 route script, 10% of INFO kept");
    if (want("C2R"))
        bench_worker(iters,
                     "local labels = {}\n"
                     "function process(ev)\n"
                     "  labels.service = ev.service\n"
                     "  local ms = ev.latency_ms\n"
                     "  local l = ev.level\n"
                     "  if l == 'DEBUG' then return false end\n"
                     "  if l ~= 'WARN' and l ~= 'ERROR' and not spillway.sample(ev.trace_id) then\n"
                     "    return false end\n"
                     "  ev.env = 'prod'\n"
                     "  ev.email = spillway.mask(ev.email)\n"
                     "  return true\nend\n",
                     0.1, "C2R. worker: S2 + reading what C2M aggregates, not aggregating it");
    if (want("C2M")) {
        /* S2M's script (bench/run.py): S2 that also counts every event and observes its latency
         * per service (logs to metrics). */
        static const double b[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
        const struct metric_agg_opts o = {b, 11, 10000};
        struct metric_agg *agg = metric_agg_new(&o);
        bench_worker_agg(iters,
                         "local count, observe = spillway.metric.count, "
                         "spillway.metric.observe\n"
                         "local labels = {}\n"
                         "function process(ev)\n"
                         "  labels.service = ev.service\n"
                         "  count('events', labels)\n"
                         "  local ms = ev.latency_ms\n"
                         "  if ms then observe('latency_seconds', labels, ms / 1000) end\n"
                         "  local l = ev.level\n"
                         "  if l == 'DEBUG' then return false end\n"
                         "  if l ~= 'WARN' and l ~= 'ERROR' and not spillway.sample(ev.trace_id) "
                         "then\n"
                         "    return false end\n"
                         "  ev.env = 'prod'\n"
                         "  ev.email = spillway.mask(ev.email)\n"
                         "  return true\nend\n",
                         0.1, "C2M. worker: S2 + a count and a histogram per service", agg, NULL);
        metric_agg_free(agg);
    }
    if (want("C2MD")) {
        /* The same count and histogram declared in the route's config (metrics.declare, as
         * bench/run.py's S2MD), S2's script unchanged. */
        static const double b[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
        const struct metric_agg_opts o = {b, 11, 10000};
        struct metric_agg *agg = metric_agg_new(&o);
        char *lk[] = {"service"}, *lv[] = {"service"};
        struct metric_rule_config decl[] = {
            {METRIC_COUNT, "events", "", 1, {lk, lv, 1}},
            {METRIC_OBSERVE, "latency_seconds", "latency_ms", 0.001, {lk, lv, 1}},
        };
        struct route_metrics_config m = {.declare = {decl, NULL, 2}};
        struct metric_rules *rules;
        char err[256];
        if (!agg || metric_rules_build(&m, "bench", &rules, err, sizeof(err))) {
            fprintf(stderr, "C2MD: cannot build the rules\n");
            return 1;
        }
        bench_worker_agg(iters, S2_SCRIPT, 0.1,
                         "C2MD. worker: S2 + the same, declared (metrics.declare)", agg, rules);
        metric_rules_free(rules);
        metric_agg_free(agg);
    }
    return 0;
}
