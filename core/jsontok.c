/* One pass over the text builds jsmn-layout tokens (type, start, end, size, parent) and the
 * subtree links, and enforces RFC 8259 as it goes. jsmn itself plus a second validating pass
 * over its tokens cost 7,800 instructions for a 260-byte event; this pass costs 3,700
 * (docs/design.md). */
#include "core/jsontok.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/hex.h"
#include "core/utf8.h"

#ifdef __SSE2__
#include <emmintrin.h>
#endif

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
    t->cap = cap;
    return 0;
}

void jsontok_free(struct jsontok *t)
{
    free(t->tok);
    free(t->next);
    t->tok = NULL;
    t->next = NULL;
    t->cap = t->ntok = 0;
}

static int is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
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

static int is_hex(char c)
{
    return digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* Scans a string body from js[i] (just after the opening quote at q); returns the index of the
 * closing quote, or -1 with t->err set. Sixteen bytes at a time (SSE2), then eight: the lowest
 * byte that is '"', '\', a control character or non-ASCII is found exactly (in the eight-byte
 * step, bytes above it may be flagged by a borrow, never those below), so the scan jumps
 * straight to it. Trusted text is only searched for its end. */
static inline __attribute__((always_inline)) long scan_string(struct jsontok *t, const char *js,
                                                              size_t len, size_t q, int trusted)
{
    const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
    size_t i = q + 1;
    for (;;) {
#ifdef __SSE2__
        /* Sixteen bytes at a time: as signed bytes, control characters and non-ASCII bytes are
         * exactly those below 0x20. */
        const __m128i quote = _mm_set1_epi8('"'), bslash = _mm_set1_epi8('\\'),
                      space = _mm_set1_epi8(0x20);
        while (i + 16 <= len) {
            __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(js + i));
            __m128i m = _mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, bslash));
            if (!trusted)
                m = _mm_or_si128(m, _mm_cmplt_epi8(v, space));
            unsigned stop = (unsigned)_mm_movemask_epi8(m);
            if (stop) {
                i += (size_t)__builtin_ctz(stop);
                goto found;
            }
            i += 16;
        }
#endif
        while (i + 8 <= len) {
            uint64_t w;
            memcpy(&w, js + i, 8);
            uint64_t qx = w ^ (ones * '"'), bx = w ^ (ones * '\\');
            uint64_t stop = ((qx - ones) & ~qx) | ((bx - ones) & ~bx);
            if (!trusted)
                stop |= (w - ones * 0x20) | w;
            stop &= highs;
            if (stop) {
                i += (size_t)__builtin_ctzll(stop) >> 3;
                break;
            }
            i += 8;
        }
#ifdef __SSE2__
    found:
#endif
        if (i >= len)
            return fail(t, "truncated JSON", q), -1;
        unsigned char c = (unsigned char)js[i];
        if (c == '"')
            return (long)i;
        if (c == '\\') {
            t->escapes++;
            if (i + 1 >= len)
                return fail(t, "truncated JSON", q), -1;
            char e = js[i + 1];
            if (e == 'u') {
                if (i + 6 > len)
                    return fail(t, "truncated JSON", q), -1;
                if (!trusted && !(is_hex(js[i + 2]) && is_hex(js[i + 3]) && is_hex(js[i + 4]) &&
                                  is_hex(js[i + 5])))
                    return fail(t, "invalid escape in string", i), -1;
                i += 6;
            } else if (trusted || (e && strchr("\"\\/bfnrt", e))) {
                i += 2;
            } else {
                return fail(t, "invalid escape in string", i), -1;
            }
            continue;
        }
        if (trusted || (c >= 0x20 && c < 0x80)) {
            i++; /* the tail of the text, byte by byte */
            continue;
        }
        if (c < 0x20)
            return fail(t, "control character in string", i), -1;
        size_t l = utf8_seq_len((const unsigned char *)js + i, len - i);
        if (!l)
            return fail(t, "invalid UTF-8", i), -1;
        i += l;
    }
}

/* What may come next. */
enum want {
    W_VALUE,       /* the root, after ':', after ',' in an array */
    W_KEY,         /* after ',' in an object */
    W_FIRST_KEY,   /* after '{': a key or '}' */
    W_FIRST_VALUE, /* after '[': a value or ']' */
    W_COLON,       /* after a key */
    W_SEP,         /* after a member or element: ',' or the closing bracket */
    W_END,         /* after the root value: whitespace only */
};

static int add_token(struct jsontok *t, jsmntype_t type, size_t start, int parent)
{
    if (t->ntok == t->cap && (t->cap > INT32_MAX / 2 || grow(t, t->cap * 2)))
        return -1;
    t->tok[t->ntok] =
        (jsmntok_t){.type = type, .start = (int)start, .end = -1, .size = 0, .parent = parent};
    return t->ntok++;
}

/* Value token v is complete: its subtree ends at ntok, and so does its key's. Returns what
 * comes next in the container holding it. */
static enum want value_done(struct jsontok *t, int v, int cur)
{
    t->next[v] = t->ntok;
    int p = t->tok[v].parent;
    if (p >= 0 && t->tok[p].type == JSMN_STRING) {
        t->next[p] = t->ntok;
        t->tok[p].size = 1;
    }
    return cur < 0 ? W_END : W_SEP;
}

/* A ',' right after a value (compact text, the usual case) is taken at once, as the loop
 * would take it on its next turn. */
static enum want comma(const char *js, size_t len, size_t *i, enum want w, int in_obj)
{
    if (w == W_SEP && *i < len && js[*i] == ',') {
        (*i)++;
        return in_obj ? W_KEY : W_VALUE;
    }
    return w;
}

static int start(struct jsontok *t, const char *js, size_t len)
{
    t->js = js;
    t->len = len;
    t->err = NULL;
    t->ntok = 0;
    t->escapes = 0;
    t->st = (struct jsontok_state){.w = W_VALUE, .cur = -1, .key = -1};
    if (len > INT32_MAX)
        return fail(t, "document too large", 0);
    if (t->cap < JSONTOK_MIN_CAP && grow(t, JSONTOK_MIN_CAP))
        return -ENOMEM;
    return 0;
}

/* The member of object cur at js[*i] (its key's opening quote) when it is written compactly
 * ("key":value) and its value is a string, a number or a literal: its key and value tokens
 * added (and checked as the general path checks them unless trusted), *i just past the value.
 * Returns the value token (the key's is one before), 0 when the member is of another kind
 * (nothing done: the general path takes it), -EINVAL or -ENOMEM. */
static inline __attribute__((always_inline)) int
flat_member(struct jsontok *t, const char *js, size_t len, size_t *i, int cur, int trusted)
{
    long kend = scan_string(t, js, len, *i, trusted);
    if (kend < 0)
        return -EINVAL;
    size_t j = (size_t)kend + 1;
    if (j + 1 >= len || js[j] != ':')
        return 0;
    char c = js[++j];
    size_t start = j, end;
    jsmntype_t type;
    if (c == '"') {
        long e = scan_string(t, js, len, j, trusted);
        if (e < 0)
            return -EINVAL;
        type = JSMN_STRING;
        start = j + 1;
        end = (size_t)e;
        j = end + 1;
    } else if (c == '-' || digit(c) || c == 't' || c == 'f' || c == 'n') {
        while (j < len && !is_ws(js[j]) && js[j] != ',' && js[j] != '}' && js[j] != ']')
            j++;
        if (j == len)
            return fail(t, "truncated JSON", start);
        if (!trusted && !primitive_ok(js + start, j - start))
            return fail(t, "invalid literal or number", start);
        type = JSMN_PRIMITIVE;
        end = j;
    } else {
        return 0;
    }
    int k = add_token(t, JSMN_STRING, *i + 1, cur);
    int v = k < 0 ? k : add_token(t, type, start, k);
    if (v < 0)
        return -ENOMEM;
    t->tok[k].end = (int)kend;
    t->tok[v].end = (int)end;
    t->tok[cur].size++;
    *i = j;
    return v;
}

/* The value token v just completed a member of the root object named stop: pause there.
 * Inlined: the pausing pass asks it of every root member it passes, and most differ from stop
 * in length or first byte (a call per member was 10% of a worker reading a late member). */
static inline __attribute__((always_inline)) int stop_at(const struct jsontok *t, int v,
                                                         const char *stop, size_t slen)
{
    int k = t->tok[v].parent;
    if (k <= 0 || t->tok[k].type != JSMN_STRING)
        return 0;
    if (t->escapes) /* in this name or an earlier string: compare decoded */
        return jsontok_str_eq(t, k, stop, slen);
    const jsmntok_t *kt = &t->tok[k];
    return (size_t)(kt->end - kt->start) == slen &&
           (!slen || (t->js[kt->start] == stop[0] && !memcmp(t->js + kt->start, stop, slen)));
}

#define PAUSE_IF_STOP(v)                                                                           \
    if (stop && cur == 0 && stop_at(t, v, stop, slen)) {                                           \
        t->st = (struct jsontok_state){i, last_end, (int)w, cur, in_obj, key, v};                  \
        return 1;                                                                                  \
    }

/* Tokenizes from the state in t->st to the end (0) or, when stop is given, until a member of
 * the root object named stop is complete (1). Inlined into each caller, so that the strict,
 * the trusted and the pausing passes each carry only their own checks. */
static inline __attribute__((always_inline)) int run(struct jsontok *t, int trusted,
                                                     const char *stop, size_t slen)
{
    const char *js = t->js;
    size_t len = t->len;
    enum want w = (enum want)t->st.w;
    int cur = t->st.cur;              /* the innermost open object or array */
    int in_obj = t->st.in_obj;        /* cur is an object */
    int key = t->st.key;              /* in an object: the key whose value comes next */
    size_t last_end = t->st.last_end; /* where the last complete value or key ended */
    size_t i = t->st.i;
    while (i < len) {
        char c = js[i];
        /* A member written compactly whose value is a string, a number or a literal (most of
         * an event's) is taken in one step, "key":value, without the turns of the loop for the
         * key, the colon and the value. */
        if (c == '"' && (w == W_KEY || w == W_FIRST_KEY)) {
            int k = flat_member(t, js, len, &i, cur, trusted);
            if (k > 0) {
                key = k - 1;
                last_end = i;
                w = comma(js, len, &i, value_done(t, k, cur), in_obj);
                PAUSE_IF_STOP(k)
                continue;
            }
            if (k < 0)
                return k;
        }
        if (is_ws(c)) {
            i++;
            continue;
        }
        if (w == W_END)
            return fail(t, "trailing data after the value", i);
        if (w == W_COLON) {
            if (c != ':')
                return fail(t, "expected ':' after key", last_end);
            w = W_VALUE;
            i++;
            continue;
        }
        if (w == W_SEP || ((c == '}' || c == ']') && (w == W_FIRST_KEY || w == W_FIRST_VALUE))) {
            if (c == ',') {
                w = in_obj ? W_KEY : W_VALUE;
                i++;
                continue;
            }
            if (c != (in_obj ? '}' : ']'))
                return fail(t, c == '}' || c == ']' ? "mismatched bracket" : "expected ','",
                            w == W_SEP ? last_end : i);
            int done = cur;
            t->tok[done].end = (int)(i + 1);
            cur = t->tok[done].parent;
            if (cur >= 0 && t->tok[cur].type == JSMN_STRING)
                cur = t->tok[cur].parent;
            in_obj = cur >= 0 && t->tok[cur].type == JSMN_OBJECT;
            last_end = ++i;
            w = comma(js, len, &i, value_done(t, done, cur), in_obj);
            PAUSE_IF_STOP(done)
            continue;
        }
        if ((c == '}' || c == ']') && (w == W_VALUE || w == W_KEY) && cur >= 0)
            return fail(t, "unexpected data before closing bracket", last_end);
        int is_key = w == W_KEY || w == W_FIRST_KEY;
        if (is_key && c != '"')
            return fail(t, "object key must be a string", i);
        int parent = in_obj && !is_key ? key : cur;
        if (c == '"') {
            long end = scan_string(t, js, len, i, trusted);
            if (end < 0)
                return -EINVAL;
            int k = add_token(t, JSMN_STRING, i + 1, parent);
            if (k < 0)
                return -ENOMEM;
            t->tok[k].end = (int)end;
            if (cur >= 0 && (is_key || !in_obj))
                t->tok[cur].size++;
            i = (size_t)end + 1;
            last_end = i;
            if (is_key) {
                key = k;
                w = W_COLON;
                if (i < len && js[i] == ':') { /* compact text: no turn of the loop for it */
                    w = W_VALUE;
                    i++;
                }
            } else {
                w = comma(js, len, &i, value_done(t, k, cur), in_obj);
                PAUSE_IF_STOP(k)
            }
            continue;
        }
        if (c == '{' || c == '[') {
            int k = add_token(t, c == '{' ? JSMN_OBJECT : JSMN_ARRAY, i, parent);
            if (k < 0)
                return -ENOMEM;
            if (cur >= 0 && !in_obj)
                t->tok[cur].size++;
            cur = k;
            in_obj = c == '{';
            w = in_obj ? W_FIRST_KEY : W_FIRST_VALUE;
            i++;
            continue;
        }
        if (c != '-' && !digit(c) && c != 't' && c != 'f' && c != 'n')
            return fail(t, "invalid JSON", i);
        size_t e = i;
        while (e < len && !is_ws(js[e]) && js[e] != ',' && js[e] != ']' && js[e] != '}')
            e++;
        if (e == len && cur >= 0)
            return fail(t, "truncated JSON", i);
        if (!trusted && !primitive_ok(js + i, e - i))
            return fail(t, "invalid literal or number", i);
        int k = add_token(t, JSMN_PRIMITIVE, i, parent);
        if (k < 0)
            return -ENOMEM;
        t->tok[k].end = (int)e;
        if (cur >= 0 && !in_obj)
            t->tok[cur].size++;
        i = last_end = e;
        w = comma(js, len, &i, value_done(t, k, cur), in_obj);
        PAUSE_IF_STOP(k)
    }
    t->st.i = i; /* at the end: resuming again changes nothing */
    t->st.w = (int)w;
    if (t->ntok == 0)
        return fail(t, "empty document", 0);
    if (w != W_END)
        return fail(t, "truncated JSON", len);
    return 0;
}

int jsontok_parse(struct jsontok *t, const char *js, size_t len)
{
    int rc = start(t, js, len);
    if (rc)
        return rc;
    rc = run(t, 0, NULL, 0);
    /* A NUL byte makes the text invalid wherever it is (in a string a control character, elsewhere
     * an unexpected one): it is looked for only when parsing failed, to say so, instead of in
     * every text before parsing it (a pass over every byte, about 3% of micro B's time). */
    const char *nul = rc == -EINVAL && len ? memchr(js, '\0', len) : NULL;
    if (nul)
        return fail(t, "NUL byte in JSON text", (size_t)(nul - js));
    return rc;
}

int jsontok_parse_trusted(struct jsontok *t, const char *js, size_t len)
{
    int rc = start(t, js, len);
    return rc ? rc : run(t, 1, NULL, 0);
}

int jsontok_begin_trusted(struct jsontok *t, const char *js, size_t len)
{
    return start(t, js, len);
}

int jsontok_resume(struct jsontok *t, const char *key, size_t klen)
{
    return key ? run(t, 1, key, klen) : run(t, 1, NULL, 0);
}

int jsontok_str_eq(const struct jsontok *t, int i, const char *key, size_t klen)
{
    const jsmntok_t *k = &t->tok[i];
    size_t n = (size_t)(k->end - k->start);
    const char *s = t->js + k->start;
    /* Up to the first escape, raw bytes are decoded bytes: most keys differ right there. */
    size_t m = n < klen ? n : klen, j = 0;
    while (j < m && s[j] == key[j] && s[j] != '\\')
        j++;
    if (j == n)
        return n == klen;
    if (s[j] != '\\')
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
    for (int m = 0; m < t->tok[obj].size; m++, k = t->next[k]) {
        if (t->escapes) {
            if (jsontok_str_eq(t, k, key, klen))
                return k + 1;
            continue;
        }
        /* Without escapes in the text, a name is its bytes. */
        const jsmntok_t *kt = &t->tok[k];
        if ((size_t)(kt->end - kt->start) == klen &&
            (!klen || (t->js[kt->start] == key[0] && !memcmp(t->js + kt->start, key, klen))))
            return k + 1;
    }
    return -1;
}

int jsontok_simple_number(const char *s, size_t n, int64_t *out_i, double *out_d)
{
    static const double p10[] = {1e0, 1e1, 1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15};
    size_t i = n && s[0] == '-';
    int64_t m = 0;
    int digits = 0, frac = -1;
    for (; i < n; i++) {
        char c = s[i];
        if (c >= '0' && c <= '9') {
            if (++digits > 18)
                return -1;
            m = m * 10 + (c - '0');
            frac += frac >= 0;
        } else if (c == '.' && frac < 0) {
            frac = 0;
        } else {
            return -1;
        }
    }
    if (!digits || frac == 0)
        return -1;
    if (frac < 0) {
        *out_i = s[0] == '-' ? -m : m;
        return 1;
    }
    if (digits > 15)
        return -1;
    double d = (double)m / p10[frac];
    *out_d = s[0] == '-' ? -d : d;
    return 2;
}

static uint32_t hex4(const char *s)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++)
        v = v << 4 | (uint32_t)hex_digit(s[i]);
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
