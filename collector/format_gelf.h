/* GELF (Graylog Extended Log Format) 1.1 messages into the canonical event: a JSON object,
 * uncompressed or zlib or gzip compressed (the first bytes say which). `short_message` becomes
 * `message`, `host` and `timestamp` (seconds with a fraction) their canonical fields, `level`
 * (a syslog severity number) the level syslog gives (and `severity`), `full_message` and the
 * other fields are kept, additional fields (`_name`) without their underscore unless that name
 * is taken. Chunked GELF is reassembled by collector/gelf_chunks.h before it gets here. The
 * decoding is a pure function over the caller's struct gelf_decoder (reused buffers), fuzzed on
 * its own; format_gelf.c registers the format. */
#ifndef SPILLWAY_FORMAT_GELF_H
#define SPILLWAY_FORMAT_GELF_H

#include <stddef.h>
#include <stdint.h>

#include "collector/normalize.h"
#include "core/buf.h"
#include "core/jsontok.h"

/* A decompressed GELF message may be this large at most: a message inflating past it (a gzip
 * bomb) is refused. 128 chunks of a full datagram are 8 MiB too. */
#define GELF_MAX_INFLATED (8u << 20)

/* Reusable space for decoding; zero-initialize, gelf_decoder_free once. */
struct gelf_decoder {
    struct jsontok tok;
    struct buf inflated;
    struct buf names; /* a member name unescaped, when it has escapes */
    uint32_t *set;    /* open-addressed set of the names taken: 64-bit hashes, 0 = empty */
    size_t set_cap;
};

void gelf_decoder_free(struct gelf_decoder *d);

/* Appends the canonical event for one whole GELF message (after reassembly) to out. Returns 0,
 * or -EINVAL with *err (a static reason) and out unchanged: not JSON, not an object,
 * compressed data that does not inflate or inflates past GELF_MAX_INFLATED. */
int gelf_to_event(struct gelf_decoder *d, const char *msg, size_t len, const char *source,
                  const struct recv_time *rt, struct buf *out, const char **err);

#endif
