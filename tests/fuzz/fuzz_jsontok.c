/* The strict JSON tokenizer (core/jsontok.h) against jansson as the reference: both must
 * accept and refuse the same texts, and what both accept must have the same shape (types,
 * sizes, keys and string contents after unescaping, numbers, subtree links). Also: the
 * trusted tokenization of an accepted text gives the same tokens, and jsontok_find finds every
 * key of an object without duplicates.
 *
 * Differences that are jansson's limits, not RFC 8259, are allowed one way only (jsontok
 * accepts, jansson refuses): numbers past a double or int64 ("numeric overflow"), nesting past
 * JSON_PARSER_MAX_DEPTH, a \u0000 escape in a key, and lone UTF-16 surrogate escapes, which
 * jsontok_unescape documents turning into U+FFFD. And jansson reads a text only up to a NUL
 * byte, so for a text holding one only jsontok's refusal is checked. */
#include <math.h>

#include "fuzz.h"
#include "core/jsontok.h"

static int jansson_limit(const json_error_t *e)
{
    enum json_error_code code = json_error_code(e);
    return code == json_error_numeric_overflow || code == json_error_stack_overflow ||
           code == json_error_null_byte_in_key || strncmp(e->text, "invalid Unicode", 15) == 0;
}

static void same_string(const struct jsontok *t, int i, const char *js, size_t jlen,
                        const char *what)
{
    struct buf b = {0};
    FUZZ_CHECK(jsontok_unescape(t->js + t->tok[i].start, (size_t)(t->tok[i].end - t->tok[i].start),
                                &b) == 0,
               "jsontok_unescape failed");
    FUZZ_CHECK(b.len == jlen && (jlen == 0 || memcmp(b.data, js, jlen) == 0),
               "%s at %d: jsontok unescapes %zu bytes \"%.*s\", jansson has %zu \"%.*s\"", what,
               t->tok[i].start, b.len, (int)b.len, b.data ? b.data : "", jlen, (int)jlen, js);
    buf_free(&b);
}

static void same_number(const struct jsontok *t, int i, const json_t *j)
{
    const char *s = t->js + t->tok[i].start;
    int n = t->tok[i].end - t->tok[i].start;
    FUZZ_CHECK(json_is_number(j), "token at %d is %.*s, jansson has type %d", t->tok[i].start, n, s,
               json_typeof(j));
    char text[64];
    if (n >= (int)sizeof(text))
        return;
    memcpy(text, s, (size_t)n);
    text[n] = '\0';
    double want = strtod(text, NULL), got = json_number_value(j);
    FUZZ_CHECK(got == want || (isnan(got) && isnan(want)), "number %s: jansson reads %.17g", text,
               got);
}

/* Token i and jansson's value j are the same JSON value. */
static void same_value(const struct jsontok *t, int i, const json_t *j)
{
    const jsmntok_t *k = &t->tok[i];
    FUZZ_CHECK(i < t->ntok && t->next[i] > i && t->next[i] <= t->ntok,
               "token %d: next %d out of range (%d tokens)", i, t->next[i], t->ntok);
    switch (k->type) {
    case JSMN_STRING:
        FUZZ_CHECK(json_is_string(j), "string at %d, jansson has type %d", k->start,
                   json_typeof(j));
        same_string(t, i, json_string_value(j), json_string_length(j), "string");
        FUZZ_CHECK(t->next[i] == i + 1, "string %d: next %d", i, t->next[i]);
        return;
    case JSMN_PRIMITIVE: {
        char c = t->js[k->start];
        FUZZ_CHECK(t->next[i] == i + 1, "primitive %d: next %d", i, t->next[i]);
        if (c == 't' || c == 'f' || c == 'n') {
            int want = c == 't' ? JSON_TRUE : c == 'f' ? JSON_FALSE : JSON_NULL;
            FUZZ_CHECK((int)json_typeof(j) == want, "literal at %d, jansson has type %d", k->start,
                       json_typeof(j));
            return;
        }
        same_number(t, i, j);
        return;
    }
    case JSMN_ARRAY: {
        FUZZ_CHECK(json_is_array(j) && json_array_size(j) == (size_t)k->size,
                   "array at %d of %d elements, jansson has type %d size %zu", k->start, k->size,
                   json_typeof(j), json_array_size(j));
        int c = i + 1;
        for (int m = 0; m < k->size; m++, c = t->next[c])
            same_value(t, c, json_array_get(j, (size_t)m));
        FUZZ_CHECK(t->next[i] == c, "array %d: next %d, its subtree ends at %d", i, t->next[i], c);
        return;
    }
    case JSMN_OBJECT: {
        FUZZ_CHECK(json_is_object(j), "object at %d, jansson has type %d", k->start,
                   json_typeof(j));
        /* Duplicate keys: jansson keeps the last value; compare only when there are none. */
        int unique = json_object_size(j) == (size_t)k->size;
        int c = i + 1;
        for (int m = 0; m < k->size; m++, c = t->next[c]) {
            FUZZ_CHECK(t->tok[c].type == JSMN_STRING && t->tok[c].size == 1,
                       "member %d of object %d is not a key with one value", m, i);
            FUZZ_CHECK(t->next[c] == t->next[c + 1], "key %d: next %d does not span its value", c,
                       t->next[c]);
            struct buf key = {0};
            jsontok_unescape(t->js + t->tok[c].start, (size_t)(t->tok[c].end - t->tok[c].start),
                             &key);
            json_t *v = json_object_getn(j, key.data ? key.data : "", key.len);
            FUZZ_CHECK(v, "key \"%.*s\" at %d is not in jansson's object", (int)key.len,
                       key.data ? key.data : "", t->tok[c].start);
            if (unique) {
                same_value(t, c + 1, v);
                FUZZ_CHECK(jsontok_find(t, i, key.data ? key.data : "", key.len) == c + 1,
                           "jsontok_find(\"%.*s\") does not find member %d", (int)key.len,
                           key.data ? key.data : "", m);
            }
            buf_free(&key);
        }
        FUZZ_CHECK(t->next[i] == c, "object %d: next %d, its subtree ends at %d", i, t->next[i], c);
        return;
    }
    default:
        fuzz_fail("token %d has type %d", i, k->type);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *js = (const char *)data;
    struct jsontok t = {0};
    int rc = jsontok_parse(&t, js, size);
    json_error_t e;
    json_t *j = json_loadb(js, size, JSON_DECODE_ANY | JSON_ALLOW_NUL, &e);
    if (j && memchr(js, '\0', size)) {
        /* jansson reads up to a NUL byte as if the text ended there: not its answer. */
        FUZZ_CHECK(rc != 0, "jsontok accepts a text holding a NUL byte");
        goto out;
    }
    if (rc == -ENOMEM)
        goto out;
    if (rc == 0 && !j)
        FUZZ_CHECK(jansson_limit(&e), "jsontok accepts what jansson refuses (%s at %d): %.*s",
                   e.text, e.position, (int)size, js);
    if (rc != 0 && j)
        fuzz_fail("jsontok refuses (%s at %zu) what jansson accepts: %.*s", t.err ? t.err : "?",
                  t.err_off, (int)size, js);
    if (rc != 0) {
        FUZZ_CHECK(t.err && t.err_off <= size, "refused without a reason or with offset %zu",
                   t.err_off);
        goto out;
    }
    FUZZ_CHECK(t.ntok > 0 && t.tok[0].parent == -1, "accepted with %d tokens", t.ntok);
    FUZZ_CHECK(t.next[0] == t.ntok, "root subtree ends at %d of %d tokens", t.next[0], t.ntok);
    if (j)
        same_value(&t, 0, j);

    struct jsontok tr = {0};
    FUZZ_CHECK(jsontok_parse_trusted(&tr, js, size) == 0, "trusted tokenizing refuses it");
    FUZZ_CHECK(tr.ntok == t.ntok && memcmp(tr.tok, t.tok, (size_t)t.ntok * sizeof(*t.tok)) == 0 &&
                   memcmp(tr.next, t.next, (size_t)t.ntok * sizeof(int)) == 0,
               "trusted tokenizing gives other tokens");
    jsontok_free(&tr);
out:
    json_decref(j);
    jsontok_free(&t);
    return 0;
}
