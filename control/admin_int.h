/* Internals shared by the admin module's files: admin.c (socket and protocol), admin_cmd.c (the
 * commands), admin_tap.c (live taps) and admin_http.c (/metrics, /health, /ready). Everything
 * here runs on the control thread. Not for other modules. */
#ifndef SPILLWAY_ADMIN_INT_H
#define SPILLWAY_ADMIN_INT_H

#include <jansson.h>
#include <stdint.h>

#include "control/admin.h"
#include "control/control.h"
#include "core/log.h"
#include "router/router.h"

struct bufferevent;
struct evconnlistener;
struct tap;

struct admin {
    struct control *ctl;
    struct evconnlistener *lis;
    char *path;
    struct client *clients; /* every open connection, so admin_free can close them */
    struct tap *taps;       /* live taps (admin_tap.c) */
    struct event *tap_timer;
    struct log_limit lim;
};

struct client {
    struct admin *a;
    struct bufferevent *bev;
    struct router_actor who;
    int closing;
    int discarding;  /* skipping the rest of an oversized request, up to its newline */
    struct tap *tap; /* set while the connection streams a tap */
    struct client *prev, *next;
};

typedef json_t *(*admin_cmd_fn)(struct admin *a, struct client *cl, json_t *req);

/* {"ok":false,"error":...} / body + "ok":true (a new reference either way). */
json_t *admin__fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
json_t *admin__ok(json_t *body);
/* Queues one JSON line to the client (takes the reference). */
void admin__send(struct client *cl, json_t *resp);
void admin__close_after_write(struct client *cl);
/* Bytes queued to the client and not yet read by it. */
size_t admin__unread(struct client *cl);

/* admin_cmd.c: the request/response commands. NULL when name is not one of them. */
admin_cmd_fn admin__command(const char *name);
const char *admin__command_names(void);
/* The whole stats document (shared by the stats command and /metrics). */
json_t *admin__stats(const struct control_deps *d);
/* admin_balance.c: the stats document with its "balance" (every stage's identity checked); may
 * take a few snapshots some milliseconds apart to tell events in flight from a loss. */
json_t *admin__stats_balanced(const struct control_deps *d);

/* admin_tap.c: `tap` turns the connection into a stream; the rest manage it. */
json_t *admin__tap_start(struct admin *a, struct client *cl, json_t *req);
void admin__tap_stop(struct client *cl);
void admin__taps_free(struct admin *a);

/* admin_http.c */
struct admin_http;
struct admin_http *admin_http_new(struct control *c, char *err, size_t errlen);
void admin_http_free(struct admin_http *h);

#endif
