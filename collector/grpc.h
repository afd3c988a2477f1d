/* A gRPC server on one HTTP/2 connection (h2c with prior knowledge) through nghttp2, apart from
 * sockets so that it can be fuzzed: the bytes read from the connection go in (grpc_conn_recv),
 * the bytes to write come out (grpc_conn_send). Unary calls only (OTLP's Export methods): a call
 * goes to the handler once its request message is whole (its 5-byte prefix read, gzip inflated
 * when the client compressed it), and the handler answers it with grpc_conn_reply, at once or
 * later. What the protocol itself decides is answered here: a content type that is not gRPC
 * (HTTP 415), a message over the size limit (RESOURCE_EXHAUSTED, without reading the rest), a
 * compression other than gzip (UNIMPLEMENTED), a message cut short or a second one
 * (INVALID_ARGUMENT). HTTP/2 flow control carries backpressure and bounds memory: request bytes
 * read are not acknowledged while paused, nor while the calls in the making hold two messages'
 * worth (2 x max_message), so a client stops sending once its window is spent: a connection
 * holds at most that plus its window. PINGs are answered by nghttp2. The caller owns the
 * connection. */
#ifndef SPILLWAY_GRPC_H
#define SPILLWAY_GRPC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/buf.h"
#include "proto/grpc_codes.h"

struct grpc_conn;

struct grpc_handler {
    /* A whole unary request on stream id for path ("/package.Service/Method"); msg[0..len) is
     * the request message, valid during the call. The handler must answer it with
     * grpc_conn_reply (now or later, while the connection lives). */
    void (*call)(void *ud, struct grpc_conn *c, int32_t id, const char *path, const char *msg,
                 size_t len);
    /* A call the server answered itself with an error (status, and why), or refused before it
     * began (over max_concurrent_streams: http_status 0, GRPC_UNAVAILABLE): for counting. */
    void (*refused)(void *ud, int http_status, enum grpc_code status, const char *why);
    void *ud;
};

struct grpc_limits {
    size_t max_message;   /* a request message larger, compressed or not, is refused */
    uint32_t max_streams; /* calls in flight at once (SETTINGS_MAX_CONCURRENT_STREAMS) */
    uint32_t window;      /* receive window of each call and of the connection, in bytes */
};

/* A new server session, which wants to send its SETTINGS first. NULL when out of memory. h and
 * lim are copied. */
struct grpc_conn *grpc_conn_new(const struct grpc_limits *lim, const struct grpc_handler *h);
void grpc_conn_free(struct grpc_conn *c);

/* Feeds bytes read from the connection. Returns 0, or -EPROTO when the peer broke HTTP/2 (or
 * the connection is to be closed): what is still worth sending (a GOAWAY) is in grpc_conn_send,
 * then the caller closes. -ENOMEM. */
int grpc_conn_recv(struct grpc_conn *c, const char *data, size_t len);
/* Appends to out what the session wants written, up to about max bytes. Returns the bytes
 * appended (0: nothing to send now), or -EPROTO / -ENOMEM. */
ssize_t grpc_conn_send(struct grpc_conn *c, struct buf *out, size_t max);
/* 1 once neither side will send anything more (after a GOAWAY, with no call left open): the
 * caller closes the connection once it wrote what grpc_conn_send gave. */
int grpc_conn_done(const struct grpc_conn *c);

/* Answers call id: status and message (NULL: none); with GRPC_OK the response message
 * resp[0..resp_len); details (may be NULL) is a google.rpc.Status message sent as
 * grpc-status-details-bin. Everything is copied. A call already answered or gone is ignored.
 * Returns 0 or -ENOMEM. */
int grpc_conn_reply(struct grpc_conn *c, int32_t id, enum grpc_code status, const char *message,
                    const char *resp, size_t resp_len, const char *details, size_t details_len);

/* While paused, request bytes read are not acknowledged (no WINDOW_UPDATE); resuming
 * acknowledges what was held. */
void grpc_conn_pause(struct grpc_conn *c, int paused);
/* Graceful stop: a GOAWAY: no new call is taken; those in flight go on to their answer. */
void grpc_conn_goaway(struct grpc_conn *c);
/* Calls open: started and not yet closed. */
int grpc_conn_calls(const struct grpc_conn *c);
/* Calls whose request is still arriving (not whole, not answered early): the open calls that
 * wait for the client to send, rather than for it to take its answer. */
int grpc_conn_arriving(const struct grpc_conn *c);
/* Cancels (RST_STREAM) the calls whose request is not whole age_ns after it began (a request
 * that trickles, a client that goes on sending after its answer), and the whole ones whose
 * answer has not moved for age_ns (a client that does not read it). Not while paused: then
 * nothing can move, and a pause's end starts the calls' time again. Returns how many. */
int grpc_conn_expire(struct grpc_conn *c, int64_t now_ns, int64_t age_ns);

#endif
