/* Load generator for the benchmarks.
 *   loadgen gen FILE N [syslog]          writes N realistic events (about 250 bytes of NDJSON
 *                                        each, or RFC 5424 with octet counting) to FILE
 *   loadgen tcp HOST:PORT FILE CONNS     streams FILE over CONNS connections (split by lines)
 *   loadgen http HOST:PORT FILE CONNS BATCH
 *                                        POSTs FILE to /v1/events in batches of BATCH lines over
 *                                        CONNS keep-alive connections (one thread each)
 *   loadgen otlp PB_FILE JSON_FILE N     writes one OTLP ExportLogsServiceRequest of N log
 *                                        records (one resource, one scope; the fields of `gen`'s
 *                                        events) as protobuf and as OTLP/JSON
 *   loadgen rw FILE N                    writes one Prometheus remote write request of N series
 *                                        (one sample each), snappy-compressed
 *   loadgen post HOST:PORT PATH FILE CONTENT_TYPE CONNS REQUESTS
 *                                        POSTs FILE as one request body REQUESTS times in all,
 *                                        over CONNS keep-alive connections (one thread each)
 * Prints the seconds it took to send everything. A request answered 503 (the pipeline is full)
 * is sent again after 1 ms. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "otlp_body.h"
#include "rw_body.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int gen(const char *path, long n, int syslog)
{
    static const char *levels[] = {"DEBUG", "INFO", "INFO", "INFO", "INFO", "WARN", "ERROR"};
    static const char *services[] = {"checkout", "cart", "search", "auth", "billing"};
    static const char *paths[] = {"/api/items", "/api/cart", "/api/pay", "/login", "/search"};
    FILE *f = fopen(path, "w");
    if (!f)
        return 1;
    unsigned long x = 88172645463325252UL;
    for (long i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        unsigned long t = x % 50000; /* trace ids repeat: about 20 spans per trace */
        char ev[512];
        int len = snprintf(
            ev, sizeof(ev),
            "{\"timestamp\":\"2026-11-27T10:%02lu:%02lu.%06luZ\",\"level\":\"%s\",\"service\":"
            "\"%s\",\"host\":\"web-%02lu\",\"trace_id\":\"%016lx%016lx\",\"user\":\"u%05lu\","
            "\"email\":\"user%lu@example.com\",\"latency_ms\":%lu.%lu,\"message\":\"GET %s/%lu "
            "returned %d\",\"seq\":%ld}",
            (unsigned long)(i / 60000) % 60, (unsigned long)(i / 1000) % 60,
            (unsigned long)i % 1000000, levels[x % 7], services[(x >> 8) % 5], (x >> 4) % 32,
            t * 2654435761UL, t, (x >> 12) % 99991, (x >> 20) % 9973, (x >> 9) % 900, (x >> 3) % 10,
            paths[(x >> 14) % 5], (x >> 16) % 100000, (x % 13) ? 200 : 503, i);
        if (!syslog) {
            fprintf(f, "%.*s\n", len, ev);
        } else {
            char msg[700];
            int m = snprintf(msg, sizeof(msg),
                             "<%d>1 2026-11-27T10:00:00.%06ldZ web-%02lu %s %lu - - %.*s",
                             8 + (int)(x % 8), i % 1000000, (x >> 4) % 32, services[(x >> 8) % 5],
                             (x >> 20) % 30000, len, ev);
            fprintf(f, "%d %.*s", m, m, msg);
        }
    }
    return fclose(f) ? 1 : 0;
}

/* The remote write request of `loadgen rw` into a file. */
static int gen_rw(const char *path, long n)
{
    struct buf body = {0};
    FILE *f = fopen(path, "w");
    int rc = !f || rw_body(n, &body) || fwrite(body.data, 1, body.len, f) != body.len;
    if (f && fclose(f))
        rc = 1;
    buf_free(&body);
    return rc;
}

/* The OTLP request of `loadgen otlp`, both ways, into two files. */
static int gen_otlp(const char *pb_path, const char *json_path, long n)
{
    struct buf pb = {0}, json = {0};
    if (otlp_body(n, &pb, &json))
        return 1;
    FILE *pf = fopen(pb_path, "wb"), *jf = fopen(json_path, "w");
    int bad = !pf || !jf || fwrite(pb.data, 1, pb.len, pf) != pb.len ||
              fwrite(json.data, 1, json.len, jf) != json.len;
    bad |= (pf ? fclose(pf) : 0) | (jf ? fclose(jf) : 0);
    buf_free(&pb);
    buf_free(&json);
    return bad ? 1 : 0;
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
    return fd;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

struct job {
    const char *addr;
    const char *data;
    size_t len;
    int batch; /* http: lines per request; 0: raw tcp */
    /* post: the whole data as one body, requests times, to path with content type ctype */
    const char *path, *ctype;
    long requests;
    int rc;
};

/* Splits [data, data+len) into n pieces at line boundaries. */
static void split(const char *data, size_t len, int n, struct job *jobs)
{
    size_t start = 0;
    for (int i = 0; i < n; i++) {
        size_t end = i == n - 1 ? len : len * (size_t)(i + 1) / (size_t)n;
        while (end < len && data[end - 1] != '\n')
            end++;
        jobs[i].data = data + start;
        jobs[i].len = end - start;
        start = end;
    }
}

/* Reads one response: 0 for 200 or 204 (remote write's answer), 1 for 503 or 429 (send it
 * again), -1 for anything else. */
static int read_response(int fd)
{
    char buf[4096];
    size_t have = 0;
    for (;;) { /* headers, then a Content-Length body */
        ssize_t r = read(fd, buf + have, sizeof(buf) - have - 1);
        if (r <= 0)
            return -1;
        have += (size_t)r;
        buf[have] = '\0';
        char *end = strstr(buf, "\r\n\r\n");
        if (!end)
            continue;
        int status = have > 12 ? atoi(buf + 9) : 0;
        const char *cl = strcasestr(buf, "Content-Length:");
        size_t body = cl ? (size_t)atol(cl + 15) : 0;
        size_t got = have - (size_t)(end + 4 - buf);
        while (got < body) {
            r = read(fd, buf, sizeof(buf));
            if (r <= 0)
                return -1;
            got += (size_t)r;
        }
        return status == 200 || status == 204 ? 0 : status == 503 || status == 429 ? 1 : -1;
    }
}

/* Sends one request (head, then body) until it is answered 200; 503 means retry. */
static int request(int fd, const char *head, size_t hn, const char *body, size_t n)
{
    for (;;) {
        if (write_all(fd, head, hn) || write_all(fd, body, n))
            return -1;
        int rc = read_response(fd);
        if (rc <= 0)
            return rc;
        usleep(1000); /* 503: the pipeline is full, retry the same request */
    }
}

static void *run_job(void *arg)
{
    struct job *j = arg;
    int fd = dial(j->addr);
    if (fd < 0) {
        j->rc = 1;
        return NULL;
    }
    if (j->path) {
        char head[512];
        int hn = snprintf(head, sizeof(head),
                          "POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: %s\r\n"
                          "Content-Length: %zu\r\n\r\n",
                          j->path, j->ctype, j->len);
        for (long i = 0; i < j->requests && !j->rc; i++)
            j->rc = request(fd, head, (size_t)hn, j->data, j->len) ? 1 : 0;
        close(fd);
        return NULL;
    }
    if (!j->batch) {
        j->rc = write_all(fd, j->data, j->len);
        shutdown(fd, SHUT_WR);
        char c;
        while (read(fd, &c, 1) > 0)
            ;
        close(fd);
        return NULL;
    }
    const char *p = j->data, *end = j->data + j->len;
    char head[256];
    while (p < end) {
        const char *q = p;
        for (int k = 0; k < j->batch && q < end; k++) {
            const char *nl = memchr(q, '\n', (size_t)(end - q));
            q = nl ? nl + 1 : end;
        }
        int hn = snprintf(head, sizeof(head),
                          "POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: "
                          "application/x-ndjson\r\nContent-Length: %zu\r\n\r\n",
                          (size_t)(q - p));
        if (request(fd, head, (size_t)hn, p, (size_t)(q - p))) {
            j->rc = 1;
            return NULL;
        }
        p = q;
    }
    close(fd);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc >= 4 && !strcmp(argv[1], "gen"))
        return gen(argv[2], atol(argv[3]), argc > 4 && !strcmp(argv[4], "syslog"));
    if (argc == 5 && !strcmp(argv[1], "otlp"))
        return gen_otlp(argv[2], argv[3], atol(argv[4]));
    if (argc == 4 && !strcmp(argv[1], "rw"))
        return gen_rw(argv[2], atol(argv[3]));
    int post = argc == 8 && !strcmp(argv[1], "post");
    if (!post && (argc < 5 || (strcmp(argv[1], "tcp") && strcmp(argv[1], "http")))) {
        fprintf(stderr, "usage: loadgen gen FILE N [syslog] | tcp ADDR FILE CONNS | "
                        "http ADDR FILE CONNS BATCH | otlp PB_FILE JSON_FILE N | rw FILE N | "
                        "post ADDR PATH FILE CONTENT_TYPE CONNS REQUESTS\n");
        return 2;
    }
    const char *file = argv[post ? 4 : 3];
    int fd = open(file, O_RDONLY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        perror(file);
        return 1;
    }
    const char *data = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    int conns = atoi(argv[post ? 6 : 4]);
    int batch = !strcmp(argv[1], "http") ? (argc > 5 ? atoi(argv[5]) : 500) : 0;
    struct job jobs[64] = {0};
    if (conns < 1 || conns > 64)
        return 2;
    if (post) {
        long requests = atol(argv[7]);
        for (int i = 0; i < conns; i++)
            jobs[i] = (struct job){.data = data,
                                   .len = (size_t)st.st_size,
                                   .path = argv[3],
                                   .ctype = argv[5],
                                   .requests = requests / conns + (i < requests % conns)};
    } else {
        split(data, (size_t)st.st_size, conns, jobs);
    }
    pthread_t th[64];
    double t0 = now();
    for (int i = 0; i < conns; i++) {
        jobs[i].addr = argv[2];
        jobs[i].batch = batch;
        pthread_create(&th[i], NULL, run_job, &jobs[i]);
    }
    int rc = 0;
    for (int i = 0; i < conns; i++) {
        pthread_join(th[i], NULL);
        rc |= jobs[i].rc;
    }
    printf("%.6f\n", now() - t0);
    return rc;
}
