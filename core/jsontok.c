/* jsmn is compiled here, once; every other file sees only its declarations. */
#define JSMN_STATIC
#include <jsmn.h>

#include "jsontok.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "utf8.h"

#define JSONTOK_MIN_CAP 64

static int fail(struct jsontok *t, const char *msg, size_t off)
{
    t->err = msg;
    t->err_off = off;
    return -EINVAL;
}

static int grow(struct jsontok *t, int cap)
{
    jsmntok_t *tok = realloc(t->tok, (size_t)cap * sizeof(*tok));
    if (!tok)
        return -ENOMEM;
    t->tok = tok;
    int *next = realloc(t->next, (size_t)cap * sizeof(int));
    if (!next)
        return -ENOMEM;
    t->next = next;
    int *aux = realloc(t->aux, (size_t)cap * sizeof(int));
    if (!aux)
        return -ENOMEM;
    t->aux = aux;
    t->cap = cap;
    return 0;
}

void jsontok_free(struct jsontok *t)
{
    free(t->tok);
    free(t->next);
    free(t->aux);
    t->tok = NULL;
    t->next = t->aux = NULL;
    t->cap = t->ntok = 0;
}

static int is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* The bytes between two tokens must be whitespace around exactly one expected separator
 * (or none when sep is 0). This is what jsmn does not check. */
static int gap_ok(const char *s, size_t from, size_t to, char sep)
{
    size_t i = from;
    while (i < to && is_ws(s[i]))
        i++;
    if (sep) {
        if (i >= to || s[i] != sep)
            return 0;
        i++;
        while (i < to && is_ws(s[i]))
            i++;
    }
    return i == to;
}

static int digit(char c)
{
    return c >= '0' && c <= '9';
}

/* RFC 8259 literal or number: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? */
static int primitive_ok(const char *s, size_t n)
{
    if ((n == 4 && !memcmp(s, "true", 4)) || (n == 5 && !memcmp(s, "false", 5)) ||
        (n == 4 && !memcmp(s, "null", 4)))
        return 1;
    size_t i = 0;
    if (i < n && s[i] == '-')
        i++;
    if (i >= n)
        return 0;
    if (s[i] == '0') {
        i++;
    } else if (digit(s[i])) {
        while (i < n && digit(s[i]))
            i++;
    } else {
        return 0;
    }
    if (i < n && s[i] == '.') {
        i++;
        if (i >= n || !digit(s[i]))
            return 0;
        while (i < n && digit(s[i]))
            i++;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            i++;
        if (i >= n || !digit(s[i]))
            return 0;
        while (i < n && digit(s[i]))
            i++;
    }
    return i == n;
}

/* A string body may not hold raw control characters and must be UTF-8. One pass: eight bytes
 * at a time while they are all printable ASCII (the common case), byte by byte otherwise. */
static int string_ok(struct jsontok *t, const jsmntok_t *k)
{
    const unsigned char *s = (const unsigned char *)t->js + k->start;
    size_t n = (size_t)(k->end - k->start), i = 0;
    const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
    while (i < n) {
        while (i + 8 <= n) {
            uint64_t w;
            memcpy(&w, s + i, 8);
            /* A byte >= 0x80, or a byte < 0x20 (w - 0x20.. borrows into its high bit). */
            if (((w - ones * 0x20) | w) & highs)
                break;
            i += 8;
        }
        if (i >= n)
            break;
        if (s[i] < 0x20)
            return fail(t, "control character in string", (size_t)k->start + i);
        if (s[i] < 0x80) {
            i++;
            continue;
        }
        size_t l = utf8_seq_len(s + i, n - i);
        if (!l)
            return fail(t, "invalid UTF-8", (size_t)k->start + i);
        i += l;
    }
    return 0;
}

/* Checks one token against its parent: type rules, and the separator before it. aux[p] holds
 * the text end of p's last child so far (-1 before the first). */
static int check_token(struct jsontok *t, int i)
{
    const jsmntok_t *k = &t->tok[i];
    int p = k->parent;
    size_t start = jsontok_text_start(t, i);
    if (k->type == JSMN_STRING) {
        int rc = string_ok(t, k);
        if (rc)
            return rc;
    } else if (k->type == JSMN_PRIMITIVE) {
        if (!primitive_ok(t->js + k->start, (size_t)(k->end - k->start)))
            return fail(t, "invalid literal or number", (size_t)k->start);
    }
    if (p < 0)
        return i == 0 ? (gap_ok(t->js, 0, start, 0) ? 0 : fail(t, "unexpected data", 0))
                      : fail(t, "trailing data after the value", start);
    const jsmntok_t *pk = &t->tok[p];
    if (pk->type == JSMN_STRING) { /* i is the value of key p */
        if (pk->parent < 0 || t->tok[pk->parent].type != JSMN_OBJECT)
            return fail(t, "key-value pair outside an object", jsontok_text_end(t, p));
        if (pk->size != 1)
            return fail(t, "expected ',' between members", start);
        if (!gap_ok(t->js, jsontok_text_end(t, p), start, ':'))
            return fail(t, "expected ':' after key", jsontok_text_end(t, p));
        t->aux[pk->parent] = (int)jsontok_text_end(t, i);
        return 0;
    }
    if (pk->type == JSMN_OBJECT && k->type != JSMN_STRING)
        return fail(t, "object key must be a string", start);
    int first = t->aux[p] < 0;
    size_t from = first ? (size_t)pk->start + 1 : (size_t)t->aux[p];
    if (!gap_ok(t->js, from, start, first ? 0 : ','))
        return fail(t, first ? "unexpected data" : "expected ','", from);
    if (pk->type == JSMN_ARRAY)
        t->aux[p] = (int)jsontok_text_end(t, i);
    else if (k->size != 1)
        return fail(t, "expected ':' and a value after key", jsontok_text_end(t, i));
    return 0;
}

/* Subtree ends, computed backwards so each child's is known before its parent's. */
static void link_subtrees(struct jsontok *t)
{
    for (int i = t->ntok - 1; i >= 0; i--) {
        int j = i + 1;
        for (int c = 0; c < t->tok[i].size; c++)
            j = t->next[j];
        t->next[i] = j;
    }
}

static int validate(struct jsontok *t)
{
    for (int i = 0; i < t->ntok; i++)
        t->aux[i] = -1;
    for (int i = 0; i < t->ntok; i++) {
        int rc = check_token(t, i);
        if (rc)
            return rc;
    }
    /* After the last child of each container only whitespace may precede the bracket: this
     * rejects trailing commas. */
    for (int i = 0; i < t->ntok; i++) {
        const jsmntok_t *k = &t->tok[i];
        if (k->type != JSMN_OBJECT && k->type != JSMN_ARRAY)
            continue;
        size_t from = t->aux[i] < 0 ? (size_t)k->start + 1 : (size_t)t->aux[i];
        if (!gap_ok(t->js, from, (size_t)k->end - 1, 0))
            return fail(t, "unexpected data before closing bracket", from);
    }
    if (!gap_ok(t->js, jsontok_text_end(t, 0), t->len, 0))
        return fail(t, "trailing data after the value", jsontok_text_end(t, 0));
    link_subtrees(t);
    return 0;
}

/* A document that is a single number or literal: jsmn's strict mode wants a delimiter after a
 * primitive, which the end of the text is not, so it is handled here. */
static int lone_primitive(struct jsontok *t)
{
    size_t a = 0, b = t->len;
    while (a < b && is_ws(t->js[a]))
        a++;
    while (b > a && is_ws(t->js[b - 1]))
        b--;
    if (a == b)
        return fail(t, "empty document", 0);
    if (!primitive_ok(t->js + a, b - a))
        return fail(t, "invalid JSON", a);
    t->tok[0] = (jsmntok_t){
        .type = JSMN_PRIMITIVE, .start = (int)a, .end = (int)b, .size = 0, .parent = -1};
    t->next[0] = 1;
    t->ntok = 1;
    return 0;
}

static int tokenize(struct jsontok *t, const char *js, size_t len, int trusted)
{
    t->js = js;
    t->len = len;
    t->err = NULL;
    t->ntok = 0;
    if (len > INT32_MAX)
        return fail(t, "document too large", 0);
    if (t->cap < JSONTOK_MIN_CAP && grow(t, JSONTOK_MIN_CAP))
        return -ENOMEM;
    /* jsmn stops silently at a NUL byte; say what it is. */
    const char *nul = len ? memchr(js, '\0', len) : NULL;
    if (nul)
        return fail(t, "NUL byte in JSON text", (size_t)(nul - js));
    size_t first = 0;
    while (first < len && is_ws(js[first]))
        first++;
    if (first < len && js[first] != '{' && js[first] != '[' && js[first] != '"')
        return lone_primitive(t);
    for (;;) {
        jsmn_parser p;
        jsmn_init(&p);
        int n = jsmn_parse(&p, js, len, t->tok, (unsigned)t->cap);
        if (n == JSMN_ERROR_NOMEM) {
            if (t->cap > INT32_MAX / 2 || grow(t, t->cap * 2))
                return -ENOMEM;
            continue;
        }
        if (n == JSMN_ERROR_INVAL)
            return fail(t, "invalid JSON", p.pos);
        if (n == JSMN_ERROR_PART)
            return fail(t, "truncated JSON", p.pos);
        if (n == 0)
            return fail(t, "empty document", 0);
        t->ntok = n;
        if (!trusted)
            return validate(t);
        link_subtrees(t);
        return 0;
    }
}

int jsontok_parse(struct jsontok *t, const char *js, size_t len)
{
    return tokenize(t, js, len, 0);
}

int jsontok_parse_trusted(struct jsontok *t, const char *js, size_t len)
{
    return tokenize(t, js, len, 1);
}

int jsontok_str_eq(const struct jsontok *t, int i, const char *key, size_t klen)
{
    const jsmntok_t *k = &t->tok[i];
    size_t n = (size_t)(k->end - k->start);
    const char *s = t->js + k->start;
    if (n == klen && memcmp(s, key, klen) == 0)
        return 1;
    if (n < klen || !memchr(s, '\\', n))
        return 0;
    /* Escaped keys are rare; compare their decoded form. */
    struct buf b = {0};
    int eq = jsontok_unescape(s, n, &b) == 0 && b.len == klen && memcmp(b.data, key, klen) == 0;
    buf_free(&b);
    return eq;
}

int jsontok_find(const struct jsontok *t, int obj, const char *key, size_t klen)
{
    if (obj < 0 || obj >= t->ntok || t->tok[obj].type != JSMN_OBJECT)
        return -1;
    int k = obj + 1;
    for (int m = 0; m < t->tok[obj].size; m++) {
        if (jsontok_str_eq(t, k, key, klen))
            return k + 1;
        k = t->next[k];
    }
    return -1;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static uint32_t hex4(const char *s)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++)
        v = v << 4 | (uint32_t)hexval(s[i]);
    return v;
}

int jsontok_unescape(const char *s, size_t len, struct buf *out)
{
    if (len == 0)
        return 0;
    if (buf_reserve(out, len))
        return -ENOMEM; /* decoding never grows the text */
    char *o = out->data + out->len;
    size_t i = 0;
    while (i < len) {
        const char *bs = memchr(s + i, '\\', len - i);
        size_t run = bs ? (size_t)(bs - (s + i)) : len - i;
        memcpy(o, s + i, run);
        o += run;
        i += run;
        if (i >= len)
            break;
        char c = i + 1 < len ? s[i + 1] : 0;
        i += 2;
        switch (c) {
        case 'b':
            *o++ = '\b';
            break;
        case 'f':
            *o++ = '\f';
            break;
        case 'n':
            *o++ = '\n';
            break;
        case 'r':
            *o++ = '\r';
            break;
        case 't':
            *o++ = '\t';
            break;
        case 'u': {
            if (i + 4 > len) {
                i = len;
                break;
            }
            uint32_t cp = hex4(s + i);
            i += 4;
            if (cp >= 0xD800 && cp <= 0xDBFF && i + 6 <= len && s[i] == '\\' && s[i + 1] == 'u') {
                uint32_t lo = hex4(s + i + 2);
                if (lo >= 0xDC00 && lo <= 0xDFFF) {
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    i += 6;
                }
            }
            if (cp >= 0xD800 && cp <= 0xDFFF)
                cp = 0xFFFD; /* a lone surrogate has no UTF-8 form */
            o += utf8_encode(cp, o);
            break;
        }
        default:
            *o++ = c;
            break;
        }
    }
    out->len = (size_t)(o - out->data);
    return 0;
}
