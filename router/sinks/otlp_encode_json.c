/* OTLP/JSON (the OTLP specification's JSON Protobuf Encoding) of the messages the encoder built,
 * written by walking protobuf-c's descriptors rather than by hand per message: the same
 * descriptors protobuf-c packs with, so the JSON and the protobuf of a request cannot drift
 * apart. What OTLP/JSON asks beyond proto3's JSON mapping: field names in lowerCamelCase only,
 * enums as integers, trace and span ids as hex rather than base64. */
#include <errno.h>
#include <math.h>
#include <string.h>

#include "core/base64.h"
#include "core/hex.h"
#include "core/jsonw.h"
#include "router/sinks/otlp_encode_int.h"

#define L(s) s, sizeof(s) - 1

struct jw {
    struct buf *out;
    int err;
};

static void put(struct jw *w, const char *s, size_t n)
{
    w->err |= buf_append(w->out, s, n);
}

static void putc_(struct jw *w, char c)
{
    w->err |= buf_putc(w->out, c);
}

/* "time_unix_nano" as "timeUnixNano":. */
static void key(struct jw *w, const char *name)
{
    putc_(w, '"');
    for (const char *p = name; *p; p++) {
        if (*p == '_' && p[1]) {
            p++;
            putc_(w, (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p));
        } else {
            putc_(w, *p);
        }
    }
    put(w, L("\":"));
}

static int is_id(const char *name)
{
    return !strcmp(name, "trace_id") || !strcmp(name, "span_id") || !strcmp(name, "parent_span_id");
}

/* Bytes as a JSON string of their hex or base64 (by the append given). */
static void quoted(struct jw *w, int (*append)(struct buf *, const void *, size_t),
                   const ProtobufCBinaryData *b)
{
    putc_(w, '"');
    w->err |= append(w->out, b->data, b->len);
    putc_(w, '"');
}

static void number(struct jw *w, double d)
{
    if (isnan(d))
        put(w, L("\"NaN\""));
    else if (isinf(d))
        put(w, d > 0 ? "\"Infinity\"" : "\"-Infinity\"", d > 0 ? 10 : 11);
    else
        w->err |= jsonw_double(w->out, d);
}

static void message(struct jw *w, const ProtobufCMessage *m);

/* One value of field f at p (an element of a repeated field, or the field itself). */
static void value(struct jw *w, const ProtobufCFieldDescriptor *f, const void *p)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_ENUM:
        w->err |= jsonw_int(w->out, *(const int32_t *)p);
        break;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        w->err |= jsonw_uint(w->out, *(const uint32_t *)p);
        break;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        putc_(w, '"');
        w->err |= jsonw_int(w->out, *(const int64_t *)p);
        putc_(w, '"');
        break;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        putc_(w, '"');
        w->err |= jsonw_uint(w->out, *(const uint64_t *)p);
        putc_(w, '"');
        break;
    case PROTOBUF_C_TYPE_FLOAT:
        number(w, *(const float *)p);
        break;
    case PROTOBUF_C_TYPE_DOUBLE:
        number(w, *(const double *)p);
        break;
    case PROTOBUF_C_TYPE_BOOL:
        if (*(const protobuf_c_boolean *)p)
            put(w, L("true"));
        else
            put(w, L("false"));
        break;
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(char *const *)p;
        w->err |= jsonw_string(w->out, s ? s : "", oe_strlen(s));
        break;
    }
    case PROTOBUF_C_TYPE_BYTES:
        if (is_id(f->name))
            quoted(w, hex_append, p);
        else
            quoted(w, base64_append, p);
        break;
    case PROTOBUF_C_TYPE_MESSAGE:
        message(w, *(ProtobufCMessage *const *)p);
        break;
    }
}

static size_t value_size(ProtobufCType t)
{
    switch (t) {
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_DOUBLE:
        return 8;
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_STRING:
        return sizeof(char *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(ProtobufCMessage *);
    default:
        return 4;
    }
}

/* proto3: a field at its default value is not written (a oneof's chosen member always is). */
static int is_default(const ProtobufCFieldDescriptor *f, const void *p)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_STRING:
        return oe_strlen(*(char *const *)p) == 0;
    case PROTOBUF_C_TYPE_BYTES:
        return ((const ProtobufCBinaryData *)p)->len == 0;
    case PROTOBUF_C_TYPE_MESSAGE:
        return *(ProtobufCMessage *const *)p == NULL;
    case PROTOBUF_C_TYPE_DOUBLE:
        return *(const double *)p == 0 && !signbit(*(const double *)p);
    case PROTOBUF_C_TYPE_FLOAT:
        return *(const float *)p == 0 && !signbit(*(const float *)p);
    default: {
        static const char zero[8];
        return memcmp(p, zero, value_size(f->type)) == 0;
    }
    }
}

static void message(struct jw *w, const ProtobufCMessage *m)
{
    if (!m) {
        put(w, L("{}"));
        return;
    }
    const ProtobufCMessageDescriptor *d = m->descriptor;
    const char *base = (const char *)m;
    int n = 0;
    putc_(w, '{');
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        const void *p = base + f->offset;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t count = *(const size_t *)(base + f->quantifier_offset);
            if (!count)
                continue;
            if (n++)
                putc_(w, ',');
            key(w, f->name);
            putc_(w, '[');
            const char *v = *(char *const *)p;
            for (size_t k = 0; k < count; k++) {
                if (k)
                    putc_(w, ',');
                value(w, f, v + k * value_size(f->type));
            }
            putc_(w, ']');
            continue;
        }
        if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
            if (*(const uint32_t *)(base + f->quantifier_offset) != f->id)
                continue;
        } else if (is_default(f, p)) {
            continue;
        }
        if (n++)
            putc_(w, ',');
        key(w, f->name);
        value(w, f, p);
    }
    putc_(w, '}');
}

int oe_json(const ProtobufCMessage *m, struct buf *out)
{
    struct jw w = {out, 0};
    message(&w, m);
    return w.err ? -ENOMEM : 0;
}
