/* Strict, allocation-free (in steady state) JSON tokenizing: one pass builds tokens in jsmn's
 * layout (jsmntok_t with parent links) and enforces RFC 8259 (separators, literals, numbers,
 * escapes, control characters, UTF-8). The caller owns a struct jsontok and reuses it across
 * documents; tokens point into the caller's text, which must outlive their use. */
#ifndef SPILLWAY_JSONTOK_H
#define SPILLWAY_JSONTOK_H

#include <stddef.h>
#include <stdint.h>

#ifndef JSMN_H
#define JSMN_HEADER
#include <jsmn.h>
#endif

#include "core/buf.h"

/* Where a paused tokenization stands (jsontok_resume). */
struct jsontok_state {
    size_t i, last_end;
    int w, cur, in_obj, key;
    int found; /* after jsontok_resume() returned 1: the value token of the member named */
};

struct jsontok {
    jsmntok_t *tok;
    int *next; /* next[i]: index of the first token after i's subtree */
    int ntok;
    int cap;
    int escapes; /* backslash escapes in the strings: 0 (the usual) spares callers a scan */
    const char *js;
    size_t len;
    const char *err; /* static message when parse fails */
    size_t err_off;
    struct jsontok_state st;
};

/* Tokenizes and validates js[0..len). Returns 0, -EINVAL (t->err, t->err_off say why and where)
 * or -ENOMEM. Token 0 is the root value. */
int jsontok_parse(struct jsontok *t, const char *js, size_t len);
/* Tokenizes text this process produced and already validated (events in the pipeline): the
 * same tokens without the checks. Never for input from outside. */
int jsontok_parse_trusted(struct jsontok *t, const char *js, size_t len);
/* The same in steps, for readers of a few members: jsontok_begin_trusted() makes no token;
 * each jsontok_resume() goes on until a member of the root object named key is complete
 * (returns 1, t->st.found being that member's value token; the tokens so far are a valid prefix:
 * the root's completed members and their subtrees, the root's size counting those) or, with key
 * NULL or absent, to the end (0, as jsontok_parse_trusted). Below 0: an error, as
 * jsontok_parse_trusted. */
int jsontok_begin_trusted(struct jsontok *t, const char *js, size_t len);
int jsontok_resume(struct jsontok *t, const char *key, size_t klen);
void jsontok_free(struct jsontok *t);

/* Text span of token i including quotes for strings. */
static inline size_t jsontok_text_start(const struct jsontok *t, int i)
{
    return (size_t)t->tok[i].start - (t->tok[i].type == JSMN_STRING);
}
static inline size_t jsontok_text_end(const struct jsontok *t, int i)
{
    return (size_t)t->tok[i].end + (t->tok[i].type == JSMN_STRING);
}

/* True when string token i (a key, say) equals key[0..klen) after unescaping. */
int jsontok_str_eq(const struct jsontok *t, int i, const char *key, size_t klen);

/* In object token obj, the value token of member `key`, or -1. */
int jsontok_find(const struct jsontok *t, int obj, const char *key, size_t klen);

/* A number of the usual kind, s[0..n): an optional minus, at most 18 digits, and a fraction of
 * at most 15 digits in all without an exponent. 1 with *i set when it has no fraction, 2 with *d
 * set when it has one (rounded exactly as strtod would: the digits and the power of ten are both
 * exact doubles, divided once), -1 for any other text (for strtod or lua_stringtonumber). */
int jsontok_simple_number(const char *s, size_t n, int64_t *i, double *d);

/* Appends the unescaped UTF-8 of a JSON string body s[0..len) to out. Returns 0 or -ENOMEM.
 * The body must have passed jsontok_parse (escapes are well formed). */
int jsontok_unescape(const char *s, size_t len, struct buf *out);

#endif
