/* The HTTP client the http and otlp sinks share, over libcurl (the only module that includes
 * curl.h): one global initialization, a handle with their common options (timeouts, TLS, user
 * agent, keep-alive, HTTP/2 for gRPC), gzip for request bodies, and what an answer brings back
 * (the status, the start of the body, Retry-After, and gRPC's status, which comes in trailers).
 * Each sink owns its struct httpc and uses it from its own thread only. */
#ifndef SPILLWAY_HTTPC_H
#define SPILLWAY_HTTPC_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/cfg.h"

/* TLS settings, filled from the keys HTTPC_TLS_KEYS declares (the strings are the config's). */
struct httpc_tls {
    char *ca_file;
    char *cert_file;
    char *key_file;
    int verify;
};

/* The TLS keys of a sink whose options struct `type` holds a struct httpc_tls named `field`. */
/* clang-format off */
#define HTTPC_TLS_KEYS(type, field)                                                                \
    {"tls_ca_file", CFG_STRING, offsetof(type, field.ca_file), "",                                 \
     "CA bundle to verify the server with (default: the system's)."},                              \
    {"tls_cert_file", CFG_STRING, offsetof(type, field.cert_file), "",                             \
     "Client certificate (PEM) for mutual TLS."},                                                  \
    {"tls_key_file", CFG_STRING, offsetof(type, field.key_file), "",                               \
     "Client key (PEM) for mutual TLS."},                                                          \
    {"tls_verify", CFG_BOOL, offsetof(type, field.verify), "true",                                 \
     "Verify the server's certificate and name."}
/* clang-format on */

enum httpc_version { HTTPC_HTTP1, HTTPC_HTTP2 };

struct httpc_opts {
    int64_t timeout;         /* a request not answered in this time fails (ns) */
    int64_t connect_timeout; /* ns */
    const struct httpc_tls *tls;
    const struct cfg_strmap *headers; /* sent with every request (borrowed for the handle's life) */
    /* HTTP2: HTTP/2 with prior knowledge over http:// (h2c, what gRPC speaks in clear), by ALPN
     * over https://. */
    enum httpc_version version;
};

/* What the destination answered to one request. The handle owns it; it is valid until the next
 * request. */
struct httpc_answer {
    long status;             /* the HTTP status */
    struct buf body;         /* the first 64 KiB of the body (not NUL-terminated) */
    char ctype[128];         /* Content-Type, "" when none */
    int64_t retry_after;     /* Retry-After (seconds or an HTTP date) in ns from now; 0 when none */
    int grpc_status;         /* grpc-status (headers or trailers); -1 when none */
    struct buf grpc_message; /* grpc-message, percent-decoded */
    struct buf grpc_details; /* grpc-status-details-bin, base64-decoded */
};

struct httpc;

/* Sets libcurl up for the whole process; call on the main thread before any sink thread runs
 * (sinks' open does). */
void httpc_global_init(void);

/* A handle with opts (o->tls and o->headers are borrowed). NULL when out of memory. */
struct httpc *httpc_new(const struct httpc_opts *o);
void httpc_free(struct httpc *c);

/* POSTs body[0..len) to url (borrowed until the call returns) with opts' headers and the
 * `extra` ones ("Name: value", n of them). Returns 0 with the answer in httpc_answer(c), or -EIO
 * when there was none (a network error, a timeout: *why says which, a string of the handle's
 * valid until the next request). */
int httpc_post(struct httpc *c, const char *url, const char *const *extra, size_t n,
               const void *body, size_t len, const char **why);
const struct httpc_answer *httpc_answer(const struct httpc *c);

/* Replaces out's content with in[0..len) gzip-compressed. Returns 0, -ENOMEM or -EIO. */
int httpc_gzip(const void *in, size_t len, struct buf *out);

/* How much of a body to show in an error: at most max bytes, and only its valid UTF-8 start (a
 * destination may answer anything; errors end up in JSON). Print it with "%.*s". */
int httpc_shown(const struct buf *body, size_t max);

#endif
