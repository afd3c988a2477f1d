/* The HTTP admin (admin.http): /metrics in the Prometheus text exposition format, /health
 * (the process is alive) and /ready (started and not draining). With admin.http_token set,
 * /metrics requires "Authorization: Bearer <token>"; /health and /ready stay open for probes
 * (they reveal nothing). Served by evhttp on the control thread. */
#include <errno.h>
#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control/admin_int.h"
#include "core/stats.h"
#include "router/route.h"
#include "router/sinks/sink.h"

struct admin_http {
    struct control *ctl;
    struct evhttp *http;
};

/* Label values escape backslash, quote and newline. */
static void label(struct evbuffer *b, const char *name, const char *v)
{
    evbuffer_add_printf(b, "%s=\"", name);
    for (const char *p = v ? v : ""; *p; p++) {
        if (*p == '\\' || *p == '"')
            evbuffer_add_printf(b, "\\%c", *p);
        else if (*p == '\n')
            evbuffer_add(b, "\\n", 2);
        else
            evbuffer_add(b, p, 1);
    }
    evbuffer_add(b, "\"", 1);
}

/* A member of the stats document as a sample value: numbers as they are, booleans as 0/1. */
static double sample_value(json_t *v)
{
    return json_is_boolean(v) ? (double)json_is_true(v) : json_number_value(v);
}

/* One metric family, from a stage's field: HELP, TYPE, then a sample per element (labelled with
 * the stage's name), or the one sample of a single-object stage. Nothing when the stats
 * document does not have it (a feature not configured: spill counters without spill). */
static void family(struct evbuffer *b, json_t *st, const struct stat_stage *stage,
                   const struct stat_field *f)
{
    json_t *doc = json_object_get(st, stage->key);
    json_t *first = stage->id ? json_array_get(doc, 0) : doc;
    if (!json_object_get(stat_fields_of(stage, first), f->name))
        return;
    char name[128];
    stat_metric(stage, f, name, sizeof(name));
    evbuffer_add_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, f->help, name,
                        f->kind == STAT_COUNTER ? "counter" : "gauge");
    if (!stage->id) {
        evbuffer_add_printf(b, "%s %.17g\n", name, sample_value(json_object_get(doc, f->name)));
        return;
    }
    size_t i;
    json_t *e;
    json_array_foreach(doc, i, e)
    {
        char id[32];
        evbuffer_add_printf(b, "%s{", name);
        label(b, stage->name, stat_id_of(stage, e, id, sizeof(id)));
        evbuffer_add_printf(b, "} %.17g\n",
                            sample_value(json_object_get(stat_fields_of(stage, e), f->name)));
    }
}

/* A gauge per sink: 1 when its state (as `ctl sinks` shows it) is `state`. */
static void sink_state(struct evbuffer *b, json_t *sinks, const char *name, const char *help,
                       const char *state)
{
    evbuffer_add_printf(b, "# HELP %s %s\n# TYPE %s gauge\n", name, help, name);
    size_t i;
    json_t *s;
    json_array_foreach(sinks, i, s)
    {
        evbuffer_add_printf(b, "%s{", name);
        label(b, "sink", json_string_value(json_object_get(s, "name")));
        const char *st = json_string_value(json_object_get(s, "state"));
        evbuffer_add_printf(b, "} %d\n", st && !strcmp(st, state));
    }
}

/* Delivery latency as a Prometheus histogram: buckets are the sink's log2 microsecond ones. */
static void latency(struct evbuffer *b, struct sinks *ss)
{
    const char *n = "spillway_sink_delivery_latency_seconds";
    evbuffer_add_printf(b,
                        "# HELP %s From the event's received_at to the destination "
                        "accepting it (sampled 1 in 16).\n# TYPE %s histogram\n",
                        n, n);
    for (int i = 0; i < sinks_count(ss); i++) {
        struct sink *s = sinks_get(ss, i);
        pthread_mutex_lock(&s->stat.mu);
        uint64_t cum = 0;
        double sum = 0;
        for (int k = 0; k < SINKSTAT_BUCKETS; k++) {
            cum += s->stat.lat[k];
            sum += (double)s->stat.lat[k] * (double)(3ULL << k) / 2e6; /* bucket middle */
            if (k % 2 == 1 || k == SINKSTAT_BUCKETS - 1) { /* every 4x: enough resolution */
                evbuffer_add_printf(b, "%s_bucket{", n);
                label(b, "sink", s->name);
                evbuffer_add_printf(b, ",le=\"%.9g\"} %llu\n", (double)(2ULL << k) / 1e6,
                                    (unsigned long long)cum);
            }
        }
        evbuffer_add_printf(b, "%s_bucket{", n);
        label(b, "sink", s->name);
        evbuffer_add_printf(b, ",le=\"+Inf\"} %llu\n%s_sum{", (unsigned long long)cum, n);
        label(b, "sink", s->name);
        evbuffer_add_printf(b, "} %.9g\n%s_count{", sum, n);
        label(b, "sink", s->name);
        evbuffer_add_printf(b, "} %llu\n", (unsigned long long)cum);
        pthread_mutex_unlock(&s->stat.mu);
    }
}

/* Every field of every stage's table (core/stats.c), then what is not a plain number: the
 * sinks' states and their latency histograms. */
static void metrics(struct admin_http *h, struct evbuffer *b)
{
    const struct control_deps *d = control_deps(h->ctl);
    json_t *st = admin__stats(d);
    for (int i = 0; stat_stages[i]; i++) {
        for (const struct stat_field *f = stat_stages[i]->fields; f->name; f++) {
            if (!(f->flags & STAT_NOMETRIC))
                family(b, st, stat_stages[i], f);
        }
    }
    json_t *si = json_object_get(st, "sinks");
    sink_state(b, si, "spillway_sink_up",
               "1 when the sink delivers, 0 while it retries or its circuit is open.", "up");
    sink_state(b, si, "spillway_sink_circuit_open",
               "1 while the sink's circuit is open (failing for circuit_after: it only probes).",
               "circuit open");
    latency(b, d->sinks);
    evbuffer_add_printf(b,
                        "# HELP spillway_build_info The running version.\n"
                        "# TYPE spillway_build_info gauge\n"
                        "spillway_build_info{version=\"%s\"} 1\n",
                        SPILLWAY_VERSION);
    json_decref(st);
}

/* Compares in a time that depends on the lengths only, never on where a guess first differs
 * from the token (strcmp would tell a prober, byte by byte, how much of a guess was right). */
static int same_token(const char *got, const char *want)
{
    size_t lg = strlen(got), lw = strlen(want);
    unsigned diff = lg != lw;
    for (size_t i = 0; i < lw; i++)
        diff |= (unsigned)((unsigned char)want[i] ^ (unsigned char)(i < lg ? got[i] : 0));
    return diff == 0;
}

static int authorized(struct admin_http *h, struct evhttp_request *req)
{
    const char *token = control_deps(h->ctl)->admin->http_token;
    if (!*token)
        return 1;
    const char *auth = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
    return auth && strncmp(auth, "Bearer ", 7) == 0 && same_token(auth + 7, token);
}

static void on_request(struct evhttp_request *req, void *arg)
{
    struct admin_http *h = arg;
    const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
    struct evbuffer *b = evbuffer_new();
    struct evkeyvalq *hdrs = evhttp_request_get_output_headers(req);
    int code = 200;
    const char *reason = "OK";
    if (path && !strcmp(path, "/health")) {
        evhttp_add_header(hdrs, "Content-Type", "application/json");
        evbuffer_add_printf(b, "{\"status\":\"ok\"}\n");
    } else if (path && !strcmp(path, "/ready")) {
        int ready = control_ready(h->ctl);
        evhttp_add_header(hdrs, "Content-Type", "application/json");
        evbuffer_add_printf(b, "{\"ready\":%s}\n", ready ? "true" : "false");
        if (!ready) {
            code = 503;
            reason = "Service Unavailable";
        }
    } else if (path && !strcmp(path, "/metrics")) {
        if (!authorized(h, req)) {
            code = 401;
            reason = "Unauthorized";
            evhttp_add_header(hdrs, "WWW-Authenticate", "Bearer");
            evbuffer_add_printf(b, "unauthorized\n");
        } else {
            evhttp_add_header(hdrs, "Content-Type", "text/plain; version=0.0.4");
            metrics(h, b);
        }
    } else {
        code = 404;
        reason = "Not Found";
        evbuffer_add_printf(b, "try /metrics, /health or /ready\n");
    }
    evhttp_send_reply(req, code, reason, b);
    evbuffer_free(b);
}

struct admin_http *admin_http_new(struct control *c, char *err, size_t errlen)
{
    const char *listen = control_deps(c)->admin->http;
    struct admin_http *h = calloc(1, sizeof(*h));
    if (!h)
        return NULL;
    h->ctl = c;
    h->http = evhttp_new(control_base(c));
    char host[256];
    const char *colon = strrchr(listen, ':');
    int port = colon ? atoi(colon + 1) : 0;
    if (!h->http || !colon || (size_t)(colon - listen) >= sizeof(host) || port <= 0 ||
        port > 65535) {
        snprintf(err, errlen, "admin.http \"%s\" is not host:port", listen);
        admin_http_free(h);
        return NULL;
    }
    memcpy(host, listen, (size_t)(colon - listen));
    host[colon - listen] = '\0';
    evhttp_set_timeout(h->http, 10);
    evhttp_set_allowed_methods(h->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD);
    evhttp_set_gencb(h->http, on_request, h);
    if (!evhttp_bind_socket_with_handle(h->http, host, (uint16_t)port)) {
        snprintf(err, errlen, "admin.http: cannot listen on %s: %s", listen, strerror(errno));
        admin_http_free(h);
        return NULL;
    }
    log_info("admin http listening", "{s:s}", "address", listen);
    return h;
}

void admin_http_free(struct admin_http *h)
{
    if (!h)
        return;
    if (h->http)
        evhttp_free(h->http);
    free(h);
}
