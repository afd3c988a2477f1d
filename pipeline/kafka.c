#include "kafka.h"

#include <librdkafka/rdkafka.h>
#include <stdio.h>

#include "pipeline.h"

rd_kafka_conf_t *kafka_conf(const struct kafka_config *kc, const char *const *extra, char *err,
                            size_t errlen)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char e[512];
    if (rd_kafka_conf_set(conf, "bootstrap.servers", kc->brokers, e, sizeof(e)) ||
        rd_kafka_conf_set(conf, "log_level", "3", e, sizeof(e)))
        goto bad;
    for (int i = 0; extra && extra[i]; i += 2) {
        if (rd_kafka_conf_set(conf, extra[i], extra[i + 1], e, sizeof(e)))
            goto bad;
    }
    /* The user's properties last: they win over our defaults. */
    for (int i = 0; i < kc->properties.n; i++) {
        if (rd_kafka_conf_set(conf, kc->properties.key[i], kc->properties.val[i], e, sizeof(e)))
            goto bad;
    }
    return conf;
bad:
    snprintf(err, errlen, "pipeline.kafka: %s", e);
    rd_kafka_conf_destroy(conf);
    return NULL;
}
