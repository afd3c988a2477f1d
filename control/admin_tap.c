/* `tap ROUTE [-n N] [--before]`: streams a route's live events to an admin client. Workers copy
 * tapped events into the route's small tap ring without ever waiting (a full ring skips and
 * counts); here a 50 ms timer drains those rings and fans the events out to the tap clients of
 * each route. A client that does not read fast enough skips events too, and every client is
 * told how many it missed. Runs on the control thread. */
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "control/admin_int.h"
#include "core/ring.h"
#include "router/route.h"

#define TAP_RING_BYTES   (1u << 20)
#define TAP_DRAIN_US     50000
#define TAP_CLIENT_LIMIT (1u << 20) /* unread bytes before a client starts skipping */

struct tap {
    struct client *cl;
    struct route *rt;
    int before;
    int64_t remaining; /* -1: until the client goes away */
    uint64_t skipped;  /* events this client missed (slow reader) */
    uint64_t worker_skipped0;
    uint64_t reported;
    struct tap *next;
};

static void report_skipped(struct tap *t)
{
    uint64_t worker = counter_get(&t->rt->tap_skipped) - t->worker_skipped0;
    uint64_t total = t->skipped + worker;
    if (total > t->reported) {
        admin__send(t->cl, json_pack("{s:I}", "skipped", (json_int_t)total));
        t->reported = total;
    }
}

static void finish(struct tap *t)
{
    report_skipped(t);
    admin__send(t->cl, json_pack("{s:b, s:b, s:I}", "ok", 1, "done", 1, "skipped",
                                 (json_int_t)t->reported));
    admin__close_after_write(t->cl); /* frees the client, which stops the tap */
}

/* One tapped record to every matching client of its route. */
static void fan_out(struct admin *a, struct route *rt, const struct ring_rec *r)
{
    int before = (r->flags & RING_F_TAP_BEFORE) != 0;
    for (struct tap *t = a->taps, *next; t; t = next) {
        next = t->next; /* finish() may free t */
        if (t->rt != rt || t->before != before || t->remaining == 0)
            continue;
        if (admin__unread(t->cl) > TAP_CLIENT_LIMIT) {
            t->skipped++;
            continue;
        }
        struct evbuffer *out = bufferevent_get_output(t->cl->bev);
        evbuffer_add_printf(out, "{\"stage\":\"%s\",\"event\":", before ? "before" : "after");
        evbuffer_add(out, RING_REC_DATA(r), r->len);
        evbuffer_add(out, "}\n", 2);
        if (t->remaining > 0 && --t->remaining == 0)
            finish(t);
    }
}

static void on_drain(evutil_socket_t fd, short what, void *arg)
{
    struct admin *a = arg;
    struct router *router = control_deps(a->ctl)->router;
    for (int i = 0; i < router_route_count(router); i++) {
        struct route *rt = router_route(router, i);
        struct ring *ring = atomic_load(&rt->tap);
        const char *span;
        size_t n;
        uint64_t nrec;
        while (ring && (n = ring_peek(ring, &span, 0, &nrec)) > 0) {
            for (size_t off = 0; off < n;) {
                const struct ring_rec *r = (const struct ring_rec *)(span + off);
                fan_out(a, rt, r);
                off += RING_REC_SIZE(r->len);
            }
            ring_release(ring, n, nrec);
        }
    }
    for (struct tap *t = a->taps; t; t = t->next)
        report_skipped(t);
}

json_t *admin__tap_start(struct admin *a, struct client *cl, json_t *req)
{
    const char *name = json_string_value(json_object_get(req, "route"));
    json_t *nj = json_object_get(req, "n");
    int before = json_is_true(json_object_get(req, "before"));
    if (!name)
        return admin__fail("tap needs \"route\"");
    if (nj && (!json_is_integer(nj) || json_integer_value(nj) < 0))
        return admin__fail("\"n\" must be a non-negative integer (0: until disconnected)");
    struct route *rt = router_find(control_deps(a->ctl)->router, name);
    if (!rt)
        return admin__fail("no route named %s", name);
    if (!atomic_load(&rt->tap)) {
        struct ring *r = ring_new(TAP_RING_BYTES), *expected = NULL;
        if (!r)
            return admin__fail("out of memory");
        if (!atomic_compare_exchange_strong(&rt->tap, &expected, r))
            ring_free(r);
    }
    if (!a->tap_timer) {
        a->tap_timer = event_new(control_base(a->ctl), -1, EV_PERSIST, on_drain, a);
        struct timeval tv = {0, TAP_DRAIN_US};
        if (!a->tap_timer || event_add(a->tap_timer, &tv) < 0)
            return admin__fail("cannot start the tap timer");
    }
    struct tap *t = calloc(1, sizeof(*t));
    if (!t)
        return admin__fail("out of memory");
    t->cl = cl;
    t->rt = rt;
    t->before = before;
    t->remaining = nj && json_integer_value(nj) > 0 ? json_integer_value(nj) : -1;
    t->worker_skipped0 = counter_get(&rt->tap_skipped);
    t->next = a->taps;
    a->taps = t;
    cl->tap = t;
    atomic_fetch_add(before ? &rt->taps_before : &rt->taps_after, 1);
    return admin__ok(json_pack("{s:s, s:s}", "tap", name, "stage", before ? "before" : "after"));
}

void admin__tap_stop(struct client *cl)
{
    struct admin *a = cl->a;
    struct tap *t = cl->tap;
    for (struct tap **pp = &a->taps; *pp; pp = &(*pp)->next) {
        if (*pp == t) {
            *pp = t->next;
            break;
        }
    }
    atomic_fetch_sub(t->before ? &t->rt->taps_before : &t->rt->taps_after, 1);
    cl->tap = NULL;
    free(t);
}

void admin__taps_free(struct admin *a)
{
    if (a->tap_timer) {
        event_free(a->tap_timer);
        a->tap_timer = NULL;
    }
}
