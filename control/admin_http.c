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

/* One metric family: HELP, TYPE, then a sample per array element. */
static void family(struct evbuffer *b, const char *name, const char *type, const char *help,
                   json_t *arr, const char *lname, const char *lkey, const char *field)
{
    json_t *first = json_array_get(arr, 0);
    if (first && !json_object_get(first, field) &&
        !json_object_get(json_object_get(first, "counters"), field))
        return; /* a feature not configured (spill counters without spill) */
    evbuffer_add_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
    size_t i;
    json_t *e;
    json_array_foreach(arr, i, e)
    {
        json_t *v = json_object_get(e, field);
        if (!v)
            v = json_object_get(json_object_get(e, "counters"), field);
        json_t *lv = json_object_get(e, lkey);
        char num[32];
        if (json_is_integer(lv))
            snprintf(num, sizeof(num), "%lld", (long long)json_integer_value(lv));
        evbuffer_add_printf(b, "%s{", name);
        label(b, lname, json_is_integer(lv) ? num : json_string_value(lv));
        if (json_is_boolean(v))
            evbuffer_add_printf(b, "} %d\n", json_is_true(v));
        else
            evbuffer_add_printf(b, "} %.17g\n", json_number_value(v));
    }
}

static void single(struct evbuffer *b, const char *name, const char *type, const char *help,
                   double v)
{
    evbuffer_add_printf(b, "# HELP %s %s\n# TYPE %s %s\n%s %.17g\n", name, help, name, type, name,
                        v);
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

static void metrics(struct admin_http *h, struct evbuffer *b)
{
    const struct control_deps *d = control_deps(h->ctl);
    json_t *st = admin__stats(d);
    json_t *in = json_object_get(st, "inputs"), *pa = json_object_get(st, "partitions"),
           *ro = json_object_get(st, "routes"), *si = json_object_get(st, "sinks"),
           *rt = json_object_get(st, "router"), *mem = json_object_get(st, "memory");
    static const struct {
        const char *name, *type, *help, *field;
    } inputs[] =
        {
            {"spillway_input_received_total", "counter", "Records read (good and bad).",
             "received"},
            {"spillway_input_bytes_total", "counter", "Raw bytes read.", "bytes"},
            {"spillway_input_accepted_total", "counter", "Records handed to the pipeline.",
             "accepted"},
            {"spillway_input_dead_letter_total", "counter", "Records that could not be parsed.",
             "dead_letter"},
            {"spillway_input_dropped_total", "counter", "Records dropped by a full pipeline.",
             "dropped"},
            {"spillway_input_connections", "gauge", "Open connections.", "connections"},
            {"spillway_input_refused_total", "counter", "Connections or requests refused.",
             "refused"},
            {"spillway_input_rejected_total", "counter", "Requests answered with a 4xx.",
             "rejected"},
            {"spillway_input_syslog_loose_total", "counter",
             "Syslog messages kept with their raw text (neither RFC 5424 nor RFC 3164).",
             "syslog_loose"},
            {"spillway_input_overflow_total", "counter",
             "UDP datagrams the kernel dropped: the socket's receive buffer was full.", "overflow"},
        },
      parts[] =
          {
              {"spillway_partition_in_total", "counter", "Records pushed into the ring.", "in"},
              {"spillway_partition_out_total", "counter", "Records taken by the worker.", "out"},
              {"spillway_partition_dropped_total", "counter", "Records refused when full.",
               "dropped"},
              {"spillway_partition_held", "gauge", "Records in the ring.", "held"},
              {"spillway_partition_bytes", "gauge", "Bytes held in the ring.", "bytes_held"},
              {"spillway_partition_capacity_bytes", "gauge", "Ring capacity.", "capacity"},
              {"spillway_partition_spilling", "gauge", "1 while the partition spills to Kafka.",
               "spilling"},
              {"spillway_partition_spilled_total", "counter", "Records spilled to Kafka.",
               "spilled"},
              {"spillway_partition_replayed_total", "counter", "Spilled records replayed.",
               "replayed"},
              {"spillway_partition_spill_refused_total", "counter",
               "Times Kafka could not take more (inputs blocked).", "spill_refused"},
              {"spillway_partition_spill_lost_total", "counter",
               "Spilled records lost (retention, or refused for good).", "spill_lost"},
              {"spillway_partition_spill_duplicates_total", "counter",
               "Second copies of spilled records Kafka kept, not replayed.", "spill_duplicates"},
          },
      routes[] =
          {
              {"spillway_route_in_total", "counter", "Events offered to the route.", "in"},
              {"spillway_route_kept_total", "counter", "Events the route kept.", "kept"},
              {"spillway_route_filtered_total", "counter",
               "Events not for the route (incl. sampled "
               "out).",
               "filtered"},
              {"spillway_route_sampled_out_total", "counter", "Events sampled out.", "sampled_out"},
              {"spillway_route_errors_total", "counter", "Script errors (events dead-lettered).",
               "errors"},
              {"spillway_route_sample_rate", "gauge", "The route's effective sampling rate.",
               "sample_rate"},
              {"spillway_route_enabled", "gauge", "1 when the route is enabled.", "enabled"},
              {"spillway_route_reloads_total", "counter", "Script reloads.", "reloads"},
          },
      sinks[] = {
          {"spillway_sink_in_total", "counter", "Events queued.", "in"},
          {"spillway_sink_delivered_total", "counter", "Events the destination accepted.",
           "delivered"},
          {"spillway_sink_failed_total", "counter", "Events refused for good (dead-lettered).",
           "failed"},
          {"spillway_sink_dropped_total", "counter", "Events dropped (full queue, shutdown).",
           "dropped"},
          {"spillway_sink_retries_total", "counter", "Delivery attempts retried.", "retries"},
          {"spillway_sink_bytes_total", "counter", "Bytes delivered.", "bytes"},
          {"spillway_sink_queued", "gauge", "Events waiting in the queue.", "queued"},
          {"spillway_sink_queue_bytes", "gauge", "Bytes waiting in the queue.", "queued_bytes"},
      };
    for (size_t i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++)
        family(b, inputs[i].name, inputs[i].type, inputs[i].help, in, "input", "name",
               inputs[i].field);
    for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++)
        family(b, parts[i].name, parts[i].type, parts[i].help, pa, "partition", "partition",
               parts[i].field);
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
        family(b, routes[i].name, routes[i].type, routes[i].help, ro, "route", "name",
               routes[i].field);
    for (size_t i = 0; i < sizeof(sinks) / sizeof(sinks[0]); i++)
        family(b, sinks[i].name, sinks[i].type, sinks[i].help, si, "sink", "name", sinks[i].field);
    sink_state(b, si, "spillway_sink_up",
               "1 when the sink delivers, 0 while it retries or its circuit is open.", "up");
    sink_state(b, si, "spillway_sink_circuit_open",
               "1 while the sink's circuit is open (failing for circuit_after: it only probes).",
               "circuit open");
    latency(b, d->sinks);
    single(b, "spillway_unrouted_total", "counter", "Events no route kept.",
           json_number_value(json_object_get(rt, "unrouted")));
    single(b, "spillway_dead_letter_total", "counter", "Records sent to the dead-letter sink.",
           json_number_value(json_object_get(rt, "dead_letter")));
    single(b, "spillway_script_reloads_total", "counter", "Script reloads.",
           json_number_value(json_object_get(rt, "reloads")));
    single(b, "spillway_script_reload_errors_total", "counter", "Script reloads that failed.",
           json_number_value(json_object_get(rt, "reload_errors")));
    static const struct {
        const char *name, *help, *field;
    } kafka[] = {
        {"spillway_kafka_produced_total", "Kafka mode: records produced to the pipeline topic.",
         "produced"},
        {"spillway_kafka_consumed_total", "Kafka mode: records consumed from the pipeline topic.",
         "consumed"},
        {"spillway_kafka_committed_total",
         "Kafka mode: consumed records whose offsets were committed.", "committed"},
        {"spillway_kafka_refused_total",
         "Kafka mode: times Kafka could not take more (inputs blocked).", "refused"},
        {"spillway_kafka_lost_total",
         "Kafka mode: records Kafka refused for good (fatal producer error).", "lost"},
    };
    json_t *kf = json_object_get(st, "kafka");
    for (size_t k = 0; kf && k < sizeof(kafka) / sizeof(kafka[0]); k++)
        single(b, kafka[k].name, "counter", kafka[k].help,
               json_number_value(json_object_get(kf, kafka[k].field)));
    single(b, "spillway_memory_held_bytes", "gauge", "Bytes held in rings and sink queues.",
           json_number_value(json_object_get(mem, "held_bytes")));
    single(b, "spillway_memory_limit_bytes", "gauge", "pipeline.memory_limit.",
           json_number_value(json_object_get(mem, "limit")));
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
