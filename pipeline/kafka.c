#include "pipeline/kafka.h"

#include <errno.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <string.h>

#include "core/strlist.h"
#include "core/timeutil.h"
#include "pipeline/pipeline.h"

int refusal_starts(int64_t *refused_at)
{
    int64_t now = time_mono_ns(), last = *refused_at;
    *refused_at = now;
    return !last || now - last > REFUSAL_QUIET_NS;
}

/* Settings the pipeline's guarantees rest on: a user property may not change them. */
static const char *const pinned[] = {"enable.idempotence", "acks",
                                     "message.timeout.ms", "enable.auto.commit",
                                     "auto.offset.reset",  NULL};

static int is_pinned(const char *key, const char *const *extra)
{
    if (!str_among(key, pinned))
        return 0;
    for (int j = 0; extra && extra[j]; j += 2) {
        if (!strcmp(extra[j], key))
            return 1;
    }
    return 0;
}

rd_kafka_conf_t *kafka_conf(const struct kafka_config *kc, const char *const *extra, char *err,
                            size_t errlen)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char e[512];
    /* Nagle's algorithm off, as Kafka's own clients and brokers have it: with it on, a request's
     * short tail waits for the peer's delayed acknowledgement (tens of milliseconds), and the
     * spill's bounded queue emptied in stalls of 20-50 ms (S6's ingest 0.4-0.6 M against
     * 0.8-1.0 M events/s without, bench/RESULTS.md). */
    if (rd_kafka_conf_set(conf, "bootstrap.servers", kc->brokers, e, sizeof(e)) ||
        rd_kafka_conf_set(conf, "log_level", "3", e, sizeof(e)) ||
        rd_kafka_conf_set(conf, "socket.nagle.disable", "true", e, sizeof(e)))
        goto bad;
    for (int i = 0; extra && extra[i]; i += 2) {
        if (rd_kafka_conf_set(conf, extra[i], extra[i + 1], e, sizeof(e)))
            goto bad;
    }
    /* The user's properties last: they win over our defaults, except the pinned ones. */
    for (int i = 0; i < kc->properties.n; i++) {
        if (is_pinned(kc->properties.key[i], extra)) {
            snprintf(e, sizeof(e),
                     "properties: %s is fixed by spillway (its delivery guarantees depend on it)",
                     kc->properties.key[i]);
            goto bad;
        }
        if (rd_kafka_conf_set(conf, kc->properties.key[i], kc->properties.val[i], e, sizeof(e)))
            goto bad;
    }
    return conf;
bad:
    snprintf(err, errlen, "pipeline.kafka: %s", e);
    rd_kafka_conf_destroy(conf);
    return NULL;
}

/* rd_kafka_new takes conf only when it succeeds. */
static rd_kafka_t *new_client(rd_kafka_type_t type, rd_kafka_conf_t *conf, const char *what,
                              char *err, size_t errlen)
{
    char e[512];
    rd_kafka_t *rk = rd_kafka_new(type, conf, e, sizeof(e));
    if (!rk) {
        snprintf(err, errlen, "%s: %s", what, e);
        rd_kafka_conf_destroy(conf);
    }
    return rk;
}

rd_kafka_t *kafka_consumer(const struct kafka_config *kc, const char *const *extra,
                           const char *what, char *err, size_t errlen)
{
    rd_kafka_conf_t *conf = kafka_conf(kc, extra, err, errlen);
    return conf ? new_client(RD_KAFKA_CONSUMER, conf, what, err, errlen) : NULL;
}

rd_kafka_t *kafka_ordered_producer(const struct kafka_config *kc, size_t queue_bytes,
                                   void (*on_delivery)(rd_kafka_t *, const rd_kafka_message_t *,
                                                       void *),
                                   void *opaque, const char *what, char *err, size_t errlen)
{
    char kbytes[32];
    snprintf(kbytes, sizeof(kbytes), "%zu", queue_bytes / 1024 ? queue_bytes / 1024 : 1);
    const char *extra[] = {"enable.idempotence",
                           "true",
                           "acks",
                           "all",
                           "message.timeout.ms",
                           "0",
                           "queue.buffering.max.kbytes",
                           kbytes,
                           "linger.ms",
                           "0",
                           NULL};
    rd_kafka_conf_t *conf = kafka_conf(kc, extra, err, errlen);
    if (!conf)
        return NULL;
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_conf_set_opaque(conf, opaque);
    return new_client(RD_KAFKA_PRODUCER, conf, what, err, errlen);
}

int kafka_partitions(rd_kafka_t *rk, const char *topic, const char *what, int timeout_ms,
                     int *count, char *err, size_t errlen)
{
    rd_kafka_topic_t *t = rd_kafka_topic_new(rk, topic, NULL);
    if (!t) {
        snprintf(err, errlen, "%s %s: %s", what, topic, rd_kafka_err2str(rd_kafka_last_error()));
        return -EIO;
    }
    const struct rd_kafka_metadata *md;
    rd_kafka_resp_err_t rc = rd_kafka_metadata(rk, 0, t, &md, timeout_ms);
    rd_kafka_topic_destroy(t);
    *count = 0;
    if (!rc) {
        *count = md->topic_cnt ? md->topics[0].partition_cnt : 0;
        rc = md->topic_cnt ? md->topics[0].err : RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC;
        rd_kafka_metadata_destroy(md);
    }
    if (rc || *count <= 0) {
        snprintf(err, errlen, "%s %s: %s", what, topic,
                 rc ? rd_kafka_err2str(rc) : "no partitions");
        return -EIO;
    }
    return 0;
}
