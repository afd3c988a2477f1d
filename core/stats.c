/* The counters' descriptions: one row per member of the stats document. See stats.h. */
#include "core/stats.h"

#include <jansson.h>
#include <stdio.h>

#define C(st, field) offsetof(struct st, field)

/* clang-format off */
static const struct stat_field input_fields[] = {
    {"received", STAT_COUNTER, C(input_stats, received), STAT_IN | STAT_TOP | STAT_SORT,
     "Records read (good and bad)."},
    {"bytes", STAT_COUNTER, C(input_stats, bytes), 0, "Raw bytes read."},
    {"accepted", STAT_COUNTER, C(input_stats, accepted), STAT_OUT,
     "Records handed to the pipeline."},
    {"dead_letter", STAT_COUNTER, C(input_stats, dead_letter), STAT_TOP | STAT_BRIEF,
     "Records that could not be parsed."},
    {"dropped", STAT_COUNTER, C(input_stats, dropped), STAT_OUT | STAT_TOP,
     "Records dropped by a full pipeline."},
    {"connections", STAT_GAUGE, C(input_stats, connections), 0, "Open connections."},
    {"refused", STAT_COUNTER, C(input_stats, refused), 0, "Connections or requests refused."},
    {"rejected", STAT_COUNTER, C(input_stats, rejected), 0, "Requests answered with a 4xx."},
    {"syslog_loose", STAT_COUNTER, C(input_stats, syslog_loose), 0,
     "Syslog messages kept with their raw text (neither RFC 5424 nor RFC 3164)."},
    {"overflow", STAT_COUNTER, C(input_stats, overflow), 0,
     "UDP datagrams the kernel dropped: the socket's receive buffer was full."},
    {"gelf_expired", STAT_COUNTER, C(input_stats, gelf_expired), 0,
     "Chunked GELF messages still incomplete after 5 s (dead-lettered with what came)."},
    {"gelf_refused", STAT_COUNTER, C(input_stats, gelf_refused), 0,
     "GELF chunks refused: a duplicate, a bad header (over 128 chunks), or the memory bound."},
    {"protocol_errors", STAT_COUNTER, C(input_stats, protocol_errors), 0,
     "Connections closed on a protocol error (forward: msgpack that cannot be read, a message "
     "over max_message_size, a failed handshake)."},
    {"read_errors", STAT_COUNTER, C(input_stats, read_errors), 0,
     "Read errors the input went on past (journald: a corrupt journal file or entry)."},
    {"scrapes", STAT_COUNTER, C(input_stats, scrapes), 0,
     "prometheus_scrape: scrapes made (each one's samples, up and scrape_* series delivered)."},
    {"scrape_failed", STAT_COUNTER, C(input_stats, scrape_failed), 0,
     "prometheus_scrape: scrapes that failed (up 0: no answer in time, an HTTP error, a page that "
     "does not read) or were skipped (the pipeline full, the previous one still running)."},
    {0},
};

static const struct stat_field partition_fields[] = {
    {"in", STAT_COUNTER, C(partition_stats, in), STAT_IN | STAT_SORT,
     "Records pushed into the ring."},
    {"out", STAT_COUNTER, C(partition_stats, out), STAT_OUT, "Records taken by the worker."},
    {"held", STAT_GAUGE, STAT_COMPUTED, STAT_OUT | STAT_TOP, "Records in the ring."},
    {"dropped", STAT_COUNTER, C(partition_stats, dropped), STAT_TOP | STAT_BRIEF,
     "Records refused when full."},
    {"dead_letters", STAT_COUNTER, C(partition_stats, dead), STAT_BRIEF,
     "Of out: dead letters (the rest were events offered to the routes)."},
    {"bytes_held", STAT_GAUGE, STAT_COMPUTED, 0, "Bytes held in the ring.",
     "spillway_partition_bytes"},
    {"capacity", STAT_GAUGE, STAT_COMPUTED, 0, "Ring capacity.",
     "spillway_partition_capacity_bytes"},
    {0},
};

static const struct stat_field spill_fields[] = {
    {"spilling", STAT_GAUGE, STAT_COMPUTED, 0, "1 while the partition spills to Kafka."},
    {"spill_unacked", STAT_GAUGE, STAT_COMPUTED, 0,
     "Records spilled that Kafka has not acknowledged yet."},
    {"spilled", STAT_COUNTER, C(spill_stats, spilled), 0, "Records spilled to Kafka."},
    {"replayed", STAT_COUNTER, C(spill_stats, replayed), 0, "Spilled records replayed."},
    {"spill_refused", STAT_COUNTER, C(spill_stats, refused), 0,
     "Times Kafka could not take more (inputs blocked)."},
    {"spill_lost", STAT_COUNTER, C(spill_stats, lost), 0,
     "Spilled records lost (retention, or refused for good)."},
    {"spill_duplicates", STAT_COUNTER, C(spill_stats, duplicates), 0,
     "Second copies of spilled records Kafka kept, not replayed."},
    {0},
};

static const struct stat_field route_counter_fields[] = {
    {"in", STAT_COUNTER, C(route_stats, in), STAT_IN | STAT_SORT, "Events offered to the route."},
    {"kept", STAT_COUNTER, C(route_stats, kept), STAT_OUT, "Events the route kept."},
    {"filtered", STAT_COUNTER, C(route_stats, filtered), STAT_OUT,
     "Events not for the route (incl. sampled out)."},
    {"sampled_out", STAT_COUNTER, C(route_stats, sampled_out), STAT_BRIEF, "Events sampled out."},
    {"errors", STAT_COUNTER, C(route_stats, errors), STAT_OUT | STAT_TOP,
     "Script errors (events dead-lettered)."},
    {"metric_events", STAT_COUNTER, C(route_stats, metric_events), 0,
     "Metric events its spillway.metric.* aggregates were flushed as."},
    {"metric_overflow", STAT_COUNTER, C(route_stats, metric_overflow), 0,
     "spillway.metric.* additions refused: metrics.max_series series held already."},
    {"metric_invalid", STAT_COUNTER, C(route_stats, metric_invalid), 0,
     "Values of declared metrics (metrics.observe, gauge, count) that were not numbers."},
    {0},
};

static const struct stat_field route_fields[] = {
    {"sample_rate", STAT_GAUGE, STAT_COMPUTED, STAT_TOP, "The route's effective sampling rate."},
    {"enabled", STAT_GAUGE, STAT_COMPUTED, 0, "1 when the route is enabled."},
    {"reloads", STAT_COUNTER, STAT_COMPUTED, 0, "Script reloads."},
    {0},
};

static const struct stat_field sink_fields[] = {
    {"in", STAT_COUNTER, C(sink_stats, in), STAT_IN, "Events queued."},
    {"delivered", STAT_COUNTER, C(sink_stats, delivered), STAT_OUT | STAT_SORT,
     "Events the destination accepted."},
    {"failed", STAT_COUNTER, C(sink_stats, failed), STAT_OUT | STAT_TOP,
     "Events refused for good (dead-lettered)."},
    {"dropped", STAT_COUNTER, C(sink_stats, dropped), STAT_TOP,
     "Events dropped (full queue, shutdown)."},
    {"dropped_queue_full", STAT_COUNTER, C(sink_stats, dropped_full), 0,
     "Of dropped: refused by a full queue (drop_newest, or block past the shutdown deadline)."},
    {"dropped_shadow", STAT_COUNTER, C(sink_stats, dropped_shadow), 0,
     "Of dropped: shadow copies refused by a full queue."},
    {"dropped_shutdown", STAT_COUNTER, C(sink_stats, dropped_shutdown), STAT_OUT,
     "Of dropped: queued, then abandoned at shutdown."},
    {"out_of_order", STAT_COUNTER, C(sink_stats, out_of_order), 0,
     "Requests refused for samples out of order or too old (prometheus_remote_write)."},
    {"duplicate", STAT_COUNTER, C(sink_stats, duplicate), 0,
     "Requests refused for duplicate samples (prometheus_remote_write)."},
    {"retries", STAT_COUNTER, C(sink_stats, retries), 0, "Delivery attempts retried."},
    {"bytes", STAT_COUNTER, C(sink_stats, bytes), 0, "Bytes delivered."},
    {"queued", STAT_GAUGE, STAT_COMPUTED, STAT_OUT | STAT_TOP, "Events waiting in the queue."},
    {"queued_bytes", STAT_GAUGE, STAT_COMPUTED, 0, "Bytes waiting in the queue.",
     "spillway_sink_queue_bytes"},
    {"latency_p50_ms", STAT_GAUGE, STAT_COMPUTED, STAT_NOMETRIC,
     "Median delivery latency (ms)."},
    {"latency_p99_ms", STAT_GAUGE, STAT_COMPUTED, STAT_NOMETRIC,
     "99th percentile delivery latency (ms)."},
    {0},
};

static const struct stat_field router_fields[] = {
    {"unrouted", STAT_COUNTER, C(router_stats, unrouted), 0, "Events no route kept.",
     "spillway_unrouted_total"},
    {"dead_letter", STAT_COUNTER, C(router_stats, dead_letter), 0,
     "Records sent to the dead-letter sink.", "spillway_dead_letter_total"},
    {"dead_letter_unsunk", STAT_COUNTER, C(router_stats, dead_unsunk), 0,
     "Dead letters nothing took: no dead_letter sink, or no memory to stage them (logged).",
     "spillway_dead_letter_unsunk_total"},
    {"serialize_errors", STAT_COUNTER, C(router_stats, serialize_errors), 0,
     "Of route errors: kept events that could not be serialized (out of memory; dead-lettered).",
     "spillway_serialize_errors_total"},
    {"fallback_dropped", STAT_COUNTER, C(router_stats, fallback_dropped), 0,
     "Unrouted events the fallback sink could not be given (out of memory staging them).",
     "spillway_fallback_dropped_total"},
    {"reloads", STAT_COUNTER, C(router_stats, reloads), 0, "Script reloads.",
     "spillway_script_reloads_total"},
    {"reload_errors", STAT_COUNTER, C(router_stats, reload_errors), 0,
     "Script reloads that failed.", "spillway_script_reload_errors_total"},
    {0},
};

static const struct stat_field kafka_fields[] = {
    {"produced", STAT_COUNTER, C(kpipe_stats, produced), 0,
     "Kafka mode: records produced to the pipeline topic."},
    {"consumed", STAT_COUNTER, C(kpipe_stats, consumed), 0,
     "Kafka mode: records consumed from the pipeline topic."},
    {"committed", STAT_COUNTER, C(kpipe_stats, committed), 0,
     "Kafka mode: consumed records whose offsets were committed."},
    {"refused", STAT_COUNTER, C(kpipe_stats, refused), 0,
     "Kafka mode: times Kafka could not take more (inputs blocked)."},
    {"lost", STAT_COUNTER, C(kpipe_stats, lost), 0,
     "Kafka mode: records lost: refused for good (a fatal producer error), or deleted by "
     "retention before this group consumed them."},
    {0},
};

static const struct stat_field memory_fields[] = {
    {"held_bytes", STAT_GAUGE, STAT_COMPUTED, 0,
     "Bytes held in rings, sink queues and librdkafka's producer queue."},
    {"kafka_queue_bytes", STAT_GAUGE, STAT_COMPUTED, 0,
     "Of held_bytes, those in librdkafka's producer queue (spill or kafka mode)."},
    {"limit", STAT_GAUGE, STAT_COMPUTED, 0, "pipeline.memory_limit.",
     "spillway_memory_limit_bytes"},
    {0},
};

static const struct stat_field collector_fields[] = {
    {"staged", STAT_GAUGE, STAT_COMPUTED, 0,
     "Records the inputs accepted that wait in the collector for room in the pipeline."},
    {0},
};
/* clang-format on */

const struct stat_stage stat_inputs = {"input", "inputs", "name", NULL, input_fields};
const struct stat_stage stat_partitions = {"partition", "partitions", "partition", NULL,
                                           partition_fields};
const struct stat_stage stat_spill = {"partition", "partitions", "partition", NULL, spill_fields};
const struct stat_stage stat_route_counters = {"route", "routes", "name", "counters",
                                               route_counter_fields};
const struct stat_stage stat_routes = {"route", "routes", "name", NULL, route_fields};
const struct stat_stage stat_sinks = {"sink", "sinks", "name", NULL, sink_fields};
const struct stat_stage stat_router = {"router", "router", NULL, NULL, router_fields};
const struct stat_stage stat_kafka = {"kafka", "kafka", NULL, NULL, kafka_fields};
const struct stat_stage stat_memory = {"memory", "memory", NULL, NULL, memory_fields};
const struct stat_stage stat_collector = {"collector", "collector", NULL, NULL, collector_fields};

const struct stat_stage *const stat_stages[] = {
    &stat_inputs, &stat_partitions, &stat_spill,  &stat_route_counters, &stat_routes, &stat_sinks,
    &stat_router, &stat_kafka,      &stat_memory, &stat_collector,      NULL,
};

void stat_put(const struct stat_stage *s, const void *stats, json_t *obj)
{
    for (const struct stat_field *f = s->fields; f->name; f++) {
        if (f->offset != STAT_COMPUTED)
            json_object_set_new(obj, f->name, json_integer((json_int_t)stat_value(f, stats)));
    }
}

json_t *stat_fields_of(const struct stat_stage *s, json_t *e)
{
    return s->nested ? json_object_get(e, s->nested) : e;
}

const char *stat_id_of(const struct stat_stage *s, json_t *e, char *buf, size_t len)
{
    json_t *id = json_object_get(e, s->id);
    if (!json_is_integer(id))
        return json_string_value(id);
    snprintf(buf, len, "%lld", (long long)json_integer_value(id));
    return buf;
}

void stat_metric(const struct stat_stage *s, const struct stat_field *f, char *out, size_t len)
{
    if (f->metric)
        snprintf(out, len, "%s", f->metric);
    else
        snprintf(out, len, "spillway_%s_%s%s", s->name, f->name,
                 f->kind == STAT_COUNTER ? "_total" : "");
}
