/* HTTP GETs on the collector's libevent loop, through libcurl's multi interface (the collector's
 * only module that includes curl.h; the sinks' blocking client is router/sinks/httpc.h): curl's
 * sockets are watched by libevent events and its timeouts by a libevent timer, so a transfer never
 * blocks the loop, and a server that hangs only runs into its transfer's timeout. The owner (an
 * input) makes one struct curlev per loop and one struct curlev_get per concurrent transfer,
 * reused from transfer to transfer; everything runs on the loop's thread. */
#ifndef SPILLWAY_CURLEV_H
#define SPILLWAY_CURLEV_H

#include <stddef.h>
#include <stdint.h>

struct event_base;
struct curlev;
struct curlev_get;

/* What a transfer brought back; valid during the callback. */
struct curlev_result {
    const char *error; /* NULL: an answer came (any status); else why there is none */
    long status;
    const char *body; /* the body as received (decompressed when gzip) */
    size_t len;
    const char *ctype; /* Content-Type, "" when none */
    int64_t took_ns;
};

typedef void (*curlev_done_fn)(void *ud, const struct curlev_result *r);

/* libcurl set up for the process (curl_global_init); call on the main thread before anything
 * else uses libcurl. */
void curlev_global_init(void);

/* A multi handle on base (borrowed). NULL when out of memory. */
struct curlev *curlev_new(struct event_base *base);
/* Cancels every transfer (their callbacks are not called) and frees the handle. After the
 * curlev_get_free of each of its transfers. */
void curlev_free(struct curlev *m);

/* A transfer slot of m, done calling done(ud, result) when each GET ends. NULL when out of
 * memory. */
struct curlev_get *curlev_get_new(struct curlev *m, curlev_done_fn done, void *ud);
/* Cancels its transfer, if one is running, without calling done. */
void curlev_get_free(struct curlev_get *g);

/* Starts a GET of url (copied) with headers ("Name: value", n of them, copied), giving up after
 * timeout_ns; a body longer than max_body ends it with an error. Returns 0, -EBUSY while the slot
 * is running a transfer, or -ENOMEM. */
int curlev_get_start(struct curlev_get *g, const char *url, const char *const *headers, size_t n,
                     int64_t timeout_ns, size_t max_body);
int curlev_get_busy(const struct curlev_get *g);

#endif
