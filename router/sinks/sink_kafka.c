/* `kafka` sink: a librdkafka producer with acks=all and idempotence. Each span is produced
 * record by record (copied into librdkafka's queue), then the sink waits for every delivery
 * report: the span is acknowledged only when Kafka accepted all of it. Messages that failed in
 * a way worth retrying (broker down, timeouts) are produced again on the next attempt, and only
 * those; a message Kafka refuses for good (too large, an unknown or invalid topic) goes to the
 * dead_letter sink, so one bad event never holds the sink. The topic is fixed or taken from a
 * field (an event without it, or with an empty value, goes to the fixed topic); the key from a
 * field (trace_id by default, so a trace stays in one Kafka partition and in order). */
#include <errno.h>
#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/jsontok.h"
#include "core/log.h"
#include "core/ring.h"
#include "router/sinks/sink.h"

enum { PENDING, IN_FLIGHT, DELIVERED, RETRYABLE, FINAL };

struct kafka_sink_opts {
    struct sink_common common;
    char *brokers;
    char *topic;
    char *topic_field;
    char *key_field;
    int64_t message_timeout;
    struct cfg_strmap properties;
};

struct kafka_sink {
    rd_kafka_t *rk;
    unsigned char *status; /* per record of the current span */
    const char **errors;   /* per record: why it failed for good (static strings) */
    size_t cap;
    size_t outstanding;
    int active; /* a span is in progress (survives RETRY) */
    struct jsontok tok;
    struct buf topic, key;
    struct log_limit lim;
};

/* Errors no retry can fix: the message goes to the dead_letter sink. A topic named by an event
 * (topic_field) that does not exist (and that the cluster does not create), or that the
 * producer may not write, is one: retrying would hold every event behind it forever. The
 * configured `topic` is different: missing or forbidden is an operator's matter (a topic
 * created a little late, an ACL being fixed), so the sink retries, as for a broker down. */
static int final_error(rd_kafka_resp_err_t e, int fixed_topic)
{
    switch (e) {
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_INVALID_MSG:
    case RD_KAFKA_RESP_ERR_INVALID_RECORD:
    case RD_KAFKA_RESP_ERR__INVALID_ARG:
        return 1;
    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
    case RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION:
    case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
        return !fixed_topic;
    default:
        return 0;
    }
}

/* Kafka's rule for topic names: 1 to 249 of [a-zA-Z0-9._-], but not "." or "..". Checked before
 * producing so that a name from an event field that no broker would take is refused at once, with
 * the reason. */
static int valid_topic(const char *t, size_t len)
{
    if (len == 0 || len > 249 || (len <= 2 && strspn(t, ".") == len)) /* not "." nor ".." */
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = t[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    struct sink *s = opaque;
    struct kafka_sink *k = s->priv;
    size_t i = (size_t)(uintptr_t)m->_private;
    if (i >= k->cap)
        return;
    if (!m->err) {
        k->status[i] = DELIVERED;
        counter_add(&s->stats.bytes, m->len);
    } else {
        const struct kafka_sink_opts *o = s->opts;
        int fixed = !strcmp(rd_kafka_topic_name(m->rkt), o->topic);
        k->status[i] = final_error(m->err, fixed) ? FINAL : RETRYABLE;
        k->errors[i] = rd_kafka_err2str(m->err);
        sink_set_error(s, "%s", rd_kafka_err2str(m->err));
    }
    if (k->outstanding)
        k->outstanding--;
}

static int kafka_open(struct sink *s, char *err, size_t errlen)
{
    const struct kafka_sink_opts *o = s->opts;
    struct kafka_sink *k = calloc(1, sizeof(*k));
    if (!k)
        return -ENOMEM;
    s->priv = k;
    char e[512], tmo[32];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    snprintf(tmo, sizeof(tmo), "%lld", (long long)(o->message_timeout / 1000000));
    const char *fixed[][2] = {{"bootstrap.servers", o->brokers}, {"acks", "all"},
                              {"enable.idempotence", "true"},    {"linger.ms", "5"},
                              {"message.timeout.ms", tmo},       {"log_level", "4"}};
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
        if (rd_kafka_conf_set(conf, fixed[i][0], fixed[i][1], e, sizeof(e)) != RD_KAFKA_CONF_OK)
            goto bad;
    }
    for (int i = 0; i < o->properties.n; i++) {
        if (rd_kafka_conf_set(conf, o->properties.key[i], o->properties.val[i], e, sizeof(e)) !=
            RD_KAFKA_CONF_OK)
            goto bad;
    }
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_conf_set_opaque(conf, s);
    k->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, e, sizeof(e));
    if (!k->rk) {
        snprintf(err, errlen, "sink %s: %s", s->name, e);
        return -EINVAL;
    }
    return 0;
bad:
    rd_kafka_conf_destroy(conf);
    snprintf(err, errlen, "sink %s: %s", s->name, e);
    return -EINVAL;
}

/* The value of a top-level string field of the record, into out (out->len bytes, followed by a
 * NUL that len does not count); 0 when absent, not a string, or empty. */
static int field(struct kafka_sink *k, const char *json, size_t len, const char *name,
                 struct buf *out)
{
    buf_reset(out);
    if (!*name || jsontok_parse_trusted(&k->tok, json, len))
        return 0;
    int v = jsontok_find(&k->tok, 0, name, strlen(name));
    if (v < 0 || k->tok.tok[v].type != JSMN_STRING)
        return 0;
    if (jsontok_unescape(json + k->tok.tok[v].start,
                         (size_t)(k->tok.tok[v].end - k->tok.tok[v].start), out) ||
        buf_putc(out, '\0')) {
        buf_reset(out);
        return 0;
    }
    out->len--;
    return out->len > 0;
}

static int produce(struct sink *s, struct kafka_sink *k, size_t i, const char *json, size_t len)
{
    const struct kafka_sink_opts *o = s->opts;
    int has_topic = *o->topic_field && field(k, json, len, o->topic_field, &k->topic);
    const char *topic = has_topic ? k->topic.data : o->topic;
    if (has_topic && !valid_topic(k->topic.data, k->topic.len)) {
        k->status[i] = FINAL;
        k->errors[i] = "topic_field: not a valid Kafka topic name (1 to 249 of a-z A-Z 0-9 . _ -)";
        sink_set_error(s, "%s", k->errors[i]);
        return -1;
    }
    int has_key = field(k, json, len, o->key_field, &k->key);
    for (;;) {
        rd_kafka_resp_err_t rc = rd_kafka_producev(
            k->rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_VALUE((void *)json, len),
            /* parenthesized: the macro casts its argument without parentheses */
            RD_KAFKA_V_KEY((has_key ? k->key.data : NULL), (has_key ? k->key.len : 0)),
            RD_KAFKA_V_OPAQUE((void *)(uintptr_t)i), RD_KAFKA_V_END);
        if (rc == RD_KAFKA_RESP_ERR_NO_ERROR) {
            k->status[i] = IN_FLIGHT;
            k->outstanding++;
            return 0;
        }
        if (rc != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            k->status[i] = final_error(rc, !strcmp(topic, o->topic)) ? FINAL : RETRYABLE;
            k->errors[i] = rd_kafka_err2str(rc);
            sink_set_error(s, "%s", k->errors[i]);
            return -1;
        }
        rd_kafka_poll(k->rk, 100); /* librdkafka's queue is full: let reports drain it */
    }
}

static enum sink_result kafka_write(struct sink *s, const char *span, size_t len, uint64_t nrec)
{
    struct kafka_sink *k = s->priv;
    if (!k->active) {
        if (nrec > k->cap) {
            /* Each kept as soon as it moved: a failed realloc leaves the other one valid. */
            unsigned char *st = realloc(k->status, nrec);
            if (!st)
                return SINK_RETRY;
            k->status = st;
            const char **er = realloc(k->errors, nrec * sizeof(*er));
            if (!er)
                return SINK_RETRY;
            k->errors = er;
            k->cap = nrec;
        }
        memset(k->status, PENDING, nrec);
        k->active = 1;
    }
    size_t i = 0;
    SINK_FOREACH(r, span, len)
    {
        if (k->status[i] == PENDING || k->status[i] == RETRYABLE)
            produce(s, k, i, RING_REC_DATA(r), r->len);
        i++;
    }
    /* Every report comes back within message.timeout.ms, success or failure; when stopping
     * past shutdown_timeout, what Kafka has not acknowledged is purged instead: its reports
     * come back at once as retryable, and the stop counts those events as undelivered. */
    int purged = 0;
    while (k->outstanding > 0) {
        rd_kafka_poll(k->rk, 100);
        if (k->outstanding > 0 && !purged && sinks_past_deadline(s->set)) {
            rd_kafka_purge(k->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
            purged = 1;
        }
    }
    int retry = 0;
    i = 0;
    SINK_FOREACH(r, span, len)
    {
        if (k->status[i] == RETRYABLE)
            retry = 1;
        i++;
    }
    if (retry) {
        if (log_limit_take(&k->lim) >= 0)
            log_warn("kafka sink: will retry undelivered messages", "{s:s}", "sink", s->name);
        return SINK_RETRY;
    }
    i = 0;
    SINK_FOREACH(r, span, len)
    {
        if (k->status[i] == FINAL) {
            sink_refuse(s, RING_REC_DATA(r), r->len, k->errors[i]);
        }
        i++;
    }
    k->active = 0;
    return SINK_OK;
}

static void kafka_close(struct sink *s)
{
    struct kafka_sink *k = s->priv;
    if (!k)
        return;
    if (k->rk) {
        rd_kafka_flush(k->rk, 5000);
        rd_kafka_destroy(k->rk);
    }
    free(k->status);
    free(k->errors);
    jsontok_free(&k->tok);
    buf_free(&k->topic);
    buf_free(&k->key);
    free(k);
    s->priv = NULL;
}

static const struct cfg_key kafka_keys[] = {
    {"brokers", CFG_STRING, offsetof(struct kafka_sink_opts, brokers), NULL,
     "Bootstrap brokers, host:port[,host:port].", CFG_REQUIRED},
    {"topic", CFG_STRING, offsetof(struct kafka_sink_opts, topic), NULL,
     "Topic to produce to (the default when topic_field is set).", CFG_REQUIRED},
    {"topic_field", CFG_STRING, offsetof(struct kafka_sink_opts, topic_field), "",
     "Field whose value names the topic per event; an event without it (or with an empty "
     "value) goes to topic, one whose value is no valid topic name to the dead_letter sink."},
    {"key_field", CFG_STRING, offsetof(struct kafka_sink_opts, key_field), "trace_id",
     "Field whose value is the message key (empty: no key)."},
    {"message_timeout", CFG_DURATION, offsetof(struct kafka_sink_opts, message_timeout), "30s",
     "How long librdkafka tries to deliver one attempt before the sink retries.", 0, 1, 3600},
    {"properties", CFG_STRMAP, offsetof(struct kafka_sink_opts, properties), NULL,
     "librdkafka properties passed through (security.protocol, sasl.*, compression.type).",
     CFG_SECRET},
    SINK_COMMON_KEYS(struct kafka_sink_opts),
    SINK_BATCH_KEYS(struct kafka_sink_opts, "256KiB", "100ms"),
    {0},
};

const struct sink_type sink_kafka = {
    .cfg =
        {
            .name = "kafka",
            .desc =
                "Produces to Kafka (librdkafka, acks=all, idempotent); delivery reports drive the "
                "acknowledgements.",
            .size = sizeof(struct kafka_sink_opts),
            .keys = kafka_keys,
        },
    .open = kafka_open,
    .write = kafka_write,
    .close = kafka_close,
};
