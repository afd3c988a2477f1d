#include "collector/curlev.h"

#include <curl/curl.h>
#include <errno.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/timeutil.h"

struct sock;

struct curlev {
    struct event_base *base;
    CURLM *multi;
    struct event *timer; /* curl's timeout */
    struct sock *socks;  /* every socket watched: those curl still holds are freed at the end */
};

struct curlev_get {
    struct curlev *m;
    CURL *easy;
    curlev_done_fn done;
    void *ud;
    int busy;
    size_t max_body;
    int too_large;
    int64_t started;
    struct buf body;
    struct curl_slist *headers;
    char error[CURL_ERROR_SIZE];
};

/* Which of curl's sockets libevent watches, and for what. */
struct sock {
    struct event *ev;
    struct curlev *m;
    struct sock *prev, *next;
};

static void sock_free(struct curlev *m, struct sock *k)
{
    if (k->prev)
        k->prev->next = k->next;
    else
        m->socks = k->next;
    if (k->next)
        k->next->prev = k->prev;
    if (k->ev)
        event_free(k->ev);
    free(k);
}

void curlev_global_init(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

static void check_done(struct curlev *m)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(m->multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        CURL *e = msg->easy_handle;
        CURLcode rc = msg->data.result;
        struct curlev_get *g = NULL;
        curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&g);
        curl_multi_remove_handle(m->multi, e);
        if (!g)
            continue;
        g->busy = 0;
        struct curlev_result r = {.took_ns = time_mono_ns() - g->started};
        char *ctype = NULL;
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &r.status);
        curl_easy_getinfo(e, CURLINFO_CONTENT_TYPE, &ctype);
        r.ctype = ctype ? ctype : "";
        if (g->too_large) {
            snprintf(g->error, sizeof(g->error), "the body is longer than max_body (%zu bytes)",
                     g->max_body);
            r.error = g->error;
        } else if (rc != CURLE_OK) {
            if (!g->error[0])
                snprintf(g->error, sizeof(g->error), "%s", curl_easy_strerror(rc));
            r.error = g->error;
        }
        r.body = g->body.data ? g->body.data : "";
        r.len = g->body.len;
        g->done(g->ud, &r);
        buf_reset(&g->body);
        buf_trim(&g->body, 1 << 20);
    }
}

static void on_socket_event(evutil_socket_t fd, short what, void *arg)
{
    struct curlev *m = arg;
    int flags = (what & EV_READ ? CURL_CSELECT_IN : 0) | (what & EV_WRITE ? CURL_CSELECT_OUT : 0);
    int running;
    curl_multi_socket_action(m->multi, fd, flags, &running);
    check_done(m);
}

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct curlev *m = arg;
    int running;
    curl_multi_socket_action(m->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(m);
}

/* CURLMOPT_SOCKETFUNCTION: watch (or stop watching) one of curl's sockets. */
static int socket_cb(CURL *e, curl_socket_t s, int what, void *userp, void *socketp)
{
    (void)e;
    struct curlev *m = userp;
    struct sock *k = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (k) {
            sock_free(m, k);
            curl_multi_assign(m->multi, s, NULL);
        }
        return 0;
    }
    short ev =
        EV_PERSIST | (what & CURL_POLL_IN ? EV_READ : 0) | (what & CURL_POLL_OUT ? EV_WRITE : 0);
    if (!k) {
        k = calloc(1, sizeof(*k));
        if (!k)
            return -1;
        k->m = m;
        k->next = m->socks;
        if (m->socks)
            m->socks->prev = k;
        m->socks = k;
        curl_multi_assign(m->multi, s, k);
    } else {
        event_free(k->ev);
    }
    k->ev = event_new(m->base, s, ev, on_socket_event, m);
    return k->ev && event_add(k->ev, NULL) == 0 ? 0 : -1;
}

/* CURLMOPT_TIMERFUNCTION: curl wants to be called in timeout_ms (-1: never). */
static int timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    struct curlev *m = userp;
    if (timeout_ms < 0) {
        evtimer_del(m->timer);
        return 0;
    }
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    return evtimer_add(m->timer, &tv);
}

struct curlev *curlev_new(struct event_base *base)
{
    struct curlev *m = calloc(1, sizeof(*m));
    if (!m)
        return NULL;
    m->base = base;
    m->multi = curl_multi_init();
    m->timer = evtimer_new(base, on_timeout, m);
    if (!m->multi || !m->timer) {
        curlev_free(m);
        return NULL;
    }
    curl_multi_setopt(m->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
    curl_multi_setopt(m->multi, CURLMOPT_SOCKETDATA, m);
    curl_multi_setopt(m->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    curl_multi_setopt(m->multi, CURLMOPT_TIMERDATA, m);
    return m;
}

void curlev_free(struct curlev *m)
{
    if (!m)
        return;
    if (m->multi)
        curl_multi_cleanup(m->multi);
    while (m->socks) /* sockets of connections curl kept for reuse: closed by the cleanup */
        sock_free(m, m->socks);
    if (m->timer)
        event_free(m->timer);
    free(m);
}

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    struct curlev_get *g = ud;
    size_t len = size * n;
    if (g->body.len + len > g->max_body) {
        g->too_large = 1;
        return 0; /* ends the transfer: CURLE_WRITE_ERROR */
    }
    return buf_append(&g->body, p, len) ? 0 : len;
}

struct curlev_get *curlev_get_new(struct curlev *m, curlev_done_fn done, void *ud)
{
    struct curlev_get *g = calloc(1, sizeof(*g));
    if (!g)
        return NULL;
    g->m = m;
    g->done = done;
    g->ud = ud;
    g->easy = curl_easy_init();
    if (!g->easy) {
        free(g);
        return NULL;
    }
    return g;
}

void curlev_get_free(struct curlev_get *g)
{
    if (!g)
        return;
    if (g->busy)
        curl_multi_remove_handle(g->m->multi, g->easy);
    curl_easy_cleanup(g->easy);
    curl_slist_free_all(g->headers);
    buf_free(&g->body);
    free(g);
}

int curlev_get_busy(const struct curlev_get *g)
{
    return g->busy;
}

int curlev_get_start(struct curlev_get *g, const char *url, const char *const *headers, size_t n,
                     int64_t timeout_ns, size_t max_body)
{
    if (g->busy)
        return -EBUSY;
    CURL *e = g->easy;
    curl_easy_reset(e);
    curl_slist_free_all(g->headers);
    g->headers = NULL;
    for (size_t i = 0; i < n; i++) {
        struct curl_slist *l = curl_slist_append(g->headers, headers[i]);
        if (!l)
            return -ENOMEM;
        g->headers = l;
    }
    buf_reset(&g->body);
    g->error[0] = '\0';
    g->too_large = 0;
    g->max_body = max_body;
    long ms = (long)(timeout_ns / 1000000);
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, g->headers);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, ms > 0 ? ms : 1);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, ms > 0 ? ms : 1);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(e, CURLOPT_USERAGENT, "spillway/" SPILLWAY_VERSION);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, g);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, g->error);
    curl_easy_setopt(e, CURLOPT_PRIVATE, g);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    g->started = time_mono_ns();
    if (curl_multi_add_handle(g->m->multi, e) != CURLM_OK)
        return -ENOMEM;
    g->busy = 1;
    return 0;
}
