#include "collector/normalize.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/base64.h"
#include "core/hash.h"
#include "core/jsonw.h"
#include "core/utf8.h"

/* Fields the normalizer places itself; a source member with one of these names is replaced. */
enum canon_field { F_TIMESTAMP, F_KIND, F_SOURCE, F_RECEIVED_AT, F_COUNT };
static const char *const canon_names[F_COUNT] = {"timestamp", "kind", "source", "received_at"};
static const size_t canon_lens[F_COUNT] = {9, 4, 6, 11};

#define DEAD_RAW_MAX 4096 /* bytes of a rejected record kept in the dead letter */

void recv_time_now(struct recv_time *rt)
{
    rt->ns = time_now_ns();
    time_format_rfc3339(rt->ns, rt->text);
}

void normalizer_init(struct normalizer *n, const char *source, const struct cfg_strmap *aliases,
                     const char *partition_key)
{
    memset(n, 0, sizeof(*n));
    n->source = source;
    n->aliases = aliases;
    n->key = partition_key ? partition_key : "";
    for (int a = 0; aliases && a < aliases->n; a++) {
        const unsigned char *k = (const unsigned char *)aliases->key[a];
        size_t len = strlen((const char *)k);
        n->alias_first[k[0] >> 6] |= 1ULL << (k[0] & 63);
        n->alias_lens |= 1ULL << (len < 63 ? len : 63);
    }
}

void normalizer_free(struct normalizer *n)
{
    jsontok_free(&n->tok);
    buf_free(&n->scratch);
    free(n->canon);
    free(n->escaped);
    free(n->field);
    n->canon = NULL;
    n->escaped = NULL;
    n->field = NULL;
}

int normalize_dead_letter(struct buf *out, const char *source, const struct recv_time *rt,
                          const char *error, const char *raw, size_t rawlen)
{
    size_t keep = rawlen > DEAD_RAW_MAX ? DEAD_RAW_MAX : rawlen;
    int rc = buf_puts(out, "{\"timestamp\":\"");
    rc |= buf_append(out, rt->text, TIME_RFC3339_LEN);
    rc |= buf_puts(out, "\",\"kind\":\"event\",\"source\":");
    rc |= jsonw_string(out, source, strlen(source));
    rc |= buf_puts(out, ",\"error\":");
    rc |= jsonw_string(out, error, strlen(error));
    rc |= buf_puts(out, ",\"raw\":");
    rc |= jsonw_string(out, raw, keep);
    if (utf8_check(raw, keep) != keep) {
        rc |= buf_puts(out, ",\"raw_base64\":");
        rc |= buf_putc(out, '"') | base64_append(out, raw, keep) | buf_putc(out, '"');
    }
    if (keep < rawlen)
        rc |= buf_printf(out, ",\"raw_bytes\":%zu", rawlen);
    rc |= buf_puts(out, ",\"received_at\":\"");
    rc |= buf_append(out, rt->text, TIME_RFC3339_LEN);
    rc |= buf_puts(out, "\"}");
    return rc ? -ENOMEM : 0;
}

int normalize_timestamp(const char *val, size_t len, int is_string, struct buf *out)
{
    int64_t ns;
    if (is_string && time_is_canonical(val, len)) {
        buf_putc(out, '"');
        buf_append(out, val, len);
        return buf_putc(out, '"');
    }
    /* A string may hold a date or an epoch number ("1700000000.5"); a number is an epoch. */
    if ((!is_string || time_parse_rfc3339(val, len, &ns) != 0) &&
        time_from_epoch_text(val, len, &ns) != 0)
        return -EINVAL;
    char ts[TIME_RFC3339_LEN + 1];
    time_format_rfc3339(ns, ts);
    buf_putc(out, '"');
    buf_append(out, ts, TIME_RFC3339_LEN);
    return buf_putc(out, '"');
}

/* The canonical name of member key token k: its alias target, or its own text unescaped
 * (so "sour\u0063e" is recognized as source). Valid until the next call. */
static void member_name(struct normalizer *n, int k, int alias, int escaped, const char **name,
                        size_t *len)
{
    if (alias >= 0) {
        *name = n->aliases->val[alias];
        *len = strlen(*name);
        return;
    }
    const char *raw = n->tok.js + n->tok.tok[k].start;
    size_t rlen = (size_t)(n->tok.tok[k].end - n->tok.tok[k].start);
    if (!escaped) {
        *name = raw;
        *len = rlen;
        return;
    }
    buf_reset(&n->scratch);
    jsontok_unescape(raw, rlen, &n->scratch);
    *name = n->scratch.data ? n->scratch.data : "";
    *len = n->scratch.len;
}

uint64_t normalize_value_hash(const char *text, size_t len, struct buf *scratch)
{
    if (len >= 2 && text[0] == '"') {
        text++;
        len -= 2;
        if (memchr(text, '\\', len)) {
            buf_reset(scratch);
            jsontok_unescape(text, len, scratch);
            return hash64(scratch->data ? scratch->data : "", scratch->len);
        }
    }
    return hash64(text, len);
}

/* Member key token k's alias, if any. Keys without escapes (nearly all) are compared as
 * written, first byte first, without a length or escape scan per alias: this runs for every
 * alias and member of every event. */
static int find_alias(const struct normalizer *n, int k, int escaped)
{
    const char *raw = n->tok.js + n->tok.tok[k].start;
    size_t rlen = (size_t)(n->tok.tok[k].end - n->tok.tok[k].start);
    unsigned char b0 = rlen ? (unsigned char)raw[0] : 0; /* as the bit set has an empty key */
    if (!escaped && (!(n->alias_lens >> (rlen < 63 ? rlen : 63) & 1) ||
                     !(n->alias_first[b0 >> 6] >> (b0 & 63) & 1)))
        return -1; /* no alias has this length or first byte: most members */
    for (int a = 0; a < n->aliases->n; a++) {
        const char *src = n->aliases->key[a];
        if (escaped
                ? jsontok_str_eq(&n->tok, k, src, strlen(src))
                : (!rlen || src[0] == raw[0]) && strncmp(src, raw, rlen) == 0 && src[rlen] == '\0')
            return a;
    }
    return -1;
}

static int canon_index(const char *name, size_t len)
{
    for (int f = 0; f < F_COUNT; f++) {
        if (canon_lens[f] == len && canon_names[f][0] == name[0] &&
            memcmp(canon_names[f], name, len) == 0)
            return f;
    }
    return -1;
}

static int is_hex_id(const char *name, size_t len)
{
    return (len == 8 && memcmp(name, "trace_id", 8) == 0) ||
           (len == 7 && memcmp(name, "span_id", 7) == 0) ||
           (len == 14 && memcmp(name, "parent_span_id", 14) == 0);
}

/* 'A'-'F' to 'a'-'f', eight ASCII bytes at a time: adding 0x3f (0x39) to a byte below 0x80
 * sets its top bit from 'A' ('G') on, without a carry into the next byte. */
static void lower_hex(char *s, size_t n)
{
    const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, s + i, 8);
        if (w & highs)
            break;
        uint64_t af = (w + ones * (0x80 - 'A')) & ~(w + ones * (0x80 - 'G')) & highs;
        w |= af >> 2;
        memcpy(s + i, &w, 8);
    }
    for (; i < n; i++)
        if (s[i] >= 'A' && s[i] <= 'F')
            s[i] = (char)(s[i] + 32);
}

/* Copies a value, lowercasing hex ids so that "ABC" and "abc" are the same trace. */
static void put_value(struct buf *out, const struct jsontok *t, int v, int lower)
{
    size_t s = jsontok_text_start(t, v), e = jsontok_text_end(t, v);
    size_t at = out->len;
    if (t->tok[v].type == JSMN_STRING || t->tok[v].type == JSMN_PRIMITIVE)
        buf_append(out, t->js + s, e - s); /* validated: no raw newline inside */
    else
        jsonw_raw_compact(out, t->js + s, e - s);
    if (lower && t->tok[v].type == JSMN_STRING)
        lower_hex(out->data + at, out->len - at);
}

/* First pass: which member supplies each canonical field, and each member's alias. An alias
 * applies only when the source does not also carry the canonical name itself. */
static int classify(struct normalizer *n, int obj, int present[F_COUNT])
{
    const struct jsontok *t = &n->tok;
    int members = t->tok[obj].size;
    if (members > n->canon_cap) {
        int *c = realloc(n->canon, (size_t)members * sizeof(int));
        if (!c)
            return -ENOMEM;
        n->canon = c;
        unsigned char *e = realloc(n->escaped, (size_t)members);
        if (!e)
            return -ENOMEM;
        n->escaped = e;
        signed char *f = realloc(n->field, (size_t)members);
        if (!f)
            return -ENOMEM;
        n->field = f;
        n->canon_cap = members;
    }
    for (int f = 0; f < F_COUNT; f++)
        present[f] = -1;
    int k = obj + 1;
    for (int m = 0; m < members; m++, k = t->next[k]) {
        n->escaped[m] = t->escapes && memchr(t->js + t->tok[k].start, '\\',
                                             (size_t)(t->tok[k].end - t->tok[k].start)) != NULL;
        n->canon[m] = n->aliases && n->aliases->n ? find_alias(n, k, n->escaped[m]) : -1;
        if (n->canon[m] >= 0) {
            /* Not when the target is there already, natively or through an earlier alias. */
            const char *target = n->aliases->val[n->canon[m]];
            int taken = jsontok_find(t, obj, target, strlen(target)) >= 0;
            for (int e = 0; e < m && !taken; e++)
                taken = n->canon[e] >= 0 && !strcmp(n->aliases->val[n->canon[e]], target);
            if (taken)
                n->canon[m] = -1;
        }
        const char *name;
        size_t len;
        member_name(n, k, n->canon[m], n->escaped[m], &name, &len);
        int f = canon_index(name, len);
        n->field[m] = (signed char)f;
        if (f >= 0 && present[f] < 0)
            present[f] = k;
    }
    return 0;
}

/* Member key token k is written `"key":value` with nothing between, and its value is what
 * put_value() would write: then the member's text is its output. */
static int verbatim(const struct jsontok *t, int k)
{
    const jsmntok_t *v = &t->tok[k + 1];
    size_t s = jsontok_text_start(t, k + 1), e = jsontok_text_end(t, k + 1);
    if (s != (size_t)t->tok[k].end + 2)
        return 0;
    return v->type == JSMN_STRING || v->type == JSMN_PRIMITIVE ||
           (!memchr(t->js + s, '\n', e - s) && !memchr(t->js + s, '\r', e - s));
}

/* Copies the members in t->js[*run..*run_end), if any, with the comma before them. */
static void flush_run(struct buf *out, const struct jsontok *t, size_t *run, size_t *run_end)
{
    if (!*run_end)
        return;
    buf_putc(out, ',');
    buf_append(out, t->js + *run, *run_end - *run);
    *run_end = 0;
}

int normalize_tokens(struct normalizer *n, int obj, const struct recv_time *rt, struct buf *out,
                     uint64_t *hash, int *has_hash)
{
    const struct jsontok *t = &n->tok;
    int present[F_COUNT];
    size_t start = out->len;
    *has_hash = 0;
    if (classify(n, obj, present))
        return -ENOMEM;
    size_t keylen = strlen(n->key);

    buf_append(out, "{\"timestamp\":", 13);
    int ts_ok = -1;
    if (present[F_TIMESTAMP] >= 0) {
        int v = present[F_TIMESTAMP] + 1;
        ts_ok =
            normalize_timestamp(t->js + t->tok[v].start, (size_t)(t->tok[v].end - t->tok[v].start),
                                t->tok[v].type == JSMN_STRING, out);
    }
    if (ts_ok != 0) {
        buf_putc(out, '"');
        buf_append(out, rt->text, TIME_RFC3339_LEN);
        buf_putc(out, '"');
    }
    buf_append(out, ",\"kind\":", 8);
    if (present[F_KIND] >= 0)
        put_value(out, t, present[F_KIND] + 1, 0);
    else
        buf_append(out, "\"log\"", 5);
    buf_append(out, ",\"source\":", 10);
    jsonw_string(out, n->source, strlen(n->source));
    int wrote_raw = ts_ok != 0 && present[F_TIMESTAMP] >= 0;
    if (wrote_raw) {
        /* Keep what the source sent when it is not a time we can read. */
        buf_append(out, ",\"timestamp_raw\":", 17);
        put_value(out, t, present[F_TIMESTAMP] + 1, 0);
    }

    int k = obj + 1;
    size_t run = 0, run_end = 0; /* members copied as they are, in a row: one copy */
    for (int m = 0; m < t->tok[obj].size; m++, k = t->next[k]) {
        const char *name;
        size_t len;
        if (n->field[m] >= 0) {
            flush_run(out, t, &run, &run_end);
            continue;
        }
        member_name(n, k, n->canon[m], n->escaped[m], &name, &len);
        if (wrote_raw && len == 13 && !memcmp(name, "timestamp_raw", 13)) {
            flush_run(out, t, &run, &run_end);
            continue; /* ours, from the unreadable timestamp, replaces the source's */
        }
        int is_key = keylen && len == keylen && memcmp(name, n->key, len) == 0;
        if (n->canon[m] < 0 && !is_key && !is_hex_id(name, len) && verbatim(t, k)) {
            size_t ks = (size_t)t->tok[k].start - 1, ve = jsontok_text_end(t, k + 1);
            if (run_end && ks == run_end + 1 && t->js[run_end] == ',') {
                run_end = ve;
                continue;
            }
            flush_run(out, t, &run, &run_end);
            run = ks;
            run_end = ve;
            continue;
        }
        flush_run(out, t, &run, &run_end);
        buf_putc(out, ',');
        if (n->canon[m] >= 0)
            jsonw_string(out, name, len);
        else
            buf_append(out, t->js + t->tok[k].start - 1,
                       (size_t)(t->tok[k].end - t->tok[k].start) + 2);
        buf_putc(out, ':');
        size_t vat = out->len;
        put_value(out, t, k + 1, is_hex_id(name, len));
        if (is_key) {
            *hash = normalize_value_hash(out->data + vat, out->len - vat, &n->scratch);
            *has_hash = 1;
        }
    }
    flush_run(out, t, &run, &run_end);
    buf_append(out, ",\"received_at\":\"", 16);
    buf_append(out, rt->text, TIME_RFC3339_LEN);
    if (buf_append(out, "\"}", 2)) {
        out->len = start;
        return -ENOMEM;
    }
    return 0;
}

int normalize_json(struct normalizer *n, const char *json, size_t len, const struct recv_time *rt,
                   struct buf *out, uint64_t *hash, int *has_hash, const char **err)
{
    int rc = jsontok_parse(&n->tok, json, len);
    if (rc == -ENOMEM) {
        *err = "out of memory";
        return -EINVAL;
    }
    if (rc) {
        *err = n->tok.err;
        return -EINVAL;
    }
    if (n->tok.tok[0].type != JSMN_OBJECT) {
        *err = "not a JSON object";
        return -EINVAL;
    }
    rc = normalize_tokens(n, 0, rt, out, hash, has_hash);
    if (rc)
        *err = "out of memory";
    return rc ? -EINVAL : 0;
}
