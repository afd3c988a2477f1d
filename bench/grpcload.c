/* OTLP/gRPC load generator for the S8 benchmark (bench/run.py): one request message sent as a
 * unary call of an Export method CALLS times in all, over CONNS HTTP/2 connections (h2c with
 * prior knowledge, nghttp2's client API, one thread each), keeping INFLIGHT calls in flight on
 * each connection, as an OpenTelemetry Collector's otlp exporter with several consumers does.
 *
 *   grpcload HOST:PORT PATH FILE CONNS CALLS [INFLIGHT]
 *
 * FILE is the request message (protobuf, as `loadgen otlp` writes it); PATH the method
 * (/opentelemetry.proto.collector.logs.v1.LogsService/Export). A call answered UNAVAILABLE (the
 * pipeline is full) is made again after 1 ms, as the SDKs retry it; any other status but OK
 * fails the run. Prints the seconds it took for every call to be answered OK. In C rather than
 * Python so that the client is not what limits the rate: it costs some 2% of what spillway spends
 * on the same calls. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nghttp2/nghttp2.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_INFLIGHT 100

static const char *g_addr, *g_path;
static const unsigned char *g_msg; /* prefix + message */
static size_t g_len;
static int g_inflight = 16;

struct call {
    struct worker *w;
    size_t off;
    int status; /* grpc-status, -1 until it came */
    int used;
};

struct worker {
    int fd;
    nghttp2_session *s;
    long calls;   /* to make, in all */
    long started; /* made, retries not counted */
    long done;    /* answered OK */
    long retries;
    int open;
    int rc;
    struct call pool[MAX_INFLIGHT];
};

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int dial(const char *hostport)
{
    char host[256];
    const char *colon = strrchr(hostport, ':');
    if (!colon)
        return -1;
    snprintf(host, sizeof(host), "%.*s", (int)(colon - hostport), hostport);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(colon + 1))};
    inet_pton(AF_INET, host, &sa.sin_addr);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
        return -1;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    return fd;
}

static ssize_t on_send(nghttp2_session *s, const uint8_t *data, size_t len, int flags, void *ud)
{
    struct worker *w = ud;
    ssize_t n = send(w->fd, data, len, MSG_NOSIGNAL);
    if (n < 0)
        return errno == EAGAIN || errno == EWOULDBLOCK ? NGHTTP2_ERR_WOULDBLOCK
                                                       : NGHTTP2_ERR_CALLBACK_FAILURE;
    return n;
}

static ssize_t read_msg(nghttp2_session *s, int32_t id, uint8_t *buf, size_t length,
                        uint32_t *flags, nghttp2_data_source *src, void *ud)
{
    struct call *c = src->ptr;
    size_t n = g_len - c->off < length ? g_len - c->off : length;
    memcpy(buf, g_msg + c->off, n);
    c->off += n;
    if (c->off == g_len)
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

static int submit(struct worker *w)
{
    struct call *c = NULL;
    for (int i = 0; i < MAX_INFLIGHT && !c; i++)
        if (!w->pool[i].used)
            c = &w->pool[i];
    if (!c)
        return -1;
    *c = (struct call){.w = w, .status = -1, .used = 1};
#define NV(n, v) {(uint8_t *)(n), (uint8_t *)(v), strlen(n), strlen(v), NGHTTP2_NV_FLAG_NONE}
    nghttp2_nv nv[] = {NV(":method", "POST"),
                       NV(":scheme", "http"),
                       NV(":path", g_path),
                       NV(":authority", g_addr),
                       NV("content-type", "application/grpc"),
                       NV("te", "trailers")};
    nghttp2_data_provider prd = {.source.ptr = c, .read_callback = read_msg};
    if (nghttp2_submit_request(w->s, NULL, nv, sizeof(nv) / sizeof(nv[0]), &prd, c) < 0)
        return -1;
    w->open++;
    return 0;
}

static int on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name, size_t nl,
                     const uint8_t *v, size_t vl, uint8_t flags, void *ud)
{
    struct call *c = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
    if (c && nl == 11 && !memcmp(name, "grpc-status", 11))
        c->status = atoi((const char *)v);
    return 0;
}

static int on_close(nghttp2_session *s, int32_t id, uint32_t error, void *ud)
{
    struct worker *w = ud;
    struct call *c = nghttp2_session_get_stream_user_data(s, id);
    if (!c)
        return 0;
    c->used = 0;
    w->open--;
    if (c->status == 0) {
        w->done++;
    } else if (c->status == 14 || error == NGHTTP2_REFUSED_STREAM) {
        w->retries++;
        w->started--; /* made again */
        usleep(1000);
    } else {
        fprintf(stderr, "grpcload: call answered grpc-status %d (stream error %u)\n", c->status,
                error);
        w->rc = 1;
    }
    return 0;
}

static void *run(void *arg)
{
    struct worker *w = arg;
    nghttp2_session_callbacks *cb;
    nghttp2_session_callbacks_new(&cb);
    nghttp2_session_callbacks_set_send_callback(cb, on_send);
    nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_close);
    w->fd = dial(g_addr);
    if (w->fd < 0 || nghttp2_session_client_new(&w->s, cb, w)) {
        perror(g_addr);
        w->rc = 1;
        return NULL;
    }
    nghttp2_session_callbacks_del(cb);
    nghttp2_settings_entry iv[] = {{NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 1 << 24}};
    nghttp2_submit_settings(w->s, NGHTTP2_FLAG_NONE, iv, 1);
    nghttp2_session_set_local_window_size(w->s, NGHTTP2_FLAG_NONE, 0, 1 << 24);
    static __thread uint8_t rbuf[256 * 1024];
    while (!w->rc && w->done < w->calls) {
        while (w->started < w->calls && w->open < g_inflight && submit(w) == 0)
            w->started++;
        if (nghttp2_session_send(w->s)) {
            w->rc = 1;
            break;
        }
        struct pollfd p = {w->fd, POLLIN | (nghttp2_session_want_write(w->s) ? POLLOUT : 0), 0};
        if (poll(&p, 1, 10000) <= 0) {
            fprintf(stderr, "grpcload: no answer for 10 s\n");
            w->rc = 1;
            break;
        }
        if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t n = read(w->fd, rbuf, sizeof(rbuf));
            if (n < 0 && (errno == EAGAIN || errno == EINTR))
                continue;
            if (n <= 0 || nghttp2_session_mem_recv(w->s, rbuf, (size_t)n) < 0) {
                fprintf(stderr, "grpcload: connection %s\n", n <= 0 ? "closed" : "broken");
                w->rc = 1;
            }
        }
    }
    nghttp2_session_del(w->s);
    close(w->fd);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 6) {
        fprintf(stderr, "usage: grpcload HOST:PORT PATH FILE CONNS CALLS [INFLIGHT]\n");
        return 2;
    }
    g_addr = argv[1];
    g_path = argv[2];
    int fd = open(argv[3], O_RDONLY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        perror(argv[3]);
        return 1;
    }
    int conns = atoi(argv[4]);
    long calls = atol(argv[5]);
    if (argc > 6)
        g_inflight = atoi(argv[6]);
    if (conns < 1 || conns > 64 || g_inflight < 1 || g_inflight > MAX_INFLIGHT)
        return 2;
    size_t mlen = (size_t)st.st_size;
    unsigned char *msg = malloc(mlen + 5);
    msg[0] = 0;
    msg[1] = (unsigned char)(mlen >> 24);
    msg[2] = (unsigned char)(mlen >> 16);
    msg[3] = (unsigned char)(mlen >> 8);
    msg[4] = (unsigned char)mlen;
    if (read(fd, msg + 5, mlen) != (ssize_t)mlen) {
        perror(argv[3]);
        return 1;
    }
    close(fd);
    g_msg = msg;
    g_len = mlen + 5;
    struct worker *w = calloc((size_t)conns, sizeof(*w));
    pthread_t th[64];
    double t0 = now();
    for (int i = 0; i < conns; i++) {
        w[i].calls = calls / conns + (i < calls % conns);
        pthread_create(&th[i], NULL, run, &w[i]);
    }
    int rc = 0;
    long retries = 0;
    for (int i = 0; i < conns; i++) {
        pthread_join(th[i], NULL);
        rc |= w[i].rc;
        retries += w[i].retries;
    }
    printf("%.6f\n", now() - t0);
    if (retries)
        fprintf(stderr, "grpcload: %ld calls made again (UNAVAILABLE)\n", retries);
    free(w);
    free(msg);
    return rc;
}
