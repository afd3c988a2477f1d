#include "control/control.h"

#include <errno.h>
#include <event2/event.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "control/admin.h"
#include "control/admin_int.h"
#include "core/log.h"
#include "core/thread.h"
#include "core/timeutil.h"
#include "router/router.h"
#include "router/script_state.h"

/* Editors save in bursts (write, rename, chmod): reload once the burst is over. */
#define RELOAD_DEBOUNCE_US 100000
#define EXPIRE_EVERY_US    200000
#define KV_FLUSH_EVERY_US  200000

struct control {
    struct control_deps d;
    struct event_base *base;
    struct event *reload_ev;   /* activated from other threads */
    struct event *debounce_ev; /* inotify burst -> one reload */
    struct event *tick_ev;     /* expiry and the spillway.state flush */
    struct event *inotify_ev;
    struct event *stop_ev; /* activated by control_stop: the loop breaks from inside */
    int inotify_fd;
    struct admin *admin;
    struct admin_http *http;
    _Atomic int ready;
    pthread_t thread;
    int started;
    int64_t
        flush_next; /* no spillway.state flush before (monotonic ns): backing off a failed one */
    int64_t flush_backoff; /* the wait after the next failure */
};

static void do_reload(struct control *c, const char *why)
{
    int changed = 0;
    char err[512];
    int rc = router_reload(c->d.router, &changed, err, sizeof(err));
    log_info("scripts checked", "{s:s, s:i, s:b}", "trigger", why, "reloaded", changed, "ok",
             rc == 0);
}

static void on_reload(evutil_socket_t fd, short what, void *arg)
{
    do_reload(arg, "signal");
}

static void on_debounce(evutil_socket_t fd, short what, void *arg)
{
    do_reload(arg, "file change");
}

static void on_inotify(evutil_socket_t fd, short what, void *arg)
{
    struct control *c = arg;
    char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
    ssize_t n;
    int relevant = 0;
    while ((n = read(fd, buf, sizeof(buf))) > 0) {
        for (char *p = buf; p < buf + n;) {
            struct inotify_event *ev = (struct inotify_event *)p;
            if (ev->len && strstr(ev->name, ".lua"))
                relevant = 1;
            p += sizeof(*ev) + ev->len;
        }
    }
    if (relevant) {
        struct timeval tv = {0, RELOAD_DEBOUNCE_US};
        evtimer_add(c->debounce_ev, &tv);
    }
}

/* A loopbreak from another thread is lost when it comes before the loop started (the loop
 * clears the flag on entry); an activated event is not: it runs first thing. */
static void on_stop(evutil_socket_t fd, short what, void *arg)
{
    struct control *c = arg;
    event_base_loopbreak(c->base);
}

/* A failed flush (the database locked by another process) cost this thread the busy timeout;
 * it waits 2 s, then longer, up to 30 s, before the next attempt, so the admin commands queued
 * behind it are answered in between. What is not flushed stays dirty: nothing is lost. */
static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    struct control *c = arg;
    router_expire(c->d.router, time_now_ns());
    int64_t now = time_mono_ns();
    if (!c->d.script_state || now < c->flush_next)
        return;
    if (script_state_flush(c->d.script_state) >= 0) {
        c->flush_backoff = 0;
        return;
    }
    c->flush_backoff = c->flush_backoff ? c->flush_backoff * 2 : 2000000000LL;
    if (c->flush_backoff > 30000000000LL)
        c->flush_backoff = 30000000000LL;
    c->flush_next = time_mono_ns() + c->flush_backoff;
}

struct control *control_new(const struct control_deps *deps)
{
    struct control *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->d = *deps;
    c->inotify_fd = -1;
    c->base = event_base_new();
    if (!c->base)
        goto fail;
    c->reload_ev = event_new(c->base, -1, 0, on_reload, c);
    c->debounce_ev = evtimer_new(c->base, on_debounce, c);
    c->tick_ev = event_new(c->base, -1, EV_PERSIST, on_tick, c);
    c->stop_ev = event_new(c->base, -1, 0, on_stop, c);
    if (!c->reload_ev || !c->debounce_ev || !c->tick_ev || !c->stop_ev)
        goto fail;
    return c;
fail:
    control_free(c);
    return NULL;
}

void control_free(struct control *c)
{
    if (!c)
        return;
    control_stop(c);
    admin_free(c->admin);
    admin_http_free(c->http);
    struct event *evs[] = {c->reload_ev, c->debounce_ev, c->tick_ev, c->inotify_ev, c->stop_ev};
    for (size_t i = 0; i < sizeof(evs) / sizeof(evs[0]); i++) {
        if (evs[i])
            event_free(evs[i]);
    }
    if (c->inotify_fd >= 0)
        close(c->inotify_fd);
    if (c->base)
        event_base_free(c->base);
    free(c);
}

static int watch_scripts(struct control *c)
{
    c->inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (c->inotify_fd < 0)
        return -errno;
    const char *dir = c->d.scripts;
    if (inotify_add_watch(c->inotify_fd, dir, IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE) < 0) {
        log_info("not watching the scripts directory: reload with SIGHUP or spillway ctl reload",
                 "{s:s, s:s}", "dir", dir, "error", strerror(errno));
        return 0;
    }
    c->inotify_ev = event_new(c->base, c->inotify_fd, EV_READ | EV_PERSIST, on_inotify, c);
    if (!c->inotify_ev || event_add(c->inotify_ev, NULL) < 0)
        return -ENOMEM;
    return 0;
}

static void *control_main(void *arg)
{
    struct control *c = arg;
    event_base_dispatch(c->base);
    return NULL;
}

int control_start(struct control *c, char *err, size_t errlen)
{
    int rc = watch_scripts(c);
    if (rc) {
        snprintf(err, errlen, "inotify: %s", strerror(-rc));
        return rc;
    }
    struct timeval tv = {0,
                         EXPIRE_EVERY_US < KV_FLUSH_EVERY_US ? EXPIRE_EVERY_US : KV_FLUSH_EVERY_US};
    event_add(c->tick_ev, &tv);
    if (*c->d.admin->socket) {
        c->admin = admin_new(c, err, errlen);
        if (!c->admin)
            return -EINVAL;
    }
    if (*c->d.admin->http) {
        c->http = admin_http_new(c, err, errlen);
        if (!c->http)
            return -EINVAL;
    }
    rc = thread_start(&c->thread, control_main, c, "control");
    if (rc) {
        snprintf(err, errlen, "cannot start the control thread: %s", strerror(rc));
        return -rc;
    }
    c->started = 1;
    return 0;
}

void control_request_reload(struct control *c)
{
    event_active(c->reload_ev, EV_TIMEOUT, 0);
}

void control_stop(struct control *c)
{
    if (!c->started)
        return;
    event_active(c->stop_ev, EV_TIMEOUT, 0);
    pthread_join(c->thread, NULL);
    c->started = 0;
    if (c->d.script_state)
        script_state_flush(c->d.script_state);
}

void control_set_ready(struct control *c, int ready)
{
    atomic_store(&c->ready, ready);
}

int control_ready(struct control *c)
{
    return atomic_load(&c->ready);
}

const struct control_deps *control_deps(struct control *c)
{
    return &c->d;
}

struct event_base *control_base(struct control *c)
{
    return c->base;
}
