/* What the OTLP encoder reads out of an event's JSON: strings (unescaped into the arena),
 * numbers as the input writes them, times, ids, any value as an AnyValue, and the record's
 * attributes (what is left once its builder took its own fields). */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/hex.h"
#include "core/timeutil.h"
#include "router/sinks/otlp_encode_int.h"

/* ---- memory and text ---- */

void *oe_alloc(struct otlp_encoder *e, size_t size)
{
    void *p = arena_alloc(&e->arena, size);
    if (!p)
        e->nomem = 1;
    return p;
}

char *oe_strdup(struct otlp_encoder *e, const char *p, size_t n)
{
    char *s = oe_alloc(e, n + 1);
    if (!s)
        return NULL;
    if (n)
        memcpy(s, p, n);
    s[n] = '\0';
    return s;
}

size_t oe_strlen(const char *s)
{
    if (!s || s == protobuf_c_empty_string)
        return 0;
    return arena_size(s) - 1;
}

int oe_push(struct otlp_encoder *e, struct oe_list *l, void *p)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        void **v = oe_alloc(e, cap * sizeof(*v));
        if (!v)
            return -ENOMEM;
        if (l->n)
            memcpy(v, l->v, l->n * sizeof(*v));
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = p;
    return 0;
}

int oe_refuse(struct otlp_encoder *e, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->why, sizeof(e->why), fmt, ap);
    va_end(ap);
    return -EINVAL;
}

const jsmntok_t *oe_tok(const struct otlp_encoder *e, int i)
{
    return &e->tok.tok[i];
}

int oe_text(struct otlp_encoder *e, int i, const char **p, size_t *n)
{
    const jsmntok_t *t = oe_tok(e, i);
    if (t->type != JSMN_STRING)
        return -1;
    const char *raw = e->tok.js + t->start;
    size_t len = (size_t)(t->end - t->start);
    if (!e->tok.escapes || !memchr(raw, '\\', len)) {
        *p = raw;
        *n = len;
        return 0;
    }
    buf_reset(&e->scratch);
    if (jsontok_unescape(raw, len, &e->scratch)) {
        e->nomem = 1;
        return -1;
    }
    *p = e->scratch.data;
    *n = e->scratch.len;
    return 0;
}

char *oe_string(struct otlp_encoder *e, int i)
{
    const char *p;
    size_t n;
    return oe_text(e, i, &p, &n) ? NULL : oe_strdup(e, p, n);
}

/* True when string token i is name. */
int oe_text_is(struct otlp_encoder *e, int i, const char *name, size_t n)
{
    const char *p;
    size_t len;
    return oe_text(e, i, &p, &len) == 0 && len == n && !memcmp(p, name, n);
}

/* ---- numbers ---- */

/* The text of number token i (a JSON number; quoted only when `quoted` allows a string of one),
 * NUL-terminated in e->scratch. NULL when it is no number. */
static const char *number(struct otlp_encoder *e, int i, int quoted)
{
    const jsmntok_t *t = oe_tok(e, i);
    const char *p = e->tok.js + t->start;
    size_t n = (size_t)(t->end - t->start);
    if (!(t->type == JSMN_PRIMITIVE || (quoted && t->type == JSMN_STRING)) || n == 0 ||
        !(p[0] == '-' || (p[0] >= '0' && p[0] <= '9')))
        return NULL;
    buf_reset(&e->scratch);
    if (buf_append(&e->scratch, p, n) || buf_putc(&e->scratch, '\0')) {
        e->nomem = 1;
        return NULL;
    }
    return e->scratch.data;
}

/* Digits only, an optional minus when neg: what the input writes for integers. */
static int integral(const char *s, int neg)
{
    if (neg && *s == '-')
        s++;
    if (!*s)
        return 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return 0;
    }
    return 1;
}

int oe_int(struct otlp_encoder *e, int i, int64_t *v)
{
    const char *s = number(e, i, 0);
    if (!s || !integral(s, 1))
        return -1;
    errno = 0;
    long long x = strtoll(s, NULL, 10);
    if (errno)
        return -1;
    *v = x;
    return 0;
}

/* A non-negative integer; also as a string of digits when quoted (the proto3 JSON form). */
int oe_uint(struct otlp_encoder *e, int i, uint64_t *v, int quoted)
{
    const char *s = number(e, i, quoted);
    if (!s || !integral(s, 0))
        return -1;
    errno = 0;
    unsigned long long x = strtoull(s, NULL, 10);
    if (errno)
        return -1;
    *v = x;
    return 0;
}

/* Any number; null is NaN (the input writes NaN and the infinities as null). */
int oe_double(struct otlp_encoder *e, int i, double *v)
{
    const jsmntok_t *t = oe_tok(e, i);
    if (t->type == JSMN_PRIMITIVE && e->tok.js[t->start] == 'n') {
        *v = NAN;
        return 0;
    }
    /* What JSON has no number for, as the metric model writes it (docs/metrics.md). */
    if (t->type == JSMN_STRING) {
        static const struct {
            const char *text;
            double v;
        } special[] = {{"NaN", NAN},
                       {"StaleNaN", NAN},
                       {"+Inf", INFINITY},
                       {"Inf", INFINITY},
                       {"-Inf", -INFINITY}};
        size_t n = (size_t)(t->end - t->start);
        for (size_t k = 0; k < sizeof(special) / sizeof(special[0]); k++) {
            if (strlen(special[k].text) == n && !memcmp(e->tok.js + t->start, special[k].text, n)) {
                *v = special[k].v;
                return 0;
            }
        }
        return -1;
    }
    const char *s = number(e, i, 0);
    if (!s)
        return -1;
    *v = strtod(s, NULL);
    return 0;
}

int oe_time(struct otlp_encoder *e, int i, uint64_t *ns)
{
    const char *p;
    size_t n;
    int64_t t;
    if (oe_text(e, i, &p, &n) || time_parse_rfc3339(p, n, &t) || t < 0)
        return -EINVAL;
    *ns = (uint64_t)t;
    return 0;
}

/* A trace id (nbytes 16) or span id (8) as lowercase or uppercase hex. */
int oe_hex_id(struct otlp_encoder *e, int i, size_t nbytes, ProtobufCBinaryData *out)
{
    const char *p;
    size_t n;
    if (oe_text(e, i, &p, &n) || n != nbytes * 2)
        return -1;
    uint8_t *b = oe_alloc(e, nbytes);
    if (!b)
        return -1;
    if (hex_decode(p, n, b))
        return -1;
    *out = (ProtobufCBinaryData){nbytes, b};
    return 0;
}

/* ---- values ---- */

/* A JSON value as an AnyValue, the way the input writes one back: strings, integers (digits
 * that fit 64 bits), doubles, booleans, arrays, objects as key/value lists, null as no value;
 * containers nested deeper than OE_ANY_DEPTH as no value, as the input cuts them. */
AnyValue *oe_any(struct otlp_encoder *e, int i, int depth)
{
    AnyValue *v = oe_alloc(e, sizeof(*v));
    if (!v)
        return NULL;
    opentelemetry__proto__common__v1__any_value__init(v);
    const jsmntok_t *t = oe_tok(e, i);
    if (depth > OE_ANY_DEPTH)
        return v;
    if (t->type == JSMN_STRING) {
        v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
        v->string_value = oe_string(e, i);
    } else if (t->type == JSMN_PRIMITIVE) {
        char c = e->tok.js[t->start];
        int64_t x;
        if (c == 't' || c == 'f') {
            v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE;
            v->bool_value = c == 't';
        } else if (c != 'n' && oe_int(e, i, &x) == 0) {
            v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
            v->int_value = x;
        } else if (c != 'n' && oe_double(e, i, &v->double_value) == 0) {
            v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE;
        }
    } else if (t->type == JSMN_ARRAY) {
        ArrayValue *a = oe_alloc(e, sizeof(*a));
        AnyValue **vs = oe_alloc(e, (t->size ? (size_t)t->size : 1) * sizeof(*vs));
        if (!a || !vs)
            return v;
        opentelemetry__proto__common__v1__array_value__init(a);
        a->values = vs;
        for (int c = i + 1, k = 0; k < t->size; k++, c = e->tok.next[c])
            a->values[a->n_values++] = oe_any(e, c, depth + 1);
        v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE;
        v->array_value = a;
    } else if (t->type == JSMN_OBJECT && depth + 1 <= OE_ANY_DEPTH) {
        KeyValueList *l = oe_alloc(e, sizeof(*l));
        KeyValue **kv = oe_alloc(e, (t->size ? (size_t)t->size : 1) * sizeof(*kv));
        if (!l || !kv)
            return v;
        opentelemetry__proto__common__v1__key_value_list__init(l);
        l->values = kv;
        for (int k = i + 1, m = 0; m < t->size; m++, k = e->tok.next[k]) {
            const char *p;
            size_t n;
            if (oe_text(e, k, &p, &n))
                return v;
            /* Copied before oe_kv reads the value: the key may sit in the scratch buffer. */
            char *key = oe_strdup(e, p, n);
            if (key)
                l->values[l->n_values++] = oe_kv(e, key, n, k + 1);
        }
        v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE;
        v->kvlist_value = l;
    }
    return v;
}

KeyValue *oe_kv(struct otlp_encoder *e, const char *key, size_t klen, int val)
{
    KeyValue *kv = oe_alloc(e, sizeof(*kv));
    if (!kv)
        return NULL;
    opentelemetry__proto__common__v1__key_value__init(kv);
    kv->key = oe_strdup(e, key, klen);
    kv->value = oe_any(e, val, 0);
    return kv;
}

/* An object's members as key/value pairs (span events' and links' attributes). */
int oe_kvs(struct otlp_encoder *e, int obj, KeyValue ***out, size_t *n)
{
    const jsmntok_t *t = oe_tok(e, obj);
    if (t->type != JSMN_OBJECT)
        return -1;
    KeyValue **kv = oe_alloc(e, (t->size ? (size_t)t->size : 1) * sizeof(*kv));
    if (!kv)
        return -1;
    *n = 0;
    for (int k = obj + 1, m = 0; m < t->size; m++, k = e->tok.next[k]) {
        const char *p;
        size_t len;
        char *key = oe_text(e, k, &p, &len) ? NULL : oe_strdup(e, p, len);
        if (!key)
            return -1;
        kv[(*n)++] = oe_kv(e, key, len, k + 1);
    }
    *out = kv;
    return 0;
}

/* ---- the record's own fields and its attributes ---- */

/* at[j]: the index in e->mem of the member named names[j] that may be the record's own field
 * (role OE_OWN), or -1. */
void oe_own(struct otlp_encoder *e, const char *const *names, size_t n, int *at)
{
    for (size_t j = 0; j < n; j++)
        at[j] = -1;
    for (size_t i = 0; i < e->nmem; i++) {
        struct oe_member *m = &e->mem[i];
        m->taken = 0;
        if (m->role != OE_OWN)
            continue;
        for (size_t j = 0; j < n; j++) {
            if (at[j] < 0 && strlen(names[j]) == m->klen && !memcmp(names[j], m->key, m->klen)) {
                at[j] = (int)i;
                break;
            }
        }
    }
}

/* The value token of own field j, or -1; `take` marks it as used (not an attribute). */
int oe_val(struct otlp_encoder *e, const int *at, int j)
{
    return at[j] < 0 ? -1 : e->mem[at[j]].val;
}

void oe_take(struct otlp_encoder *e, const int *at, int j)
{
    if (at[j] >= 0)
        e->mem[at[j]].taken = 1;
}

/* A label: an attribute of the same name and value. */
static KeyValue *label(struct otlp_encoder *e, int k)
{
    const char *p;
    size_t n;
    if (oe_text(e, k, &p, &n))
        return NULL;
    char *key = oe_strdup(e, p, n);
    return key ? oe_kv(e, key, n, k + 1) : NULL;
}

/* The record's attributes: in the event's order, every attributes.<key> member (as <key>) and
 * every member of role OE_OWN not taken as an own field; the member labels_at (a metric event's
 * labels object, -1 for none) gives one attribute per label. */
int oe_attrs(struct otlp_encoder *e, int labels_at, KeyValue ***out, size_t *n)
{
    size_t count = 0;
    for (size_t i = 0; i < e->nmem; i++) {
        const struct oe_member *m = &e->mem[i];
        if ((int)i == labels_at)
            count += (size_t)oe_tok(e, m->val)->size;
        else if (m->role == OE_ATTRIBUTE || (m->role == OE_OWN && !m->taken))
            count++;
    }
    KeyValue **kv = oe_alloc(e, (count ? count : 1) * sizeof(*kv));
    if (!kv)
        return -ENOMEM;
    *n = 0;
    for (size_t i = 0; i < e->nmem; i++) {
        const struct oe_member *m = &e->mem[i];
        if ((int)i == labels_at) {
            for (int k = m->val + 1, j = 0; j < oe_tok(e, m->val)->size; j++, k = e->tok.next[k])
                kv[(*n)++] = label(e, k);
        } else if (m->role == OE_ATTRIBUTE) {
            kv[(*n)++] = oe_kv(e, m->key + 11, m->klen - 11, m->val);
        } else if (m->role == OE_OWN && !m->taken) {
            kv[(*n)++] = oe_kv(e, m->key, m->klen, m->val);
        }
    }
    *out = kv;
    return e->nomem ? -ENOMEM : 0;
}
