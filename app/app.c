#include "app/app.h"

#include <errno.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "app/config.h"
#include "collector/collector.h"
#include "control/control.h"
#include "core/fsutil.h"
#include "core/log.h"
#include "core/ring.h"
#include "core/store.h"
#include "core/timeutil.h"
#include "pipeline/kpipe.h"
#include "pipeline/pipeline.h"
#include "pipeline/spill.h"
#include "router/router.h"
#include "router/script_state.h"
#include "router/sinks/sink.h"

struct app {
    struct config *cfg;
    struct event_base *base;
    struct sinks *sinks;
    struct pipeline *pl;
    struct router *router;
    struct collector *col;
    struct store *st;
    struct store *col_st; /* the collector's own connection: it never waits on a lock */
    struct script_state *script_state;
    struct control *ctl;
    struct event *sig[3];
    int partitions;
    uint64_t left_in_kafka; /* Kafka mode: records the sinks gave up on, left uncommitted */
};

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    struct app *a = arg;
    if (sig == SIGHUP) {
        log_info("SIGHUP: reopening file sinks and reloading scripts", NULL);
        sinks_reopen(a->sinks);
        control_request_reload(a->ctl);
        return;
    }
    log_info("stopping: draining in-flight events", "{s:s}", "signal",
             sig == SIGTERM ? "SIGTERM" : "SIGINT");
    event_base_loopbreak(a->base);
}

/* With the embedded default, a fresh directory gets the default script to edit. */
static int ensure_default_script(const struct config *cfg)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/default.lua", cfg->router.scripts);
    if (access(path, F_OK) == 0)
        return 0;
    int rc = fs_mkdir_p(cfg->router.scripts);
    if (rc == 0)
        rc = fs_write_file(path, embedded_default_script, embedded_default_script_len);
    if (rc == 0)
        log_info("wrote the default route script", "{s:s}", "path", path);
    return rc;
}

/* For Kafka mode's commits: every sink's in and done counters. */
static void sink_counts(void *ud, uint64_t *in, uint64_t *done, int n)
{
    struct sinks *ss = ud;
    for (int i = 0; i < n && i < sinks_count(ss); i++) {
        done[i] = counter_get(&sinks_get(ss, i)->stats.done);
        in[i] = counter_get(&sinks_get(ss, i)->stats.in);
    }
}

static int routes_here(const struct config *cfg)
{
    return cfg->pipeline.mode != PIPELINE_KAFKA || cfg->pipeline.role != ROLE_COLLECTOR;
}

static int collects_here(const struct config *cfg)
{
    return cfg->pipeline.mode != PIPELINE_KAFKA || cfg->pipeline.role != ROLE_ROUTER;
}

static int build(struct app *a, char *err, size_t errlen)
{
    struct config *cfg = a->cfg;
    a->partitions = config_partitions(cfg);
    /* The memory limit: half for the partition rings, half for the sink queues; when this
     * process produces to Kafka (spilling, or a kafka-mode collector), half for librdkafka's
     * producer queue and a quarter each for the rings and the sink queues: the producer's rate
     * is its queue over the brokers' round trip (docs/pipeline.md; S6 ingests 1.1 M events/s
     * with a quarter of its 4 MiB, 1.46 M with half, kcat -P 1.7-2.1 M in the same runs). */
    size_t limit = (size_t)cfg->pipeline.memory_limit;
    int produces = cfg->pipeline.when_full == PIPELINE_FULL_SPILL ||
                   (cfg->pipeline.mode == PIPELINE_KAFKA && cfg->pipeline.role != ROLE_ROUTER);
    size_t kafka_bytes = produces ? limit / 2 : 0;
    size_t ring_bytes = (produces ? limit / 4 : limit / 2) / (size_t)a->partitions;
    size_t queue_bytes =
        (produces ? limit / 4 : limit / 2) / (size_t)(cfg->sinks.n ? cfg->sinks.n : 1);
    int rc = fs_mkdir_p(cfg->data_dir);
    if (rc) {
        snprintf(err, errlen, "cannot create data_dir %s: %s", cfg->data_dir, strerror(-rc));
        return rc;
    }
    char dbpath[4096];
    snprintf(dbpath, sizeof(dbpath), "%s/spillway.db", cfg->data_dir);
    a->st = store_open(dbpath, err, errlen);
    if (!a->st)
        return -EIO;
    a->script_state = script_state_new(a->st);
    if (!a->script_state)
        return -ENOMEM;
    a->sinks = sinks_new(&cfg->sinks, queue_bytes, cfg->dead_letter, err, errlen);
    if (!a->sinks)
        return -ENOMEM;
    a->pl = pipeline_new(&cfg->pipeline, a->partitions, ring_bytes);
    if (!a->pl) {
        snprintf(err, errlen, "cannot allocate %d partitions of %zu bytes", a->partitions,
                 ring_bytes);
        return -ENOMEM;
    }
    if (cfg->pipeline.mode == PIPELINE_KAFKA) {
        int role = cfg->pipeline.role;
        if (pipeline_enable_kafka(a->pl, &cfg->pipeline, role != ROLE_ROUTER,
                                  role != ROLE_COLLECTOR, kafka_bytes, err, errlen))
            return -EIO;
        kpipe_set_sinks(pipeline_kpipe(a->pl), sinks_count(a->sinks), sink_counts, a->sinks);
    } else if (cfg->pipeline.when_full == PIPELINE_FULL_SPILL &&
               pipeline_enable_spill(a->pl, &cfg->pipeline, a->st, kafka_bytes, err, errlen)) {
        return -EIO;
    }
    struct router_setup setup = config_router_setup(cfg);
    a->router = router_new(&setup, a->pl, a->sinks, a->st, a->script_state, err, errlen);
    if (!a->router)
        return -EINVAL;
    /* Tail positions are saved from the collector's event loop, which every input shares: a
     * database locked by another process must not stall it for the busy timeout. */
    a->col_st = store_open_nowait(a->st, err, errlen);
    if (!a->col_st)
        return -EIO;
    a->col = collector_new(a->base, a->pl, a->col_st, &cfg->inputs, cfg->pipeline.partition_key);
    if (!a->col) {
        snprintf(err, errlen, "out of memory creating the collector");
        return -ENOMEM;
    }
    struct control_deps deps = config_control_deps(cfg);
    deps.router = a->router;
    deps.script_state = a->script_state;
    deps.store = a->st;
    deps.collector = a->col;
    deps.pipeline = a->pl;
    deps.sinks = a->sinks;
    a->ctl = control_new(&deps);
    if (!a->ctl) {
        snprintf(err, errlen, "out of memory creating the control thread");
        return -ENOMEM;
    }
    return 0;
}

static int start(struct app *a, char *err, size_t errlen)
{
    /* The roles of kafka mode: a collector routes nothing, a router listens to nothing. */
    int rc = routes_here(a->cfg) ? sinks_start(a->sinks, err, errlen) : 0;
    if (!rc && routes_here(a->cfg))
        rc = router_start(a->router, err, errlen);
    if (!rc && pipeline_spill(a->pl))
        rc = spill_start(pipeline_spill(a->pl), err, errlen);
    if (!rc && pipeline_kpipe(a->pl))
        rc = kpipe_start(pipeline_kpipe(a->pl), err, errlen);
    if (!rc)
        rc = control_start(a->ctl, err, errlen);
    if (!rc && collects_here(a->cfg))
        rc = collector_start(a->col, err, errlen);
    if (rc)
        return rc;
    const int sigs[3] = {SIGTERM, SIGINT, SIGHUP};
    for (int i = 0; i < 3; i++) {
        a->sig[i] = evsignal_new(a->base, sigs[i], on_signal, a);
        if (!a->sig[i] || evsignal_add(a->sig[i], NULL) < 0) {
            snprintf(err, errlen, "cannot install signal handlers");
            return -EINVAL;
        }
    }
    return 0;
}

/* Drains in order within shutdown_timeout and returns what could not be delivered. */
static uint64_t drain(struct app *a)
{
    int64_t deadline = time_mono_ns() + a->cfg->shutdown_timeout;
    sinks_set_deadline(a->sinks, deadline);
    uint64_t lost = collector_stop(a->col, deadline);
    lost += spill_stop(pipeline_spill(a->pl), deadline); /* what Kafka acked stays there */
    lost += kpipe_stop(pipeline_kpipe(a->pl), deadline); /* no more consuming; producer flushed */
    pipeline_close(a->pl);
    router_join(a->router);
    uint64_t sinks_lost = sinks_stop(a->sinks, deadline);
    /* Kafka mode commits what the sinks finished; what they gave up on stays in Kafka. */
    a->left_in_kafka = kpipe_commit_final(pipeline_kpipe(a->pl), sinks_lost);
    lost += sinks_lost - a->left_in_kafka;
    return lost;
}

static void teardown(struct app *a)
{
    for (int i = 0; i < 3; i++) {
        if (a->sig[i])
            event_free(a->sig[i]);
    }
    control_free(a->ctl); /* stops the control plane first: it reads everything below */
    collector_free(a->col);
    if (a->pl)
        pipeline_close(a->pl);
    if (a->router)
        router_join(a->router);
    if (a->sinks)
        sinks_stop(a->sinks, time_mono_ns());
    router_free(a->router);
    pipeline_free(a->pl);
    sinks_free(a->sinks);
    script_state_free(a->script_state);
    store_close(a->col_st);
    store_close(a->st);
    if (a->base)
        event_base_free(a->base);
}

static void log_totals(struct app *a, uint64_t lost)
{
    uint64_t delivered = 0;
    for (int i = 0; i < sinks_count(a->sinks); i++)
        delivered += counter_get(&sinks_get(a->sinks, i)->stats.delivered);
    uint64_t received = 0;
    int ninputs = a->col && collects_here(a->cfg) ? collector_input_count(a->col) : 0;
    for (int i = 0; i < ninputs; i++)
        received += counter_get(&collector_input(a->col, i)->stats.received);
    /* A Kafka-mode router has no inputs: what it took from the topic is what its partitions
     * consumed. */
    const char *what = ninputs ? "received" : "consumed";
    for (int p = 0; !ninputs && p < pipeline_partitions(a->pl); p++)
        received += counter_get(&pipeline_stats(a->pl, p)->in);
    if (lost)
        log_error("stopped: some events could not be delivered", "{s:I, s:I, s:I}", what,
                  (json_int_t)received, "delivered", (json_int_t)delivered, "undelivered",
                  (json_int_t)lost);
    else if (a->left_in_kafka)
        log_warn("stopped: nothing lost; some events stay in Kafka for the next run",
                 "{s:I, s:I, s:I}", what, (json_int_t)received, "delivered", (json_int_t)delivered,
                 "left_in_kafka", (json_int_t)a->left_in_kafka);
    else
        log_info("stopped: everything in flight was delivered", "{s:I, s:I}", what,
                 (json_int_t)received, "delivered", (json_int_t)delivered);
}

static void log_config_warning(void *ud, const char *msg)
{
    (void)ud;
    log_warn("config", "{s:s}", "warning", msg);
}

int app_run(struct config *cfg, int embedded)
{
    struct app a = {.cfg = cfg};
    char err[1024] = "";
    log_set_level((enum log_level)cfg->log_level);
    config_warnings(cfg, log_config_warning, NULL);
    signal(SIGPIPE, SIG_IGN);
    /* A file size limit (RLIMIT_FSIZE) is a full disk for a sink: write() fails with EFBIG and
     * the sink retries, instead of the signal killing the whole process. */
    signal(SIGXFSZ, SIG_IGN);
    evthread_use_pthreads();
    a.base = event_base_new();
    int rc = a.base ? 0 : -ENOMEM;
    if (!rc && embedded)
        rc = ensure_default_script(cfg);
    if (!rc)
        rc = build(&a, err, sizeof(err));
    if (!rc)
        rc = start(&a, err, sizeof(err));
    if (rc) {
        log_error("cannot start", "{s:s}", "error", err[0] ? err : strerror(-rc));
        teardown(&a);
        return 2;
    }
    log_info("ready", "{s:s, s:i, s:i, s:i}", "config", cfg->file, "partitions", a.partitions,
             "inputs", cfg->inputs.n, "sinks", cfg->sinks.n);
    control_set_ready(a.ctl, 1);
    event_base_dispatch(a.base);
    control_set_ready(a.ctl, 0);
    uint64_t lost = drain(&a);
    log_totals(&a, lost);
    teardown(&a);
    return lost ? 1 : 0;
}
