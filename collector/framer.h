/* Framing for stream inputs: how a byte stream is cut into messages, as its format says (newline
 * for NDJSON, plain lines and statsd; octet counting or newline for syslog; NUL for GELF).
 * Lines wholly inside a read are passed without copying; only a line split across reads is
 * carried in the framer's own buffer. CRLF is accepted, empty lines are skipped, a line over
 * max bytes is cut at max and reported once as truncated while the rest of it is skipped up to
 * the next newline, so the stream resynchronizes. */
#ifndef SPILLWAY_FRAMER_H
#define SPILLWAY_FRAMER_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

enum { FRAME_TRUNCATED = 1 };

enum framing {
    FRAMING_LINE,   /* a message ends at a newline (CRLF accepted) */
    FRAMING_SYSLOG, /* RFC 6587: octet counting ("LEN SP MSG", MSG may hold newlines) when a
                       frame starts with a digit, else a newline ends it */
    FRAMING_NUL,    /* a message ends at a NUL byte (GELF over TCP); a newline before it is
                       part of the message */
};

/* line is valid only during the call. */
typedef void (*framer_fn)(void *ud, const char *line, size_t len, int flags);

struct framer {
    struct buf partial;
    size_t max;
    int discarding;
    char delim;       /* the byte that ends a message */
    int octets;       /* accept RFC 6587 octet counting ("LEN SP MSG") per frame */
    int in_len;       /* reading the length digits of an octet-counted frame */
    uint64_t len_acc; /* the length so far */
    char digits[24];  /* the digits as read, in case they turn out to start a plain line */
    int ndigits;
    uint64_t left; /* bytes of the current octet-counted frame still to come */
};

void framer_init(struct framer *f, enum framing how, size_t max);
void framer_free(struct framer *f);
void framer_feed(struct framer *f, const char *data, size_t len, framer_fn fn, void *ud);
/* End of stream: a last line without a newline is still a line. */
void framer_finish(struct framer *f, framer_fn fn, void *ud);

#endif
