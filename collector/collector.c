#include "collector/collector.h"

#include "collector/format.h"

#include <errno.h>
#include <event2/event.h>
#include <jansson.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/hash.h"
#include "core/jsontok.h"
#include "core/jsonw.h"
#include "core/log.h"
#include "core/ring.h"
#include "core/strlist.h"
#include "core/utf8.h"
#include "pipeline/pipeline.h"

/* While blocked, staged records are retried on a timer: RETRY_MIN_US after a retry that moved
 * something, twice as long after each that did not, up to RETRY_MAX_US. A timer rather than a
 * cross-thread wake-up keeps workers and the spill thread free of any knowledge of the
 * collector. Short while things move, as room comes back in small steps when spilling (S6's
 * ingest: 481,000/s retrying every 1 ms, 549,000/s every 200 us); long while nothing does, so a
 * collector blocked for hours behind a dead sink wakes 100 times a second, not 5,000. */
#define RETRY_MIN_US 100
#define RETRY_MAX_US 10000

struct collector {
    struct event_base *base;
    struct pipeline *pl;
    struct pipeline_producer prod;
    struct input **inputs;
    int ninputs;
    struct recv_time now;
    struct buf scratch;
    struct event *retry;
    int retry_us;         /* the next wait while blocked (collector_commit) */
    size_t retry_pending; /* what was staged before the last retry */
    int paused;
    int stopped;
    int64_t drain_until; /* while stopping: inputs read what senders wrote until then */
    size_t max_record;
    const char *partition_key;
    uint64_t stream;          /* the stream the current read comes from (see collector_begin) */
    int spread;               /* the read is of messages (requests, datagrams), not of a stream */
    uint64_t message;         /* counts those messages: keyless events go round robin by it */
    char key_probe[256];      /* "\"<partition_key>\":" */
    const char *const *among; /* the last names of collector_event_among, */
    int key_among;            /* and whether the partition key is one of them */
    struct jsontok keytok;
    struct buf keyval;
    struct buf built;
    struct buf *last;     /* the staging batch the last event went to (collector_buffer) */
    struct buf *reserved; /* a batch collector_buffer lent, its header at reserved_at */
    size_t reserved_at;
    struct buf field;      /* ,"name":"value" added to the stream's events (collector_field) */
    char field_probe[256]; /* "\"name\":" */
    const char *field_name;
    struct buf with_field;
    struct log_limit dead_log;
    _Atomic uint64_t staged; /* records staged and not in the pipeline after the last flush */
};

/* A record counted as accepted when it was staged that the pipeline refused (drop_newest) or
 * that was still staged at the stop deadline: it moves from accepted to dropped, so an input
 * keeps received = accepted + dropped. */
static void on_drop(void *ud, uint16_t src)
{
    struct collector *c = ud;
    if (src < c->ninputs) {
        counter_add(&c->inputs[src]->stats.accepted, UINT64_MAX); /* minus one */
        counter_add(&c->inputs[src]->stats.dropped, 1);
    }
}

/* Gives back a batch collector_buffer lent and no event was staged from. */
static void unreserve(struct collector *c)
{
    if (c->reserved)
        ring_batch_cancel(c->reserved, c->reserved_at);
    c->reserved = NULL;
}

/* Moves the staged records into the pipeline; publishes how many are left (only counted while
 * the pipeline pushes back, so this costs nothing in the common case). */
static size_t flush(struct collector *c)
{
    unreserve(c);
    size_t pending = pipeline_producer_flush(&c->prod);
    uint64_t n = 0;
    for (int p = 0; pending && p < c->prod.nbatch; p++)
        n += ring_count(c->prod.batch[p].data, c->prod.batch[p].len);
    atomic_store_explicit(&c->staged, n, memory_order_relaxed);
    return pending;
}

uint64_t collector_staged(const struct collector *c)
{
    return atomic_load_explicit(&((struct collector *)c)->staged, memory_order_relaxed);
}

static void set_paused(struct collector *c, int paused)
{
    if (c->paused == paused || c->stopped)
        return;
    c->paused = paused;
    for (int i = 0; i < c->ninputs; i++) {
        struct input *in = c->inputs[i];
        if (paused && in->type->pause)
            in->type->pause(in);
        else if (!paused && in->type->resume)
            in->type->resume(in);
    }
    log_debug(paused ? "pipeline full: inputs paused" : "inputs resumed", NULL);
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
    struct collector *c = arg;
    collector_commit(c);
}

void collector_commit(struct collector *c)
{
    size_t before = c->paused ? c->retry_pending : 0, pending = flush(c);
    if (pending) {
        if (!c->paused || pending < before)
            c->retry_us = RETRY_MIN_US;
        else if (c->retry_us < RETRY_MAX_US)
            c->retry_us = c->retry_us * 2 < RETRY_MAX_US ? c->retry_us * 2 : RETRY_MAX_US;
        c->retry_pending = pending;
        set_paused(c, 1);
        struct timeval tv = {0, c->retry_us};
        if (!c->stopped)
            evtimer_add(c->retry, &tv);
    } else {
        set_paused(c, 0);
    }
}

struct collector *collector_new(struct event_base *base, struct pipeline *pl, struct store *st,
                                const struct cfg_list *inputs, const char *partition_key)
{
    struct collector *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->base = base;
    c->pl = pl;
    c->max_record = pipeline_max_event(pl);
    c->partition_key = partition_key ? partition_key : "";
    snprintf(c->key_probe, sizeof(c->key_probe), "\"%s\":", c->partition_key);
    if (pipeline_producer_init(&c->prod, pl, on_drop, c))
        goto fail;
    c->retry = evtimer_new(base, on_retry, c);
    c->inputs = calloc((size_t)inputs->n + 1, sizeof(*c->inputs));
    if (!c->retry || !c->inputs)
        goto fail;
    for (int i = 0; i < inputs->n; i++) {
        const struct cfg_item *it = cfg_list_item(inputs, i);
        struct input *in = calloc(1, sizeof(*in));
        if (!in)
            goto fail;
        c->inputs[c->ninputs++] = in;
        in->type = input_types[it->index];
        in->name = it->name;
        in->opts = it->opts;
        in->id = (uint16_t)i;
        in->col = c;
        in->base = base;
        in->store = st;
        const struct input_common *common = it->opts; /* every opts struct starts with it */
        normalizer_init(&in->norm, in->name, input_aliases(common), partition_key);
    }
    recv_time_now(&c->now);
    return c;
fail:
    collector_free(c);
    return NULL;
}

void collector_free(struct collector *c)
{
    if (!c)
        return;
    for (int i = 0; i < c->ninputs; i++) {
        struct input *in = c->inputs[i];
        if (in->type->destroy)
            in->type->destroy(in);
        format_state_close(in);
        normalizer_free(&in->norm);
        free(in);
    }
    free(c->inputs);
    if (c->retry)
        event_free(c->retry);
    if (c->prod.batch)
        pipeline_producer_free(&c->prod);
    buf_free(&c->scratch);
    buf_free(&c->keyval);
    buf_free(&c->built);
    buf_free(&c->field);
    buf_free(&c->with_field);
    jsontok_free(&c->keytok);
    free(c);
}

int collector_start(struct collector *c, char *err, size_t errlen)
{
    for (int i = 0; i < c->ninputs; i++) {
        struct input *in = c->inputs[i];
        int rc = in->type->start(in, err, errlen);
        if (rc)
            return rc;
    }
    return 0;
}

/* Waits for the workers to take what is staged, up to the deadline; 0 when it all went. */
static int flush_wait(struct collector *c, int64_t until_ns)
{
    while (flush(c)) {
        if (time_mono_ns() >= until_ns)
            return -1;
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    return 0;
}

int collector_stop_commit(struct collector *c)
{
    return flush_wait(c, c->drain_until) == 0 && time_mono_ns() < c->drain_until ? 0 : -1;
}

uint64_t collector_stop(struct collector *c, int64_t deadline_ns)
{
    /* Reading what senders already wrote gets half of the time left; the other half is for
     * the workers and sinks to deliver it. */
    int64_t now = time_mono_ns();
    c->drain_until = now + (deadline_ns - now) / 2;
    for (int i = 0; i < c->ninputs; i++) {
        struct input *in = c->inputs[i];
        if (in->type->stop)
            in->type->stop(in);
    }
    c->stopped = 1;
    evtimer_del(c->retry);
    /* The loop no longer runs: wait for the workers to make room, up to the deadline. */
    flush_wait(c, deadline_ns);
    uint64_t lost = 0;
    for (int p = 0; p < c->prod.nbatch; p++) {
        struct buf *b = &c->prod.batch[p];
        for (size_t off = 0; off < b->len;) {
            const struct ring_rec *r = (const struct ring_rec *)(b->data + off);
            on_drop(c, r->src);
            lost++;
            off += RING_REC_SIZE(r->len);
        }
        b->len = 0;
    }
    atomic_store_explicit(&c->staged, 0, memory_order_relaxed);
    return lost;
}

int collector_input_count(const struct collector *c)
{
    return c->ninputs;
}

struct input *collector_input(struct collector *c, int i)
{
    return c->inputs[i];
}

void collector_begin(struct collector *c)
{
    collector_begin_messages(c);
    c->message++;
}

void collector_begin_messages(struct collector *c)
{
    collector_begin_stream(c, 0);
    c->spread = 1;
}

void collector_begin_stream(struct collector *c, uint64_t stream)
{
    recv_time_now(&c->now);
    c->stream = stream;
    c->spread = 0;
    c->field.len = 0;
}

void collector_next_message(struct collector *c)
{
    c->message++;
}

void collector_field(struct collector *c, const char *name, const char *value)
{
    c->field.len = 0;
    if (!name || !*name || !value)
        return;
    c->field_name = name;
    snprintf(c->field_probe, sizeof(c->field_probe), "\"%s\":", name);
    buf_putc(&c->field, ',');
    jsonw_string(&c->field, name, strlen(name));
    buf_putc(&c->field, ':');
    jsonw_string(&c->field, value, strlen(value));
}

/* The token of a top-level member of an event (valid JSON), or -1. The text is parsed only
 * when probe ("\"name\":") appears in it at all. */
static int find_member(struct collector *c, const char *json, size_t len, const char *probe,
                       const char *name)
{
    if (!memmem(json, len, probe, strlen(probe)) || jsontok_parse_trusted(&c->keytok, json, len))
        return -1;
    return jsontok_find(&c->keytok, 0, name, strlen(name));
}

const struct recv_time *collector_now(const struct collector *c)
{
    return &c->now;
}

/* Stages one finished record into its partition's batch: copied there, or, built there by
 * collector_buffer, its header completed in place. */
static void stage(struct input *in, const char *data, size_t len, uint16_t flags,
                  const uint64_t *hash)
{
    struct collector *c = in->col;
    struct buf *lent = c->reserved;
    size_t lent_at = c->reserved_at;
    c->reserved = NULL;
    if (lent &&
        (data != lent->data + lent_at + RING_HDR || lent->len != lent_at + RING_HDR + len)) {
        int inside = data >= lent->data + lent_at && data < lent->data + lent->len, failed = 0;
        if (inside) {
            /* Part of what was built there (no format stages that): off it before it goes,
             * into collector_buffer's own buffer, unused while a batch is lent. */
            buf_reset(&c->built);
            failed = buf_append(&c->built, data, len);
            data = c->built.data;
        }
        ring_batch_cancel(lent, lent_at);
        lent = NULL;
        if (failed) {
            counter_add(&in->stats.dropped, 1);
            log_error("out of memory staging a record: dropped", "{s:s}", "input", in->name);
            return;
        }
    }
    if (c->field.len && !(flags & RING_F_DEAD) && len > 1 && data[len - 1] == '}' &&
        find_member(c, data, len, c->field_probe, c->field_name) < 0) {
        /* The stream's field goes last, unless the event has that field already. */
        buf_reset(&c->with_field);
        buf_append(&c->with_field, data, len - 1);
        buf_append(&c->with_field, c->field.data, c->field.len);
        buf_putc(&c->with_field, '}');
        if (lent) { /* the event with the field is another: the one built goes */
            ring_batch_cancel(lent, lent_at);
            lent = NULL;
        }
        data = c->with_field.data;
        len = c->with_field.len;
    }
    /* Without a partition key an event follows its stream (a connection, a file), so one
     * sender's events stay in order; events of messages (an HTTP request, a datagram) go round
     * robin by message, a request's events together. An empty partition_key: every event round
     * robin. */
    uint64_t sticky;
    if (!hash && *c->partition_key) {
        sticky = c->spread ? c->message : hash64(&c->stream, sizeof(c->stream)) ^ in->id;
        hash = &sticky;
    }
    struct buf *b = pipeline_producer_batch(&c->prod, hash);
    int rc;
    if (lent == b) {
        struct ring_rec *h = (struct ring_rec *)(b->data + lent_at);
        h->flags = flags;
        h->src = in->id;
        rc = ring_batch_end(b, lent_at);
    } else {
        rc = ring_batch_add(b, data, len, flags, in->id);
        if (lent) /* built in another partition's batch: copied, then given back */
            ring_batch_cancel(lent, lent_at);
    }
    c->last = b;
    if (rc) {
        counter_add(&in->stats.dropped, 1);
        log_error("out of memory staging a record: dropped", "{s:s}", "input", in->name);
        return;
    }
    counter_add(&in->stats.accepted, 1);
}

/* Builds and stages a dead letter; the caller has counted the record as received. */
static void dead_letter(struct input *in, const char *reason, const char *raw, size_t len)
{
    struct collector *c = in->col;
    counter_add(&in->stats.dead_letter, 1);
    int64_t suppressed = log_limit_take(&c->dead_log);
    if (suppressed >= 0) {
        size_t sample = utf8_check(raw, len > 200 ? 200 : len);
        log_warn("record dead-lettered", "{s:s, s:s, s:s%, s:I}", "input", in->name, "error",
                 reason, "sample", raw, sample, "suppressed", (json_int_t)suppressed);
    }
    buf_reset(&c->scratch);
    if (normalize_dead_letter(&c->scratch, in->name, &c->now, reason, raw, len)) {
        counter_add(&in->stats.dropped, 1);
        return;
    }
    stage(in, c->scratch.data, c->scratch.len, RING_F_DEAD, NULL);
}

void collector_dead(struct input *in, const char *reason, const char *raw, size_t len)
{
    counter_add(&in->stats.received, 1);
    dead_letter(in, reason, raw, len);
}

int collector_json_try(struct input *in, const char *json, size_t len, const char **err)
{
    struct collector *c = in->col;
    uint64_t hash = 0;
    int has_hash = 0;
    buf_reset(&c->scratch);
    if (normalize_json(&in->norm, json, len, &c->now, &c->scratch, &hash, &has_hash, err))
        return -EINVAL;
    counter_add(&in->stats.received, 1);
    if (c->scratch.len > c->max_record) {
        dead_letter(in, "too large", json, len);
        return 0;
    }
    stage(in, c->scratch.data, c->scratch.len, 0, has_hash ? &hash : NULL);
    return 0;
}

void collector_json(struct input *in, const char *json, size_t len)
{
    const char *err = NULL;
    if (collector_json_try(in, json, len, &err)) {
        counter_add(&in->stats.received, 1);
        dead_letter(in, err, json, len);
    }
}

/* The partition hash of an event built by a parser (syslog, statsd): the partition key's value
 * is looked up only when its name appears in the text at all. */
static int built_key_hash(struct collector *c, const char *json, size_t len, uint64_t *hash)
{
    int v = *c->partition_key ? find_member(c, json, len, c->key_probe, c->partition_key) : -1;
    if (v < 0)
        return 0;
    const jsmntok_t *t = &c->keytok.tok[v];
    int str = t->type == JSMN_STRING; /* its quotes are outside the token */
    *hash = normalize_value_hash(json + t->start - str, (size_t)(t->end - t->start + 2 * str),
                                 &c->keyval);
    return 1;
}

struct buf *collector_buffer(struct collector *c, size_t *at)
{
    unreserve(c);
    size_t off;
    if (!c->last || ring_batch_begin(c->last, 0, 0, &off)) {
        *at = 0;
        buf_reset(&c->built); /* not scratch: a dead letter for the built event reuses that */
        return &c->built;
    }
    c->reserved = c->last;
    c->reserved_at = off;
    *at = off + RING_HDR;
    return c->last;
}

void collector_event(struct input *in, const char *json, size_t len)
{
    struct collector *c = in->col;
    uint64_t hash;
    counter_add(&in->stats.received, 1);
    if (len > c->max_record) {
        dead_letter(in, "too large", json, len);
        return;
    }
    int has = built_key_hash(c, json, len, &hash);
    stage(in, json, len, 0, has ? &hash : NULL);
}

void collector_event_keyed(struct input *in, const char *json, size_t len, const char *key,
                           size_t klen)
{
    struct collector *c = in->col;
    counter_add(&in->stats.received, 1);
    if (len > c->max_record) {
        dead_letter(in, "too large", json, len);
        return;
    }
    uint64_t hash = key ? normalize_value_hash(key, klen, &c->keyval) : 0;
    stage(in, json, len, 0, key ? &hash : NULL);
}

void collector_event_among(struct input *in, const char *json, size_t len, const char *const *names)
{
    struct collector *c = in->col;
    if (names != c->among) {
        c->among = names;
        c->key_among = str_among(c->partition_key, names);
    }
    if (c->key_among)
        collector_event(in, json, len);
    else
        collector_event_keyed(in, json, len, NULL, 0);
}

const char *collector_partition_key(const struct collector *c)
{
    return c->partition_key;
}

int collector_paused(const struct collector *c)
{
    return c->paused;
}

void collector_json_token(struct input *in, int tok)
{
    struct collector *c = in->col;
    const struct jsontok *t = &in->norm.tok;
    counter_add(&in->stats.received, 1);
    size_t s = jsontok_text_start(t, tok), e = jsontok_text_end(t, tok);
    if (t->tok[tok].type != JSMN_OBJECT) {
        dead_letter(in, "not a JSON object", t->js + s, e - s);
        return;
    }
    uint64_t hash = 0;
    int has_hash = 0;
    buf_reset(&c->scratch);
    if (normalize_tokens(&in->norm, tok, &c->now, &c->scratch, &hash, &has_hash)) {
        dead_letter(in, "out of memory", t->js + s, e - s);
        return;
    }
    if (c->scratch.len > c->max_record) {
        dead_letter(in, "too large", t->js + s, e - s);
        return;
    }
    stage(in, c->scratch.data, c->scratch.len, 0, has_hash ? &hash : NULL);
}
