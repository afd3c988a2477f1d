/* OTLP/JSON into the protobuf-c structures protobuf requests decode into, so one mapping serves
 * both encodings. The body is tokenized by core/jsontok.h (strict RFC 8259), then each object is
 * decoded by its message's protobuf-c descriptor, the encoding rules of the OTLP specification
 * (proto3's JSON mapping with OTLP's changes): field names in lowerCamelCase or as in the
 * .proto, trace and span ids as hex, other bytes as base64, 64-bit integers as strings or
 * numbers, enums as integers (or their names), unknown fields ignored, null as absent.
 *
 * A log record, span or metric that does not decode is left out and listed (its text and why)
 * for the caller to dead-letter, so one bad record does not cost the others; anything else that
 * does not decode refuses the whole body. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collector/otlp_int.h"
#include "core/base64.h"
#include "core/hex.h"

#define MAX_PATH (2 * OTLP_MAX_DEPTH + 4)

/* One request being decoded. */
struct jdec {
    struct otlp_json *j;
    struct arena *a;
    const struct jsontok *t;
    const char *js;
    char *err;
    size_t errlen;
    /* Where the decoder is, for error messages: one entry per member and array element. */
    struct {
        int key;  /* token of the member's key, or -1 for an array element */
        size_t i; /* the element's index */
    } path[MAX_PATH];
    int depth; /* entries in path */
    int base;  /* the first entry an error message names (a record's own errors start there) */
};

static int decode_message(struct jdec *c, int tok, const ProtobufCMessageDescriptor *desc,
                          int depth, ProtobufCMessage **out);

/* Writes "<path>: <what>" into c->err. Returns -EINVAL. */
__attribute__((format(printf, 2, 3))) static int fail(struct jdec *c, const char *fmt, ...)
{
    size_t n = 0;
    for (int d = c->base; d < c->depth && n < c->errlen; d++) {
        if (d == c->base + 4 && c->depth - c->base > 10) { /* a long path: its ends */
            n += (size_t)snprintf(c->err + n, c->errlen - n, "...");
            d = c->depth - 4;
        }
        const jsmntok_t *k = c->path[d].key >= 0 ? &c->t->tok[c->path[d].key] : NULL;
        if (k)
            n += (size_t)snprintf(c->err + n, c->errlen - n, "%s%.*s", n ? "." : "",
                                  (int)(k->end - k->start > 64 ? 64 : k->end - k->start),
                                  c->js + k->start);
        else
            n += (size_t)snprintf(c->err + n, c->errlen - n, "[%zu]", c->path[d].i);
    }
    if (n < c->errlen)
        n += (size_t)snprintf(c->err + n, c->errlen - n, "%s", n ? ": " : "");
    if (n < c->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->err + n, c->errlen - n, fmt, ap);
        va_end(ap);
    }
    return -EINVAL;
}

static int push(struct jdec *c, int key, size_t i)
{
    if (c->depth >= MAX_PATH)
        return fail(c, "nested deeper than %d messages", OTLP_MAX_DEPTH);
    c->path[c->depth].key = key;
    c->path[c->depth].i = i;
    c->depth++;
    return 0;
}

static const char *text(const struct jdec *c, int tok, size_t *len)
{
    const jsmntok_t *t = &c->t->tok[tok];
    *len = (size_t)(t->end - t->start);
    return c->js + t->start;
}

static int is_literal(const struct jdec *c, int tok, char first)
{
    const jsmntok_t *t = &c->t->tok[tok];
    return t->type == JSMN_PRIMITIVE && c->js[t->start] == first;
}

/* ---- field names ---- */

/* True when key (as in the body, unescaped) is the field's .proto name or its lowerCamelCase
 * form (each underscore dropped and the letter after it upper-cased: time_unix_nano,
 * timeUnixNano). */
static int name_is(const char *key, size_t n, const char *name)
{
    size_t i = 0;
    const char *p = name;
    for (; *p && i < n; p++, i++) {
        if (*p == '_' && p[1] >= 'a' && p[1] <= 'z' && key[i] == p[1] - 32)
            p++; /* _u as U */
        else if (key[i] != *p)
            return 0;
    }
    return !*p && i == n;
}

/* A message type's field names as OTLP/JSON writes them (lowerCamelCase) and as the .proto does,
 * made once per type and decoder, in a small table by length and first and last characters:
 * a member's name is found with one or two comparisons (matching it character by character
 * against every field, name_is, took a quarter of S7J's decode). */
#define NAME_SLOTS 64

struct jnames {
    const ProtobufCMessageDescriptor *desc;
    int fallback;             /* a name too long for camel: every lookup uses name_is */
    uint8_t slot[NAME_SLOTS]; /* 2 * field + (1 for the .proto name) + 1; 0: empty */
    struct {
        size_t camel_len, snake_len;
        char camel[48];
    } f[];
};

static size_t name_slot(const char *k, size_t n)
{
    return (n * 7 + (unsigned char)k[0] * 3 + (unsigned char)k[n - 1]) & (NAME_SLOTS - 1);
}

static void name_add(struct jnames *nm, const char *k, size_t n, unsigned value)
{
    size_t at = name_slot(k, n);
    while (nm->slot[at])
        at = (at + 1) & (NAME_SLOTS - 1);
    nm->slot[at] = (uint8_t)value;
}

static struct jnames *names_of(struct otlp_json *j, const ProtobufCMessageDescriptor *desc)
{
    size_t at = ((uintptr_t)desc >> 4) & (OTLP_JSON_TYPES - 1);
    for (size_t k = 0; k < OTLP_JSON_TYPES; k++, at = (at + 1) & (OTLP_JSON_TYPES - 1)) {
        if (j->names[at] && j->names[at]->desc == desc)
            return j->names[at];
        if (!j->names[at])
            break;
    }
    if (j->names[at]) /* every slot taken: not OTLP's messages */
        return NULL;
    struct jnames *nm = calloc(1, sizeof(*nm) + desc->n_fields * sizeof(nm->f[0]));
    if (!nm)
        return NULL;
    nm->desc = desc;
    nm->fallback = 2 * desc->n_fields >= NAME_SLOTS;
    for (unsigned f = 0; f < desc->n_fields && !nm->fallback; f++) {
        const char *s = desc->fields[f].name;
        size_t n = 0;
        nm->f[f].snake_len = strlen(s);
        for (; *s && n < sizeof(nm->f[f].camel); s++) {
            if (*s == '_' && s[1] >= 'a' && s[1] <= 'z')
                nm->f[f].camel[n++] = (char)(*++s - 32);
            else
                nm->f[f].camel[n++] = *s;
        }
        nm->f[f].camel_len = n;
        nm->fallback = *s != '\0' || !n;
        name_add(nm, nm->f[f].camel, n, 2 * f + 1);
        if (n != nm->f[f].snake_len) /* it has an underscore: the .proto name differs */
            name_add(nm, desc->fields[f].name, nm->f[f].snake_len, 2 * f + 2);
    }
    j->names[at] = nm;
    return nm;
}

static const ProtobufCFieldDescriptor *
find_field(struct jdec *c, const ProtobufCMessageDescriptor *desc, const struct jnames *nm, int key)
{
    size_t n;
    const char *k = text(c, key, &n);
    if (c->t->escapes && memchr(k, '\\', n)) {
        buf_reset(&c->j->scratch);
        if (jsontok_unescape(k, n, &c->j->scratch))
            return NULL;
        k = c->j->scratch.data ? c->j->scratch.data : "";
        n = c->j->scratch.len;
    }
    if (!n)
        return NULL;
    if (nm && !nm->fallback) {
        for (size_t at = name_slot(k, n); nm->slot[at]; at = (at + 1) & (NAME_SLOTS - 1)) {
            unsigned f = (nm->slot[at] - 1u) / 2, snake = (nm->slot[at] - 1u) % 2;
            const char *name = snake ? desc->fields[f].name : nm->f[f].camel;
            if (n == (snake ? nm->f[f].snake_len : nm->f[f].camel_len) && !memcmp(k, name, n))
                return &desc->fields[f];
        }
        return NULL;
    }
    for (unsigned f = 0; f < desc->n_fields; f++) {
        if (desc->fields[f].name[0] == k[0] && name_is(k, n, desc->fields[f].name))
            return &desc->fields[f];
    }
    return NULL;
}

/* ---- scalar values ---- */

/* The characters of a string token, unescaped, as a NUL-terminated copy in the arena (the arena
 * remembers its size: otlp_strlen). */
static int copy_string(struct jdec *c, int tok, char **out)
{
    size_t n;
    const char *s = text(c, tok, &n);
    if (c->t->escapes && memchr(s, '\\', n)) {
        buf_reset(&c->j->scratch);
        if (jsontok_unescape(s, n, &c->j->scratch))
            return -ENOMEM;
        s = c->j->scratch.data ? c->j->scratch.data : "";
        n = c->j->scratch.len;
    }
    char *p = arena_alloc(c->a, n + 1);
    if (!p)
        return -ENOMEM;
    memcpy(p, s, n);
    p[n] = '\0';
    *out = p;
    return 0;
}

/* JSON number text: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? (leading zeros allowed: the
 * text of a string may have them). */
static int number_text(const char *s, size_t n, int *integer)
{
    size_t i = s[0] == '-';
    size_t d = i;
    while (i < n && s[i] >= '0' && s[i] <= '9')
        i++;
    if (i == d)
        return 0;
    *integer = i == n;
    if (i < n && s[i] == '.') {
        d = ++i;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == d)
            return 0;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            i++;
        d = i;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == d)
            return 0;
    }
    return i == n;
}

/* The text of a number, or of a string holding one (how proto3 JSON writes 64-bit integers). */
static int number_of(struct jdec *c, int tok, const char **s, size_t *n, int *integer)
{
    const jsmntok_t *t = &c->t->tok[tok];
    if (t->type != JSMN_STRING && !(t->type == JSMN_PRIMITIVE && c->js[t->start] != 't' &&
                                    c->js[t->start] != 'f' && c->js[t->start] != 'n'))
        return fail(c, "not a number");
    *s = text(c, tok, n);
    if (!*n || !number_text(*s, *n, integer))
        return fail(c, "\"%.*s\" is not a number", (int)(*n > 40 ? 40 : *n), *s);
    return 0;
}

/* The double that JSON number text s[0..n) reads as. Decimals of at most 15 digits without an
 * exponent (what telemetry holds) are m / 10^k, both exact, rounded once as strtod rounds the
 * text; the rest goes to strtod (which took 670 instructions a value). */
static double to_double(const char *s, size_t n)
{
    static const double p10[] = {1e0, 1e1, 1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15};
    uint64_t m = 0;
    int digits = 0, frac = -1;
    size_t i = s[0] == '-';
    for (; i < n && digits <= 15; i++) {
        if (s[i] >= '0' && s[i] <= '9') {
            m = m * 10 + (uint64_t)(s[i] - '0');
            digits++;
            frac += frac >= 0;
        } else if (s[i] == '.' && frac < 0) {
            frac = 0;
        } else {
            break;
        }
    }
    if (i == n && digits <= 15) {
        double v = frac > 0 ? (double)m / p10[frac] : (double)m;
        return s[0] == '-' ? -v : v;
    }
    char small[64], *tmp = n < sizeof(small) ? small : malloc(n + 1);
    if (!tmp)
        return NAN;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    double v = strtod(tmp, NULL);
    if (tmp != small)
        free(tmp);
    return v;
}

/* An integer within [lo, hi] (hi as the magnitude of a non-negative bound): digits, or a number
 * with a fraction or exponent whose value is whole (1e3, 5.0). */
static int integer(struct jdec *c, int tok, int64_t lo, uint64_t hi, uint64_t *mag, int *neg)
{
    const char *s;
    size_t n;
    int whole;
    int rc = number_of(c, tok, &s, &n, &whole);
    if (rc)
        return rc;
    *neg = s[0] == '-';
    uint64_t v = 0;
    if (whole && n - (size_t)*neg <= 19) { /* under 10^19: no overflow */
        for (size_t i = (size_t)*neg; i < n; i++)
            v = v * 10 + (uint64_t)(s[i] - '0');
    } else if (whole) {
        for (size_t i = (size_t)*neg; i < n; i++) {
            if (v > (UINT64_MAX - (uint64_t)(s[i] - '0')) / 10)
                return fail(c, "%.*s is out of range", (int)(n > 40 ? 40 : n), s);
            v = v * 10 + (uint64_t)(s[i] - '0');
        }
    } else {
        double d = to_double(s, n);
        if (d != floor(d) || fabs(d) >= 18446744073709551616.0)
            return fail(c, "%.*s is not an integer", (int)(n > 40 ? 40 : n), s);
        v = (uint64_t)fabs(d);
    }
    if (*neg && v == 0)
        *neg = 0;
    if ((*neg && (lo == 0 || v > (uint64_t) - (lo + 1) + 1)) || (!*neg && v > hi))
        return fail(c, "%.*s is out of range", (int)(n > 40 ? 40 : n), s);
    *mag = v;
    return 0;
}

static int signed_value(struct jdec *c, int tok, int64_t lo, int64_t hi, int64_t *out)
{
    uint64_t mag;
    int neg;
    int rc = integer(c, tok, lo, (uint64_t)hi, &mag, &neg);
    if (rc == 0)
        *out = neg ? (int64_t)(0 - mag) : (int64_t)mag;
    return rc;
}

static int unsigned_value(struct jdec *c, int tok, uint64_t hi, uint64_t *out)
{
    int neg;
    return integer(c, tok, 0, hi, out, &neg);
}

static int double_value(struct jdec *c, int tok, double *out)
{
    const jsmntok_t *t = &c->t->tok[tok];
    size_t n;
    const char *s = text(c, tok, &n);
    if (t->type == JSMN_STRING) {
        static const struct {
            const char *s;
            double v;
        } special[] = {{"NaN", NAN}, {"Infinity", INFINITY}, {"-Infinity", -INFINITY}};
        for (size_t i = 0; i < 3; i++) {
            if (strlen(special[i].s) == n && !memcmp(s, special[i].s, n)) {
                *out = special[i].v;
                return 0;
            }
        }
    }
    int whole;
    int rc = number_of(c, tok, &s, &n, &whole);
    if (rc == 0)
        *out = to_double(s, n);
    return rc;
}

static int enum_value(struct jdec *c, int tok, const ProtobufCEnumDescriptor *e, int32_t *out)
{
    if (c->t->tok[tok].type != JSMN_STRING) {
        int64_t v = 0;
        int rc = signed_value(c, tok, INT32_MIN, INT32_MAX, &v);
        *out = (int32_t)v;
        return rc;
    }
    /* A name: SPAN_KIND_SERVER, or without the enum's prefix (SERVER), as senders write it. */
    size_t n;
    const char *s = text(c, tok, &n);
    for (unsigned i = 0; i < e->n_values; i++) {
        const char *name = e->values[i].name;
        size_t l = strlen(name);
        if ((l == n && !memcmp(name, s, n)) ||
            (l > n && name[l - n - 1] == '_' && !memcmp(name + l - n, s, n))) {
            *out = e->values[i].value;
            return 0;
        }
    }
    return fail(c, "\"%.*s\" is not a value of %s", (int)(n > 40 ? 40 : n), s, e->name);
}

/* Trace and span ids: hex in OTLP/JSON, unlike other bytes (base64, standard or URL-safe,
 * padding optional). */
static int bytes_text(struct jdec *c, int hex, const char *s, size_t n, ProtobufCBinaryData *out)
{
    size_t room = hex ? n / 2 : base64_decoded_max(n);
    uint8_t *d = room ? arena_alloc(c->a, room) : NULL;
    if (room && !d)
        return -ENOMEM;
    ssize_t len = hex ? (hex_decode(s, n, d) ? -1 : (ssize_t)(n / 2)) : base64_decode(s, n, d);
    if (len < 0)
        return fail(c, "\"%.*s\" is not %s", (int)(n > 64 ? 64 : n), s,
                    !hex    ? "base64"
                    : n % 2 ? "hex (an odd number of digits)"
                            : "hex");
    out->data = len ? d : NULL;
    out->len = (size_t)len;
    return 0;
}

static int bytes_value(struct jdec *c, const ProtobufCFieldDescriptor *f, int tok,
                       ProtobufCBinaryData *out)
{
    if (c->t->tok[tok].type != JSMN_STRING)
        return fail(c, "not a string");
    size_t n;
    const char *s = text(c, tok, &n);
    size_t l = strlen(f->name);
    int id = (l >= 8 && !strcmp(f->name + l - 8, "trace_id")) ||
             (l >= 7 && !strcmp(f->name + l - 7, "span_id"));
    return bytes_text(c, id, s, n, out);
}

/* One value of field f from token tok into dst (the field's member, or an array element). */
static int decode_value(struct jdec *c, const ProtobufCFieldDescriptor *f, int tok, void *dst,
                        int depth)
{
    const jsmntok_t *t = &c->t->tok[tok];
    int64_t i = 0;
    uint64_t u = 0;
    double d = 0;
    int rc;
    switch (f->type) {
    case PROTOBUF_C_TYPE_MESSAGE:
        return decode_message(c, tok, f->descriptor, depth + 1, dst);
    case PROTOBUF_C_TYPE_STRING:
        if (t->type != JSMN_STRING)
            return fail(c, "not a string");
        return copy_string(c, tok, dst);
    case PROTOBUF_C_TYPE_BYTES:
        return bytes_value(c, f, tok, dst);
    case PROTOBUF_C_TYPE_BOOL:
        if (!is_literal(c, tok, 't') && !is_literal(c, tok, 'f'))
            return fail(c, "not true or false");
        *(protobuf_c_boolean *)dst = is_literal(c, tok, 't');
        return 0;
    case PROTOBUF_C_TYPE_ENUM:
        return enum_value(c, tok, f->descriptor, dst);
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        rc = signed_value(c, tok, INT32_MIN, INT32_MAX, &i);
        *(int32_t *)dst = (int32_t)i;
        return rc;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        rc = unsigned_value(c, tok, UINT32_MAX, &u);
        *(uint32_t *)dst = (uint32_t)u;
        return rc;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        return signed_value(c, tok, INT64_MIN, INT64_MAX, dst);
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return unsigned_value(c, tok, UINT64_MAX, dst);
    case PROTOBUF_C_TYPE_FLOAT:
        rc = double_value(c, tok, &d);
        *(float *)dst = (float)d;
        return rc;
    case PROTOBUF_C_TYPE_DOUBLE:
        return double_value(c, tok, dst);
    }
    return fail(c, "unsupported field type");
}

static size_t element_size(ProtobufCType t)
{
    switch (t) {
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_DOUBLE:
        return 8;
    case PROTOBUF_C_TYPE_STRING:
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(void *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    default:
        return 4;
    }
}

/* The messages whose instances are records: one that does not decode is listed and left out. */
static int is_record(const ProtobufCMessageDescriptor *d)
{
    return d == &opentelemetry__proto__logs__v1__log_record__descriptor ||
           d == &opentelemetry__proto__trace__v1__span__descriptor ||
           d == &opentelemetry__proto__metrics__v1__metric__descriptor;
}

static int list_invalid(struct jdec *c, int tok)
{
    struct otlp_json *j = c->j;
    if (j->ninvalid == j->capinvalid) {
        size_t cap = j->capinvalid ? j->capinvalid * 2 : 16;
        struct otlp_invalid *v = realloc(j->invalid, cap * sizeof(*v));
        if (!v)
            return -ENOMEM;
        j->invalid = v;
        j->capinvalid = cap;
    }
    size_t n = strlen(c->err);
    char *why = arena_alloc(c->a, n + 1);
    if (!why)
        return -ENOMEM;
    memcpy(why, c->err, n + 1);
    j->invalid[j->ninvalid++] =
        (struct otlp_invalid){jsontok_text_start(c->t, tok), jsontok_text_end(c->t, tok), why};
    return 0;
}

/* A repeated field: a JSON array (null: none). */
static int decode_repeated(struct jdec *c, ProtobufCMessage *msg, const ProtobufCFieldDescriptor *f,
                           int tok, int depth)
{
    const jsmntok_t *t = &c->t->tok[tok];
    if (t->type != JSMN_ARRAY)
        return fail(c, "not an array");
    size_t size = element_size(f->type), n = 0;
    char *arr = t->size ? arena_alloc(c->a, (size_t)t->size * size) : NULL;
    if (t->size && !arr)
        return -ENOMEM;
    int records = f->type == PROTOBUF_C_TYPE_MESSAGE && is_record(f->descriptor);
    int e = tok + 1;
    for (size_t k = 0; k < (size_t)t->size; k++, e = c->t->next[e]) {
        int base = c->base, rc = push(c, -1, k);
        if (rc)
            return rc;
        if (records)
            c->base = c->depth - 2; /* the record's error names it: logRecords[3]... */
        rc = is_literal(c, e, 'n') ? fail(c, "null") : decode_value(c, f, e, arr + n * size, depth);
        c->depth--;
        c->base = base;
        if (rc == -EINVAL && records)
            rc = list_invalid(c, e);
        else if (rc == 0)
            n++;
        if (rc)
            return rc;
    }
    *(size_t *)((char *)msg + f->quantifier_offset) = n;
    *(void **)((char *)msg + f->offset) = arr;
    return 0;
}

static int decode_message(struct jdec *c, int tok, const ProtobufCMessageDescriptor *desc,
                          int depth, ProtobufCMessage **out)
{
    const jsmntok_t *t = &c->t->tok[tok];
    if (t->type != JSMN_OBJECT)
        return fail(c, "not an object");
    if (depth > OTLP_MAX_DEPTH)
        return fail(c, "messages nested deeper than %d", OTLP_MAX_DEPTH);
    ProtobufCMessage *msg = arena_alloc(c->a, desc->sizeof_message);
    if (!msg)
        return -ENOMEM;
    desc->message_init(msg);
    const struct jnames *nm = names_of(c->j, desc);
    int k = tok + 1;
    for (int m = 0; m < t->size; m++, k = c->t->next[k + 1]) {
        const ProtobufCFieldDescriptor *f = find_field(c, desc, nm, k);
        if (!f || is_literal(c, k + 1, 'n'))
            continue; /* an unknown field, or null: the default */
        int rc = push(c, k, 0);
        if (rc)
            return rc;
        char *member = (char *)msg + f->offset;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            rc = decode_repeated(c, msg, f, k + 1, depth);
        } else {
            rc = decode_value(c, f, k + 1, member, depth);
            if (rc == 0 && (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF))
                *(uint32_t *)((char *)msg + f->quantifier_offset) = f->id;
            else if (rc == 0 && f->label == PROTOBUF_C_LABEL_OPTIONAL && f->quantifier_offset)
                *(protobuf_c_boolean *)((char *)msg + f->quantifier_offset) = 1;
        }
        c->depth--;
        if (rc)
            return rc;
    }
    *out = msg;
    return 0;
}

int otlp_json_decode(struct otlp_json *j, struct arena *a, const ProtobufCMessageDescriptor *desc,
                     const char *body, size_t len, ProtobufCMessage **msg, char *err, size_t errlen)
{
    struct jdec c = {.j = j, .a = a, .t = &j->tok, .js = body, .err = err, .errlen = errlen};
    int rc = jsontok_parse(&j->tok, body, len);
    if (rc == -EINVAL)
        snprintf(err, errlen, "body is not valid JSON: %s at offset %zu", j->tok.err,
                 j->tok.err_off);
    else if (rc == 0 && j->tok.tok[0].type != JSMN_OBJECT)
        rc = fail(&c, "body is not a JSON object");
    else if (rc == 0)
        rc = decode_message(&c, 0, desc, 1, msg);
    if (rc == -EINVAL && !err[0])
        snprintf(err, errlen, "body does not decode");
    if (rc)
        j->ninvalid = 0;
    /* Tokens of a rare huge body are not kept for the life of the input (24 bytes a token). */
    if (j->tok.cap > (1 << 18))
        jsontok_free(&j->tok);
    buf_trim(&j->scratch, 1 << 20);
    return rc;
}

void otlp_json_free(struct otlp_json *j)
{
    for (size_t i = 0; i < OTLP_JSON_TYPES; i++)
        free(j->names[i]);
    jsontok_free(&j->tok);
    buf_free(&j->scratch);
    free(j->invalid);
    memset(j, 0, sizeof(*j));
}
