/* Kafka plumbing shared by the spill (when_full: spill) and Kafka mode (mode: kafka): client
 * configuration from pipeline.kafka (brokers, properties passed through) and the record
 * envelope. Only the pipeline's Kafka modules include librdkafka. */
#ifndef SPILLWAY_KAFKA_H
#define SPILLWAY_KAFKA_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/ring.h"

struct kafka_config;
struct rd_kafka_conf_s;

/* A new librdkafka configuration: bootstrap servers and pass-through properties from kc,
 * then the extra pairs (NULL-terminated key, value list). NULL with err on a bad property. */
struct rd_kafka_conf_s *kafka_conf(const struct kafka_config *kc, const char *const *extra,
                                   char *err, size_t errlen);

struct rd_kafka_s;
struct rd_kafka_message_s;

/* The pipeline's producer (spill and Kafka mode): idempotent, acks=all, retried forever, so
 * Kafka keeps every record in order; its local queue is bounded to queue_bytes (part of the
 * memory budget: when full, producing fails and the caller falls back to block). No linger: a
 * bounded queue empties as fast as the brokers answer, and records still batch while requests
 * are in flight (S6 ingest, 4 MiB limit: 157,000/s with linger.ms=5, 337,000/s with 0;
 * docs/pipeline.md). on_delivery gets opaque. what names it in err ("spill producer"). */
struct rd_kafka_s *kafka_ordered_producer(const struct kafka_config *kc, size_t queue_bytes,
                                          void (*on_delivery)(struct rd_kafka_s *,
                                                              const struct rd_kafka_message_s *,
                                                              void *),
                                          void *opaque, const char *what, char *err, size_t errlen);

/* A consumer configured like kafka_conf() with the extra pairs. NULL with err (named by what)
 * on failure. */
struct rd_kafka_s *kafka_consumer(const struct kafka_config *kc, const char *const *extra,
                                  const char *what, char *err, size_t errlen);

/* The partition count of topic (0 when it does not exist: an error), asking the brokers for up
 * to timeout_ms. what names the topic in err ("spill topic"). Returns 0 or -EIO. */
int kafka_partitions(struct rd_kafka_s *rk, const char *topic, const char *what, int timeout_ms,
                     int *count, char *err, size_t errlen);

/* A Kafka message carries one ring record: a 4-byte header (flags, src, both little endian
 * uint16) then the payload, so dead letters and input ids survive the trip. */
#define KAFKA_ENVELOPE 4

static inline void kafka_envelope(unsigned char *hdr, uint16_t flags, uint16_t src)
{
    hdr[0] = (unsigned char)(flags & 0xff);
    hdr[1] = (unsigned char)(flags >> 8);
    hdr[2] = (unsigned char)(src & 0xff);
    hdr[3] = (unsigned char)(src >> 8);
}

/* The Kafka value of ring record r: envelope then payload, *len bytes. On a little-endian host
 * the record's own flags and src, just before its payload, are the envelope already: the value
 * is read in place, no copy made (librdkafka copies it once). Elsewhere it is built in scratch. */
static inline const void *kafka_value(const struct ring_rec *r, struct buf *scratch, size_t *len)
{
    *len = KAFKA_ENVELOPE + r->len;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    _Static_assert(offsetof(struct ring_rec, flags) + 2 == offsetof(struct ring_rec, src) &&
                       offsetof(struct ring_rec, src) + 2 == RING_HDR && KAFKA_ENVELOPE == 4,
                   "flags and src end the ring record's header");
    (void)scratch;
    return RING_REC_DATA(r) - KAFKA_ENVELOPE;
#else
    unsigned char hdr[KAFKA_ENVELOPE];
    kafka_envelope(hdr, r->flags, r->src);
    buf_reset(scratch);
    if (buf_append(scratch, hdr, KAFKA_ENVELOPE) || buf_append(scratch, RING_REC_DATA(r), r->len))
        return NULL;
    return scratch->data;
#endif
}

static inline void kafka_unenvelope(const unsigned char *hdr, uint16_t *flags, uint16_t *src)
{
    *flags = (uint16_t)(hdr[0] | hdr[1] << 8);
    *src = (uint16_t)(hdr[2] | hdr[3] << 8);
}

/* A Kafka message of several records (the spill's): the ring records of a span laid out as in
 * the ring (core/ring.h: len as a little-endian uint32, flags and src as little-endian uint16,
 * the payload, padding to 8 bytes). On a little-endian host the span is the value as it is,
 * read in place (librdkafka copies it once); elsewhere it is built in scratch. NULL when out of
 * memory. */
static inline const void *kafka_records_value(const char *span, size_t len, struct buf *scratch)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    (void)len, (void)scratch;
    return span;
#else
    buf_reset(scratch);
    for (size_t off = 0; off < len;) {
        const struct ring_rec *r = (const struct ring_rec *)(span + off);
        unsigned char hdr[RING_HDR] = {
            (unsigned char)r->len,         (unsigned char)(r->len >> 8),
            (unsigned char)(r->len >> 16), (unsigned char)(r->len >> 24),
            (unsigned char)r->flags,       (unsigned char)(r->flags >> 8),
            (unsigned char)r->src,         (unsigned char)(r->src >> 8)};
        if (buf_append(scratch, hdr, RING_HDR) ||
            buf_append(scratch, RING_REC_DATA(r), RING_REC_SIZE(r->len) - RING_HDR))
            return NULL;
        off += RING_REC_SIZE(r->len);
    }
    return scratch->data;
#endif
}

/* The next record of such a message (v[0..len), from *off): 1 with its header fields and
 * payload, *off moved past it; 0 at the end; -1 when what is left is no whole record (a message
 * not ours, or damaged). */
static inline int kafka_records_next(const unsigned char *v, size_t len, size_t *off,
                                     uint32_t *rlen, uint16_t *flags, uint16_t *src,
                                     const char **payload)
{
    if (*off == len)
        return 0;
    if (len - *off < RING_HDR)
        return -1;
    const unsigned char *h = v + *off;
    *rlen = (uint32_t)h[0] | (uint32_t)h[1] << 8 | (uint32_t)h[2] << 16 | (uint32_t)h[3] << 24;
    *flags = (uint16_t)(h[4] | h[5] << 8);
    *src = (uint16_t)(h[6] | h[7] << 8);
    if (*rlen > len - *off - RING_HDR)
        return -1;
    *payload = (const char *)h + RING_HDR;
    size_t size = RING_REC_SIZE(*rlen);
    *off += size <= len - *off ? size : len - *off; /* the last record's padding may be cut */
    return 1;
}

/* Kafka could not take a record (its bounded queue is full): notes when, and returns 1 when this
 * starts an episode worth one log line, i.e. no refusal in the REFUSAL_QUIET_NS before. A
 * burst refuses many times a second; each refusal is counted, the episode said once. */
#define REFUSAL_QUIET_NS (10 * 1000000000LL)
int refusal_starts(int64_t *refused_at);

#endif
