/* Internals of the OTLP encoder (router/sinks/otlp_encode.h), shared by its four files and by
 * nothing else: otlp_encode.c (the encoder: an event's members, its resource and scope, the
 * grouping, the requests), otlp_encode_value.c (strings, numbers, times, ids and any value read
 * from the event's tokens; the record's attributes), otlp_encode_record.c (log records, spans and
 * data points from an event's own fields) and otlp_encode_json.c (the messages as OTLP/JSON). */
#ifndef SPILLWAY_OTLP_ENCODE_INT_H
#define SPILLWAY_OTLP_ENCODE_INT_H

#include <protobuf-c/protobuf-c.h>
#include <stdint.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/jsontok.h"
#include "router/sinks/otlp_encode.h"

#include "proto/otlp_types.h"

/* AnyValue containers nested deeper are written as an empty value (null), as the input does. */
#define OE_ANY_DEPTH 32

/* What a member of the event is to the mapping. */
enum oe_role {
    OE_OWN,       /* the record's own field, or an attribute (the record's builder decides) */
    OE_CONSUMED,  /* timestamp, kind, source, received_at */
    OE_RESOURCE,  /* service, host, resource.<key> */
    OE_SCOPE,     /* scope.<key> */
    OE_ATTRIBUTE, /* attributes.<key>: an attribute whatever its name (key without the prefix) */
};

/* One top-level member of the event: its name (unescaped) and its value's token. */
struct oe_member {
    const char *key;
    size_t klen;
    int val;
    enum oe_role role;
    int taken; /* OE_OWN: the record's builder took it as one of its fields */
};

/* A growable list of pointers in the arena. */
struct oe_list {
    void **v;
    size_t n, cap;
};

/* What events share: a resource (children: scopes), a scope (children: log records, spans, or
 * metrics) or a metric (children: data points). Found by the text of the members that make it. */
struct oe_group {
    uint64_t hash;
    const void *parent;
    const char *key;
    size_t klen;
    void *msg; /* Resource, Scope (NULL when the events have none) or Metric */
    struct oe_list children;
};

struct otlp_encoder {
    struct arena arena;
    struct jsontok tok;
    struct buf scratch; /* unescaped strings, number texts */
    struct buf key;     /* the text of the resource or scope being looked up */
    struct buf mkey;    /* the identity of the event's metric (oe_point) */
    struct oe_member *mem;
    size_t nmem, capmem;
    struct oe_group **slot; /* the groups by hash (open addressing; NULL: empty) */
    size_t mask, ngroups;
    struct oe_list resources[OTLP_ENCODE_SIGNALS]; /* in the order first seen */
    size_t count[OTLP_ENCODE_SIGNALS];
    int nomem;
    char why[256];
};

/* The event being added: its members (e->mem), and what add() read of them. */
struct oe_event {
    int sig;
    uint64_t time;     /* timestamp, ns */
    uint64_t received; /* received_at, ns (0: none) */
};

/* ---- reading the event (otlp_encode_value.c) ---- */

/* Arena allocations: NULL (and e->nomem set) when out of memory. */
void *oe_alloc(struct otlp_encoder *e, size_t size);
/* A NUL-terminated copy of p[0..n) in the arena (arena_size() - 1 is its length, NULs included). */
char *oe_strdup(struct otlp_encoder *e, const char *p, size_t n);
/* The length of a string of a message this encoder built (NUL bytes included). */
size_t oe_strlen(const char *s);
int oe_push(struct otlp_encoder *e, struct oe_list *l, void *p);
/* printf into e->why; returns -EINVAL (what add() returns for a refused event). */
int oe_refuse(struct otlp_encoder *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

const jsmntok_t *oe_tok(const struct otlp_encoder *e, int i);
/* The unescaped text of string token i (in e->scratch when it has escapes: valid until its next
 * use); -1 when i is not a string. */
int oe_text(struct otlp_encoder *e, int i, const char **p, size_t *n);
/* The same copied into the arena; NULL when i is not a string. */
char *oe_string(struct otlp_encoder *e, int i);
int oe_text_is(struct otlp_encoder *e, int i, const char *name, size_t n);
/* Numbers: 0, or -1 when token i is not one of that kind. oe_int and oe_uint take integers
 * written with digits only (oe_uint also as a string of digits when quoted: the proto3 JSON form);
 * oe_double any number, null as NaN (how the OTLP input writes NaN and the infinities), and the
 * strings "NaN", "StaleNaN", "+Inf", "Inf", "-Inf" (how the metric model writes them). */
int oe_int(struct otlp_encoder *e, int i, int64_t *v);
int oe_uint(struct otlp_encoder *e, int i, uint64_t *v, int quoted);
int oe_double(struct otlp_encoder *e, int i, double *v);
/* An RFC 3339 time as Unix ns; -EINVAL when token i is not one. */
int oe_time(struct otlp_encoder *e, int i, uint64_t *ns);
/* A trace id (nbytes 16) or span id (8) in hex, either case; -1 when it is not. */
int oe_hex_id(struct otlp_encoder *e, int i, size_t nbytes, ProtobufCBinaryData *out);
AnyValue *oe_any(struct otlp_encoder *e, int i, int depth);
KeyValue *oe_kv(struct otlp_encoder *e, const char *key, size_t klen, int val);
/* Object token obj's members as key/value pairs; -1 when it is not an object. */
int oe_kvs(struct otlp_encoder *e, int obj, KeyValue ***out, size_t *n);

/* The record's own fields: at[j] is the index in e->mem of the OE_OWN member named names[j], or
 * -1; oe_val gives its value token (-1 when absent), oe_take marks it used (no attribute). */
void oe_own(struct otlp_encoder *e, const char *const *names, size_t n, int *at);
int oe_val(struct otlp_encoder *e, const int *at, int j);
void oe_take(struct otlp_encoder *e, const int *at, int j);
/* The record's attributes, in the event's order: every attributes.<key> member (as <key>) and
 * every OE_OWN member not taken; the member at index labels_at (a metric event's labels object,
 * -1 for none) gives one attribute per label. 0 or -ENOMEM. */
int oe_attrs(struct otlp_encoder *e, int labels_at, KeyValue ***out, size_t *n);

/* ---- records (otlp_encode_record.c): each returns 0 with the message, or oe_refuse() ---- */

int oe_log(struct otlp_encoder *e, const struct oe_event *ev, LogRecord **out);
int oe_span(struct otlp_encoder *e, const struct oe_event *ev, Span **out);
/* A data point, and the Metric (with its type's container, no points yet) it belongs to; the
 * metric's identity (name, unit, description, type, temporality, monotonic) as text in e->mkey, for
 * the grouping. *point is a NumberDataPoint, HistogramDataPoint, ... as metric->data_case says. */
int oe_point(struct otlp_encoder *e, const struct oe_event *ev, Metric **metric, void **point);

/* ---- OTLP/JSON (otlp_encode_json.c) ---- */

/* Appends m (a message this encoder built) as OTLP/JSON: field names in lowerCamelCase, default
 * values left out, 64-bit integers as strings, enums as integers, trace and span ids as hex and
 * other bytes as base64, NaN and infinities as strings. Returns 0 or -ENOMEM. */
int oe_json(const ProtobufCMessage *m, struct buf *out);

#endif
