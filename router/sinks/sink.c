#include "sink.h"

#include <errno.h>
#include <jansson.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "ring.h"
#include "timeutil.h"

extern const struct cfg_section sink_file_section;
extern const struct cfg_section sink_stdout_section;
extern const struct cfg_section sink_null_section;

/* The registry: adding a sink type adds one line here. */
/* clang-format off */
const struct cfg_section *const sink_sections[] = {
    &sink_file_section,
    &sink_stdout_section,
    &sink_null_section,
    NULL,
};
/* clang-format on */

const struct cfg_section sink_list_section = {
    .name = "sink", .variants = sink_sections, .keys = (const struct cfg_key[]){{0}}};

const char *const sink_when_full_names[] = {"block", "drop_newest", NULL};

#define IDLE_WAIT_NS   (100 * 1000000LL) /* queue idle: call flush this often */
#define BACKOFF_MIN_NS (50 * 1000000LL)
#define BACKOFF_MAX_NS (5000 * 1000000LL)

struct sinks {
    struct sink *v;
    int n;
    _Atomic int64_t deadline; /* 0 while running */
};

struct sink_thread_arg {
    struct sinks *ss;
    struct sink *s;
};

static int past_deadline(const struct sinks *ss)
{
    int64_t dl = atomic_load(&((struct sinks *)ss)->deadline);
    return dl && time_mono_ns() >= dl;
}

int sinks_past_deadline(const struct sinks *ss)
{
    return past_deadline(ss);
}

void sinks_set_deadline(struct sinks *ss, int64_t deadline_ns)
{
    atomic_store(&ss->deadline, deadline_ns);
}

/* Sleeps for a backoff step, in slices, returning early past the shutdown deadline. */
static void backoff_sleep(struct sinks *ss, int64_t ns)
{
    while (ns > 0 && !past_deadline(ss)) {
        int64_t step = ns > 50000000 ? 50000000 : ns;
        struct timespec ts = {0, (long)step};
        nanosleep(&ts, NULL);
        ns -= step;
    }
}

static void deliver(struct sinks *ss, struct sink *s, const char *span, size_t len)
{
    uint64_t nrec = ring_count(span, len);
    int64_t backoff = BACKOFF_MIN_NS;
    struct log_limit lim = {0};
    for (;;) {
        enum sink_result rc = s->ops->write(s, span, len, nrec);
        if (rc == SINK_OK) {
            counter_add(&s->stats.delivered, nrec);
            return;
        }
        if (rc == SINK_FAIL) {
            counter_add(&s->stats.failed, nrec);
            return;
        }
        counter_add(&s->stats.retries, 1);
        if (past_deadline(ss)) {
            counter_add(&s->stats.dropped, nrec);
            return;
        }
        if (log_limit_take(&lim) >= 0)
            log_warn("sink retrying", "{s:s, s:I}", "sink", s->name, "records", (json_int_t)nrec);
        backoff_sleep(ss, backoff + (int64_t)(rand() % (int)(backoff / 4 + 1)));
        backoff = backoff * 2 > BACKOFF_MAX_NS ? BACKOFF_MAX_NS : backoff * 2;
    }
}

static void *sink_main(void *arg)
{
    struct sink_thread_arg *ta = arg;
    struct sinks *ss = ta->ss;
    struct sink *s = ta->s;
    free(ta);
    for (;;) {
        if (atomic_exchange(&s->reopen, 0) && s->ops->reopen)
            s->ops->reopen(s);
        if (past_deadline(ss))
            break; /* sinks_stop counts what is left */
        const char *span;
        size_t n = ring_peek(s->q, &span, IDLE_WAIT_NS);
        if (n == 0) {
            if (ring_closed_empty(s->q))
                break;
            if (s->ops->flush)
                s->ops->flush(s);
            continue;
        }
        deliver(ss, s, span, n);
        ring_release(s->q, n);
    }
    if (s->ops->flush)
        s->ops->flush(s);
    return NULL;
}

struct sinks *sinks_new(const struct cfg_list *list, size_t queue_bytes, char *err, size_t errlen)
{
    struct sinks *ss = calloc(1, sizeof(*ss));
    if (!ss)
        return NULL;
    ss->v = calloc((size_t)list->n + 1, sizeof(*ss->v));
    if (!ss->v)
        goto fail;
    for (int i = 0; i < list->n; i++) {
        const struct cfg_item *it = cfg_list_item(list, i);
        struct sink *s = &ss->v[ss->n++];
        s->ops = it->variant->impl;
        s->name = it->name;
        s->type = it->type;
        s->opts = it->opts;
        s->id = i;
        s->when_full = ((const struct sink_common *)it->opts)->when_full;
        s->q = ring_new(queue_bytes);
        if (!s->q) {
            snprintf(err, errlen, "sink %s: cannot allocate a %zu-byte queue", s->name,
                     queue_bytes);
            goto fail;
        }
    }
    return ss;
fail:
    sinks_free(ss);
    return NULL;
}

void sinks_free(struct sinks *ss)
{
    if (!ss)
        return;
    for (int i = 0; i < ss->n; i++) {
        struct sink *s = &ss->v[i];
        if (s->started)
            pthread_join(s->thread, NULL);
        if (s->ops->close)
            s->ops->close(s);
        ring_free(s->q);
    }
    free(ss->v);
    free(ss);
}

int sinks_count(const struct sinks *ss)
{
    return ss->n;
}

struct sink *sinks_get(struct sinks *ss, int i)
{
    return &ss->v[i];
}

int sinks_find(const struct sinks *ss, const char *name)
{
    for (int i = 0; i < ss->n; i++) {
        if (strcmp(ss->v[i].name, name) == 0)
            return i;
    }
    return -1;
}

int sinks_start(struct sinks *ss, char *err, size_t errlen)
{
    for (int i = 0; i < ss->n; i++) {
        struct sink *s = &ss->v[i];
        int rc = s->ops->open ? s->ops->open(s, err, errlen) : 0;
        if (rc)
            return rc;
    }
    for (int i = 0; i < ss->n; i++) {
        struct sink *s = &ss->v[i];
        struct sink_thread_arg *ta = malloc(sizeof(*ta));
        if (!ta)
            return -ENOMEM;
        ta->ss = ss;
        ta->s = s;
        int rc = pthread_create(&s->thread, NULL, sink_main, ta);
        if (rc) {
            free(ta);
            snprintf(err, errlen, "sink %s: cannot start its thread: %s", s->name, strerror(rc));
            return -rc;
        }
        s->started = 1;
    }
    return 0;
}

uint64_t sinks_stop(struct sinks *ss, int64_t deadline_ns)
{
    if (!atomic_load(&ss->deadline))
        atomic_store(&ss->deadline, deadline_ns);
    for (int i = 0; i < ss->n; i++)
        ring_close(ss->v[i].q);
    uint64_t lost = 0;
    for (int i = 0; i < ss->n; i++) {
        struct sink *s = &ss->v[i];
        if (s->started) {
            pthread_join(s->thread, NULL);
            s->started = 0;
        }
        /* What a thread could not deliver before the deadline. */
        const char *span;
        size_t n;
        while ((n = ring_peek(s->q, &span, 0)) > 0) {
            uint64_t c = ring_count(span, n);
            counter_add(&s->stats.dropped, c);
            lost += c;
            ring_release(s->q, n);
        }
    }
    return lost;
}

void sinks_reopen(struct sinks *ss)
{
    for (int i = 0; i < ss->n; i++)
        atomic_store(&ss->v[i].reopen, 1);
}

int64_t sinks_deadline(const struct sinks *ss)
{
    return atomic_load(&((struct sinks *)ss)->deadline);
}
