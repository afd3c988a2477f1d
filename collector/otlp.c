/* The OTLP decoder: a request body, protobuf or JSON, into protobuf-c structures allocated in an
 * arena reset per request (so decoding makes no malloc per message once the arena has grown to
 * the usual request), then into events by the one mapping (otlp_map.c). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collector/otlp_int.h"
#include "proto/pb_arena.h"

struct otlp_decoder {
    struct arena arena;
    ProtobufCAllocator alloc; /* protobuf-c's allocations, from the arena */
    struct otlp_json json;
    struct otlp_map map;
    char err[256];
};

struct otlp_decoder *otlp_decoder_new(const char *source, const char *key_field)
{
    struct otlp_decoder *d = calloc(1, sizeof(*d));
    if (!d)
        return NULL;
    d->alloc = pb_arena_allocator(&d->arena);
    /* Between requests the arena keeps what a request of a few MiB needs, not a rare huge one. */
    d->arena.keep = 16 << 20;
    if (otlp_map_init(&d->map, source, key_field))
        goto fail;
    return d;
fail:
    otlp_decoder_free(d);
    return NULL;
}

void otlp_decoder_free(struct otlp_decoder *d)
{
    if (!d)
        return;
    otlp_map_free(&d->map);
    otlp_json_free(&d->json);
    arena_free(&d->arena);
    free(d);
}

/* ---- protobuf ---- */

/* Reads a varint at p[*i..n); -1 when it is cut short or longer than 10 bytes. */
static int varint(const uint8_t *p, size_t n, size_t *i, uint64_t *v)
{
    uint64_t x = 0;
    for (int shift = 0; shift < 70 && *i < n; shift += 7) {
        uint8_t b = p[(*i)++];
        x |= (uint64_t)(b & 0x7f) << (shift < 64 ? shift : 0);
        if (!(b & 0x80)) {
            *v = x;
            return 0;
        }
    }
    return -1;
}

/* The wire type a field's values come in (length-delimited also for packed repeated scalars). */
static int wire_type_of(ProtobufCType t)
{
    switch (t) {
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_DOUBLE:
        return 1;
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_FLOAT:
        return 5;
    case PROTOBUF_C_TYPE_STRING:
    case PROTOBUF_C_TYPE_BYTES:
    case PROTOBUF_C_TYPE_MESSAGE:
        return 2;
    default:
        return 0;
    }
}

/* The field numbered id: protobuf-c sorts a message's fields by number, and most OTLP messages
 * number theirs from 1 without a gap, so the direct slot is tried before the general lookup. */
static const ProtobufCFieldDescriptor *field_of(const ProtobufCMessageDescriptor *d, uint64_t id)
{
    if (id - 1 < d->n_fields && d->fields[id - 1].id == id)
        return &d->fields[id - 1];
    return protobuf_c_message_descriptor_get_field(d, (unsigned)id);
}

/* Walks the wire form of a message of type desc (p[0..n), at offset base of the body) before
 * protobuf-c unpacks it, which recurses once per nested message with nothing to stop it: a body
 * of messages nested a million deep would overflow the stack. The walk stops at OTLP_MAX_DEPTH
 * and says what is wrong where, which protobuf-c does not: a length past the end (the 100 MB
 * length prefix of a 1 KB body), a cut varint, a wire type its field cannot have. Unknown fields
 * are only skipped, as protobuf-c skips them. */
static int pb_check(struct otlp_decoder *d, const ProtobufCMessageDescriptor *desc,
                    const uint8_t *p, size_t n, size_t base, int depth, int full)
{
    static const char *const wire[] = {
        "varint", "64-bit", "length-delimited", "group start", "group end", "32-bit", "6", "7"};
    size_t i = 0;
    while (i < n) {
        size_t at = i;
        uint64_t tag, len = 0;
        if (varint(p, n, &i, &tag) || (tag >> 3) == 0 || (tag >> 3) > 536870911) {
            snprintf(d->err, sizeof(d->err), "protobuf: bad field tag at offset %zu in %s",
                     base + at, desc->name);
            return -EINVAL;
        }
        int wt = (int)(tag & 7);
        const ProtobufCFieldDescriptor *f = field_of(desc, tag >> 3);
        if (f && wt != wire_type_of(f->type) &&
            !(wt == 2 && f->label == PROTOBUF_C_LABEL_REPEATED)) {
            snprintf(d->err, sizeof(d->err),
                     "protobuf: field %s of %s has wire type %s, not %s (offset %zu)", f->name,
                     desc->name, wire[wt], wire[wire_type_of(f->type)], base + at);
            return -EINVAL;
        }
        int bad = 0;
        switch (wt) {
        case 0:
            bad = varint(p, n, &i, &len);
            break;
        case 1:
            bad = n - i < 8;
            i += bad ? 0 : 8;
            break;
        case 5:
            bad = n - i < 4;
            i += bad ? 0 : 4;
            break;
        case 2:
            if (varint(p, n, &i, &len) || len > n - i) {
                snprintf(d->err, sizeof(d->err),
                         "protobuf: length %llu at offset %zu in %s runs past the end of the "
                         "message (%zu bytes left)",
                         (unsigned long long)len, base + at, desc->name, n - i);
                return -EINVAL;
            }
            /* Each level of nesting takes two bytes at least (a tag and a length): a message
             * too short to reach OTLP_MAX_DEPTH is left to protobuf-c, unless the check is the
             * full one that says why protobuf-c refused a body (most records are short: the
             * walk then costs next to nothing). protobuf-c checks every wire type this walk
             * checks but a bool's: in a message left to it, a bool sent with another wire type
             * is read from its first byte rather than refused. */
            if (f && f->type == PROTOBUF_C_TYPE_MESSAGE &&
                (full || depth + 1 + len / 2 > OTLP_MAX_DEPTH)) {
                if (depth >= OTLP_MAX_DEPTH) {
                    snprintf(d->err, sizeof(d->err),
                             "protobuf: messages nested deeper than %d (offset %zu)",
                             OTLP_MAX_DEPTH, base + at);
                    return -EINVAL;
                }
                int rc = pb_check(d, f->descriptor, p + i, (size_t)len, base + i, depth + 1, full);
                if (rc)
                    return rc;
            }
            i += (size_t)len;
            break;
        default:
            snprintf(d->err, sizeof(d->err),
                     "protobuf: wire type %s at offset %zu in %s (not used by OTLP)", wire[wt],
                     base + at, desc->name);
            return -EINVAL;
        }
        if (bad) {
            snprintf(d->err, sizeof(d->err), "protobuf: value cut short at offset %zu in %s",
                     base + at, desc->name);
            return -EINVAL;
        }
    }
    return 0;
}

static ProtobufCMessage *pb_unpack(struct otlp_decoder *d, enum otlp_signal sig,
                                   const uint8_t *body, size_t len)
{
    switch (sig) {
    case OTLP_LOGS:
        return (ProtobufCMessage *)
            opentelemetry__proto__collector__logs__v1__export_logs_service_request__unpack(
                &d->alloc, len, body);
    case OTLP_TRACES:
        return (ProtobufCMessage *)
            opentelemetry__proto__collector__trace__v1__export_trace_service_request__unpack(
                &d->alloc, len, body);
    default:
        return (ProtobufCMessage *)
            opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__unpack(
                &d->alloc, len, body);
    }
}

static const ProtobufCMessageDescriptor *request_descriptor(enum otlp_signal sig)
{
    switch (sig) {
    case OTLP_LOGS:
        return &opentelemetry__proto__collector__logs__v1__export_logs_service_request__descriptor;
    case OTLP_TRACES:
        return &opentelemetry__proto__collector__trace__v1__export_trace_service_request__descriptor;
    default:
        return &opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__descriptor;
    }
}

static int pb_decode(struct otlp_decoder *d, enum otlp_signal sig, const char *body, size_t len,
                     ProtobufCMessage **req)
{
    const ProtobufCMessageDescriptor *desc = request_descriptor(sig);
    int rc = pb_check(d, desc, (const uint8_t *)body, len, 0, 1, 0);
    if (rc)
        return rc;
    *req = pb_unpack(d, sig, (const uint8_t *)body, len);
    if (*req)
        return 0;
    if (d->arena.over)
        return -ENOMEM;
    /* protobuf-c does not say why: the full walk does, in most cases. */
    if (pb_check(d, desc, (const uint8_t *)body, len, 0, 1, 1) == 0)
        snprintf(d->err, sizeof(d->err), "protobuf: the body does not decode as %s", desc->name);
    return -EINVAL;
}

/* ---- both ---- */

int otlp_decode(struct otlp_decoder *d, enum otlp_signal sig, enum otlp_encoding enc,
                const char *body, size_t len, const struct recv_time *rt,
                const struct otlp_out *out, const char **err)
{
    ProtobufCMessage *req = NULL;
    arena_reset(&d->arena);
    d->arena.limit = len * OTLP_MEMORY_PER_BYTE + (1 << 20);
    d->json.ninvalid = 0;
    d->err[0] = '\0';
    int rc = enc == OTLP_PROTOBUF ? pb_decode(d, sig, body, len, &req)
                                  : otlp_json_decode(&d->json, &d->arena, request_descriptor(sig),
                                                     body, len, &req, d->err, sizeof(d->err));
    if (rc == -ENOMEM && d->arena.over) {
        snprintf(d->err, sizeof(d->err),
                 "the request decodes into more than %zu bytes (%d per byte of body, plus 1 MiB)",
                 d->arena.limit, OTLP_MEMORY_PER_BYTE);
        rc = -E2BIG;
    }
    if (rc == 0)
        rc = otlp_map_prepare(&d->map, sig, rt, out);
    if (rc == -ENOMEM && !d->err[0])
        snprintf(d->err, sizeof(d->err), "out of memory decoding the request");
    if (rc) {
        *err = d->err;
        return rc;
    }
    /* The events may take this many bytes in all: a resource repeated in every record must not
     * turn a small body into gigabytes of copies (OTLP_EXPANSION). */
    size_t budget = len * OTLP_EXPANSION + (64u << 20);
    rc = otlp_map_check(&d->map, sig, req, budget);
    if (rc) {
        if (rc == -E2BIG)
            snprintf(d->err, sizeof(d->err),
                     "the request's events would take more than %zu bytes (%d per byte of body, "
                     "plus 64 MiB): its resource or scope attributes repeated in every record",
                     budget, OTLP_EXPANSION);
        else
            snprintf(d->err, sizeof(d->err), "out of memory mapping the request");
        *err = d->err;
        return rc;
    }
    for (size_t i = 0; i < d->json.ninvalid; i++) {
        const struct otlp_invalid *v = &d->json.invalid[i];
        out->invalid(out->ud, v->why, body + v->start, v->end - v->start);
    }
    return (int)d->json.ninvalid + otlp_map_request(&d->map, sig, req);
}
