#include "control/admin_int.h"

#include <errno.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdatomic.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "collector/collector.h"
#include "control/control.h"
#include "core/dlist.h"
#include "core/fsutil.h"
#include "core/log.h"
#include "core/ring.h"
#include "core/store.h"
#include "core/timeutil.h"
#include "pipeline/pipeline.h"
#include "router/route.h"
#include "router/router.h"
#include "router/sinks/sink.h"

static const struct cfg_key admin_keys[] = {
    {"socket", CFG_STRING, offsetof(struct admin_config, socket), "./run/admin.sock",
     "Unix socket of the admin protocol (spillway ctl)."},
    {"socket_mode", CFG_STRING, offsetof(struct admin_config, socket_mode), "0600",
     "Permissions of the admin socket (0660 lets a group in; allow_uids must list them too)."},
    {"allow_uids", CFG_STRLIST, offsetof(struct admin_config, allow_uids), NULL,
     "User ids, besides root and spillway's own, whose clients the admin socket accepts "
     "(checked with SO_PEERCRED)."},
    {"http", CFG_STRING, offsetof(struct admin_config, http), "127.0.0.1:8686",
     "host:port serving /metrics, /health and /ready; empty turns it off."},
    {"http_token", CFG_STRING, offsetof(struct admin_config, http_token), "",
     "Bearer token the HTTP admin requires when set (use ${ENV}).", CFG_SECRET},
    {0},
};

const struct cfg_section admin_config_section = {
    .name = "admin", .size = sizeof(struct admin_config), .keys = admin_keys};

#define MAX_REQUEST    (64 * 1024)
#define MAX_UNREAD_OUT (4 * 1024 * 1024)

json_t *admin__fail(const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return json_pack("{s:b, s:s}", "ok", 0, "error", msg);
}

json_t *admin__ok(json_t *body)
{
    json_t *o = body ? body : json_object();
    json_object_set_new(o, "ok", json_true());
    return o;
}

static json_t *dispatch(struct admin *a, struct client *cl, const char *line, size_t len)
{
    json_error_t jerr;
    json_t *req = json_loadb(line, len, 0, &jerr);
    if (!req)
        return admin__fail("request is not JSON: %s", jerr.text);
    json_t *resp;
    const char *cmd = json_string_value(json_object_get(req, "cmd"));
    admin_cmd_fn fn = cmd ? admin__command(cmd) : NULL;
    if (!json_is_object(req) || !cmd)
        resp = admin__fail("a request is an object with a \"cmd\" string");
    else if (!fn)
        resp = admin__fail("unknown command \"%s\"; commands: %s", cmd, admin__command_names());
    else
        resp = fn(a, cl, req);
    json_decref(req);
    return resp;
}

static void client_free(struct client *cl)
{
    struct admin *a = cl->a;
    if (cl->tap)
        admin__tap_stop(cl);
    DLIST_UNLINK(a->clients, cl);
    bufferevent_free(cl->bev);
    free(cl);
}

void admin__send(struct client *cl, json_t *resp)
{
    if (!resp)
        return;
    char *text = json_dumps(resp, JSON_COMPACT);
    json_decref(resp);
    if (!text)
        return;
    size_t n = strlen(text);
    text[n] = '\n'; /* json_dumps leaves exactly room for the NUL we replace */
    bufferevent_write(cl->bev, text, n + 1);
    free(text);
}

size_t admin__unread(struct client *cl)
{
    return evbuffer_get_length(bufferevent_get_output(cl->bev));
}

/* Closes once everything queued has been written. */
void admin__close_after_write(struct client *cl)
{
    cl->closing = 1;
    bufferevent_disable(cl->bev, EV_READ);
    if (admin__unread(cl) == 0)
        client_free(cl);
}

static void on_read(struct bufferevent *bev, void *arg)
{
    struct client *cl = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    for (;;) {
        if (cl->tap) { /* a streaming tap takes no more requests */
            evbuffer_drain(in, evbuffer_get_length(in));
            return;
        }
        if (cl->discarding) {
            /* The rest of an oversized request: dropped up to its newline, then the connection
             * goes on (closing with unread input would reset it and lose our error). */
            struct evbuffer_ptr nl = evbuffer_search(in, "\n", 1, NULL);
            if (nl.pos < 0) {
                evbuffer_drain(in, evbuffer_get_length(in));
                return;
            }
            evbuffer_drain(in, (size_t)nl.pos + 1);
            cl->discarding = 0;
        }
        size_t len;
        char *line = evbuffer_readln(in, &len, EVBUFFER_EOL_LF);
        if (!line)
            break;
        if (len > MAX_REQUEST) {
            free(line);
            admin__send(cl, admin__fail("request too large (limit %d bytes)", MAX_REQUEST));
            continue;
        }
        if (len)
            admin__send(cl, dispatch(cl->a, cl, line, len));
        free(line);
        if (admin__unread(cl) > MAX_UNREAD_OUT) {
            client_free(cl); /* not reading its answers: never let it hold memory */
            return;
        }
    }
    if (evbuffer_get_length(in) > MAX_REQUEST) {
        admin__send(cl, admin__fail("request too large (limit %d bytes)", MAX_REQUEST));
        evbuffer_drain(in, evbuffer_get_length(in));
        cl->discarding = 1;
    }
}

static void on_write(struct bufferevent *bev, void *arg)
{
    struct client *cl = arg;
    if (cl->closing)
        client_free(cl);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    struct client *cl = arg;
    if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)))
        return;
    /* Answer what was asked before the client half-closed (printf '{"cmd":...}' | socat). */
    struct evbuffer *in = bufferevent_get_input(bev);
    size_t len = evbuffer_get_length(in);
    if ((what & BEV_EVENT_EOF) && len > 0 && len <= MAX_REQUEST && !cl->closing && !cl->tap &&
        !cl->discarding) {
        char *line = malloc(len);
        if (line) {
            evbuffer_remove(in, line, len);
            admin__send(cl, dispatch(cl->a, cl, line, len));
            free(line);
        }
        if (!cl->tap) {
            admin__close_after_write(cl);
            return;
        }
    }
    if ((what & BEV_EVENT_EOF) && admin__unread(cl) && !cl->tap) {
        admin__close_after_write(cl); /* answers still queued: deliver them, then close */
        return;
    }
    client_free(cl);
}

/* Peers allowed: root, our own uid, and admin.allow_uids. */
static int uid_allowed(struct admin *a, uid_t uid)
{
    if (uid == 0 || uid == geteuid())
        return 1;
    const struct cfg_strlist *l = &control_deps(a->ctl)->admin->allow_uids;
    for (int i = 0; i < l->n; i++) {
        if (strtoul(l->v[i], NULL, 10) == uid)
            return 1;
    }
    return 0;
}

static void on_accept(struct evconnlistener *lis, evutil_socket_t fd, struct sockaddr *sa, int len,
                      void *arg)
{
    struct admin *a = arg;
    struct ucred cred;
    socklen_t cl_len = sizeof(cred);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl_len) < 0) {
        evutil_closesocket(fd);
        return;
    }
    struct client *cl = calloc(1, sizeof(*cl));
    if (!cl) {
        evutil_closesocket(fd);
        return;
    }
    cl->a = a;
    cl->who.uid = cred.uid;
    cl->who.pid = cred.pid;
    cl->bev = bufferevent_socket_new(control_base(a->ctl), fd, BEV_OPT_CLOSE_ON_FREE);
    if (!cl->bev) {
        free(cl);
        evutil_closesocket(fd);
        return;
    }
    DLIST_PUSH(a->clients, cl);
    bufferevent_setcb(cl->bev, on_read, on_write, on_event, cl);
    if (!uid_allowed(a, cred.uid)) {
        if (log_limit_take(&a->lim) >= 0)
            log_warn("admin connection refused", "{s:I, s:I}", "uid", (json_int_t)cred.uid, "pid",
                     (json_int_t)cred.pid);
        admin__send(
            cl, admin__fail("permission denied: uid %d may not use this socket", (int)cred.uid));
        bufferevent_enable(cl->bev, EV_WRITE);
        admin__close_after_write(cl);
        return;
    }
    bufferevent_enable(cl->bev, EV_READ | EV_WRITE);
}

struct admin *admin_new(struct control *c, char *err, size_t errlen)
{
    const struct admin_config *ac = control_deps(c)->admin;
    const char *path = ac->socket;
    struct admin *a = calloc(1, sizeof(*a));
    if (!a)
        return NULL;
    a->ctl = c;
    a->path = strdup(path);
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    char *end;
    long mode = strtol(ac->socket_mode, &end, 8);
    if (*end || mode < 0 || mode > 0777) {
        snprintf(err, errlen, "admin.socket_mode \"%s\" is not an octal permission like 0600",
                 ac->socket_mode);
        goto fail;
    }
    if (strlen(path) >= sizeof(sun.sun_path)) {
        snprintf(err, errlen, "admin.socket path too long: %s", path);
        goto fail;
    }
    strcpy(sun.sun_path, path);
    int rc = fs_mkdir_parent(path);
    if (!rc)
        rc = fs_unlink_stale_socket(path);
    if (rc) {
        snprintf(err, errlen, "admin.socket %s: %s", path,
                 rc == -EADDRINUSE ? "another spillway is listening there" : strerror(-rc));
        goto fail;
    }
    /* Created 0600 from the start: no window where another user could connect. */
    mode_t old = umask(0177);
    a->lis = evconnlistener_new_bind(control_base(c), on_accept, a,
                                     LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 64,
                                     (struct sockaddr *)&sun, sizeof(sun));
    umask(old);
    if (!a->lis) {
        snprintf(err, errlen, "admin.socket %s: %s", path, strerror(errno));
        goto fail;
    }
    if (mode != 0600 && chmod(path, (mode_t)mode) < 0) {
        snprintf(err, errlen, "admin.socket %s: chmod: %s", path, strerror(errno));
        goto fail;
    }
    log_info("admin socket listening", "{s:s}", "path", path);
    return a;
fail:
    admin_free(a);
    return NULL;
}

void admin_free(struct admin *a)
{
    if (!a)
        return;
    while (a->clients)
        client_free(a->clients);
    admin__taps_free(a);
    if (a->lis) {
        evconnlistener_free(a->lis);
        unlink(a->path);
    }
    free(a->path);
    free(a);
}
