/* Internals of the OTLP decoder (collector/otlp.h), shared by its three files and by nothing
 * else: otlp.c (the decoder: protobuf unpack, the arena), otlp_json.c (OTLP/JSON into the same
 * protobuf-c structures) and otlp_map.c (those structures into canonical events). */
#ifndef SPILLWAY_OTLP_INT_H
#define SPILLWAY_OTLP_INT_H

#include <protobuf-c/protobuf-c.h>
#include <stdint.h>

#include "collector/keyset.h"
#include "collector/otlp.h"
#include "core/arena.h"
#include "core/buf.h"
#include "core/jsontok.h"

#include "opentelemetry/proto/collector/logs/v1/logs_service.pb-c.h"
#include "opentelemetry/proto/collector/metrics/v1/metrics_service.pb-c.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"

/* The length of a string of a decoded message, NUL bytes included (valid UTF-8 may hold U+0000,
 * which a C string would cut). Every such string is in the decoder's arena, which remembers the
 * size of each allocation: protobuf-c allocates a string as its bytes plus a NUL (and
 * otlp_json.c does the same), so the length is that size less one, without a strlen. The only
 * other string a message holds is protobuf-c's shared empty default. */
static inline size_t otlp_strlen(const char *s)
{
    if (!s || s == protobuf_c_empty_string)
        return 0;
    return arena_size(s) - 1;
}

#define OTLP_ANY_DEPTH 32 /* AnyValue containers nested deeper are written as null */

/* The mapping's state, reused from request to request so that a record costs no allocation. */
struct otlp_map {
    struct buf source;  /* "source":"<input name>" */
    struct buf start;   /* ","kind":"<kind>","source":"<input>" of the current request */
    struct buf head;    /* ,"service":...,"resource.*":...,"scope.*":... of the scope */
    struct buf out;     /* the event being built */
    struct keyset keys; /* the event's top-level keys */
    struct keyset kv[OTLP_ANY_DEPTH + 2]; /* the keys of an object being written, per depth */
    char tail[64];                        /* ,"received_at":"..."} */
    size_t tail_len;
    /* The key field ("\"name\"", as written) and where its value is: in the head (offsets in
     * head, for the scope's events) or in the record's part of out. pending is the buffer whose
     * last key is the key field: its value ends where the next key (or the buffer) starts. */
    struct buf key;
    uint64_t key_hash;
    size_t head_at, head_end, out_at, out_end;
    int in_head, in_out;
    const struct buf *pending;
    int fixed;                  /* the key field is timestamp, kind, source or received_at (1-4) */
    size_t start_at, start_end; /* kind's or source's value in start */
    const struct recv_time *rt;
    const struct otlp_out *o;
    int count;
    int nomem;
    int head_nomem; /* the scope's head could not be written whole: its records are invalid */
};

int otlp_map_init(struct otlp_map *m, const char *source, const char *key_field);
void otlp_map_free(struct otlp_map *m);
/* Readies the mapping of a request of signal sig received at rt whose events go to o. Returns 0
 * or -ENOMEM. */
int otlp_map_prepare(struct otlp_map *m, enum otlp_signal sig, const struct recv_time *rt,
                     const struct otlp_out *o);
/* Hands the events of a decoded request (the message of the prepared signal) to o. Returns how
 * many (an event that could not be written for want of memory goes as an invalid record). */
int otlp_map_request(struct otlp_map *m, enum otlp_signal sig, const ProtobufCMessage *req);
/* Whether the request's events stay within budget bytes in all: each record repeats its scope's
 * head (the resource's and scope's fields), so a big resource over many tiny records would make
 * far more than the body holds. 0, or -E2BIG (nothing handed over), or -ENOMEM. */
int otlp_map_check(struct otlp_map *m, enum otlp_signal sig, const ProtobufCMessage *req,
                   size_t budget);

/* One record of a JSON body that did not decode: its text and why. */
struct otlp_invalid {
    size_t start, end; /* in the body */
    const char *why;   /* in the decoder's arena */
};

/* The JSON decoder's state, reused from request to request. */
struct jnames;
#define OTLP_JSON_TYPES 128 /* slots for the message types' field names (OTLP has about 35) */

struct otlp_json {
    struct jsontok tok;
    struct buf scratch; /* unescaped strings */
    struct otlp_invalid *invalid;
    size_t ninvalid, capinvalid;
    struct jnames *names[OTLP_JSON_TYPES]; /* by message type, made on first use */
};

void otlp_json_free(struct otlp_json *j);
/* Decodes the OTLP/JSON body[0..len) as a message of type desc into *msg, allocated in a.
 * Records that do not decode are left out and listed in j->invalid. Returns 0, or -EINVAL with
 * err[0..errlen) saying why, or -ENOMEM (a->over set when that was the arena's limit). */
int otlp_json_decode(struct otlp_json *j, struct arena *a, const ProtobufCMessageDescriptor *desc,
                     const char *body, size_t len, ProtobufCMessage **msg, char *err,
                     size_t errlen);

#endif
