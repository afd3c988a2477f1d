#include "eview.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "jsonw.h"

void eview_init(struct eview *v)
{
    memset(v, 0, sizeof(*v));
}

void eview_free(struct eview *v)
{
    jsontok_free(&v->tok);
    jsontok_free(&v->etok);
    buf_free(&v->arena);
    free(v->edits);
    memset(v, 0, sizeof(*v));
}

void eview_reset(struct eview *v, const char *js, size_t len)
{
    v->js = js;
    v->len = len;
    v->parsed = 0;
    eview_clear_edits(v);
}

void eview_clear_edits(struct eview *v)
{
    v->nedits = 0;
    buf_reset(&v->arena);
}

int eview_edited(const struct eview *v)
{
    return v->nedits > 0;
}

int eview_parse(struct eview *v)
{
    if (v->parsed == 0) {
        /* Events in the pipeline were validated by the collector. */
        int rc = jsontok_parse_trusted(&v->tok, v->js, v->len);
        v->parsed = rc == 0 && v->tok.tok[0].type == JSMN_OBJECT ? 1 : -1;
    }
    return v->parsed == 1 ? 0 : -EINVAL;
}

/* ---- paths ---- */

static size_t seg_len(const char *p, size_t len)
{
    const char *z = memchr(p, '\0', len);
    return z ? (size_t)(z - p) : len;
}

/* 1 when a is a proper prefix of b at a segment boundary. */
static int path_under(const char *a, size_t alen, const char *b, size_t blen)
{
    return alen < blen && b[alen] == '\0' && memcmp(a, b, alen) == 0;
}

static int path_eq(const char *a, size_t alen, const char *b, size_t blen)
{
    return alen == blen && memcmp(a, b, alen) == 0;
}

/* Walks segments from token `at`; returns the token index or -1. */
static int walk(const struct jsontok *t, int at, const char *path, size_t plen)
{
    size_t off = 0;
    while (at >= 0 && off < plen) {
        size_t n = seg_len(path + off, plen - off);
        const jsmntok_t *k = &t->tok[at];
        if (k->type == JSMN_OBJECT) {
            at = jsontok_find(t, at, path + off, n);
        } else if (k->type == JSMN_ARRAY) {
            char num[24];
            if (n == 0 || n >= sizeof(num))
                return -1;
            memcpy(num, path + off, n);
            num[n] = '\0';
            char *end;
            long idx = strtol(num, &end, 10);
            if (*end || idx < 1 || idx > k->size)
                return -1;
            at = at + 1;
            for (long i = 1; i < idx; i++)
                at = t->next[at];
        } else {
            return -1;
        }
        off += n + 1;
    }
    return at;
}

static void val_from_token(const struct jsontok *t, int i, struct ev_val *out)
{
    const jsmntok_t *k = &t->tok[i];
    out->text = t->js + k->start;
    out->len = (size_t)(k->end - k->start);
    out->escaped = 0;
    out->size = k->size;
    switch (k->type) {
    case JSMN_OBJECT:
        out->kind = EVK_OBJECT;
        break;
    case JSMN_ARRAY:
        out->kind = EVK_ARRAY;
        break;
    case JSMN_STRING:
        out->kind = EVK_STRING;
        out->escaped = memchr(out->text, '\\', out->len) != NULL;
        break;
    default:
        out->kind = out->text[0] == 'n'                            ? EVK_NULL
                    : (out->text[0] == 't' || out->text[0] == 'f') ? EVK_BOOL
                                                                   : EVK_NUMBER;
    }
}

static void missing(struct ev_val *out)
{
    memset(out, 0, sizeof(*out));
    out->kind = EVK_MISSING;
}

/* Reads path below an edit's value: the value is tokenized into etok for the walk. */
static int get_in_edit(struct eview *v, const struct eview_edit *e, const char *rest, size_t rlen,
                       struct ev_val *out)
{
    int rc = jsontok_parse(&v->etok, v->arena.data + e->val_off, e->val_len);
    if (rc)
        return rc;
    int at = walk(&v->etok, 0, rest, rlen);
    if (at < 0)
        missing(out);
    else
        val_from_token(&v->etok, at, out);
    return 0;
}

int eview_get(struct eview *v, const char *path, size_t plen, struct ev_val *out)
{
    int rc = eview_parse(v);
    if (rc)
        return rc;
    /* The most recent edit that touches the path decides. */
    for (int i = v->nedits - 1; i >= 0; i--) {
        const struct eview_edit *e = &v->edits[i];
        const char *ep = v->arena.data + e->path_off;
        if (path_eq(ep, e->path_len, path, plen) || path_under(ep, e->path_len, path, plen)) {
            if (e->del) {
                missing(out);
                return 0;
            }
            if (e->path_len == plen)
                return get_in_edit(v, e, "", 0, out);
            return get_in_edit(v, e, path + e->path_len + 1, plen - e->path_len - 1, out);
        }
        if (plen == 0 || path_under(path, plen, ep, e->path_len)) {
            /* Something below was edited: the value is a container whose size we no longer
             * know without rebuilding it. */
            int at = walk(&v->tok, 0, path, plen);
            out->kind = at >= 0 && v->tok.tok[at].type == JSMN_ARRAY ? EVK_ARRAY : EVK_OBJECT;
            out->text = NULL;
            out->len = 0;
            out->escaped = 0;
            out->size = -1;
            return 0;
        }
    }
    int at = walk(&v->tok, 0, path, plen);
    if (at < 0)
        missing(out);
    else
        val_from_token(&v->tok, at, out);
    return 0;
}

static int add_edit(struct eview *v, const char *path, size_t plen, const char *json, size_t jlen,
                    int del)
{
    if (v->nedits == v->cap) {
        int cap = v->cap ? v->cap * 2 : 16;
        struct eview_edit *e = realloc(v->edits, (size_t)cap * sizeof(*e));
        if (!e)
            return -ENOMEM;
        v->edits = e;
        v->cap = cap;
    }
    struct eview_edit *e = &v->edits[v->nedits];
    e->path_off = v->arena.len;
    e->path_len = plen;
    if (buf_append(&v->arena, path, plen))
        return -ENOMEM;
    e->val_off = v->arena.len;
    e->val_len = jlen;
    if (jlen && buf_append(&v->arena, json, jlen))
        return -ENOMEM;
    e->del = del;
    v->nedits++;
    return 0;
}

int eview_set(struct eview *v, const char *path, size_t plen, const char *json, size_t jlen)
{
    return add_edit(v, path, plen, json, jlen, 0);
}

int eview_del(struct eview *v, const char *path, size_t plen)
{
    return add_edit(v, path, plen, NULL, 0, 1);
}

/* ---- keys ---- */

struct keyset {
    struct buf names; /* NUL-separated */
    void (*fn)(void *ud, const char *key, size_t klen);
    void *ud;
};

static int keyset_has(const struct keyset *ks, const char *k, size_t n)
{
    for (size_t off = 0; off < ks->names.len;) {
        size_t l = strlen(ks->names.data + off);
        if (l == n && memcmp(ks->names.data + off, k, n) == 0)
            return 1;
        off += l + 1;
    }
    return 0;
}

static void keyset_emit(struct eview *v, struct keyset *ks, const char *path, size_t plen,
                        const char *k, size_t n)
{
    if (keyset_has(ks, k, n))
        return;
    buf_append(&ks->names, k, n);
    buf_putc(&ks->names, '\0');
    /* A key whose latest edit is a delete is gone. */
    struct buf full = {0};
    buf_append(&full, path, plen);
    if (plen)
        buf_putc(&full, '\0');
    buf_append(&full, k, n);
    struct ev_val val;
    if (eview_get(v, full.data, full.len, &val) == 0 && val.kind != EVK_MISSING)
        ks->fn(ks->ud, k, n);
    buf_free(&full);
}

int eview_keys(struct eview *v, const char *path, size_t plen,
               void (*fn)(void *ud, const char *key, size_t klen), void *ud)
{
    if (eview_parse(v))
        return -EINVAL;
    struct keyset ks = {.fn = fn, .ud = ud};
    /* Keys of the original object, unless an edit replaced the whole object. */
    int replaced = 0;
    for (int i = 0; i < v->nedits; i++) {
        const char *ep = v->arena.data + v->edits[i].path_off;
        size_t el = v->edits[i].path_len;
        if (path_eq(ep, el, path, plen) || path_under(ep, el, path, plen))
            replaced = i + 1;
    }
    if (!replaced) {
        int at = walk(&v->tok, 0, path, plen);
        if (at >= 0 && v->tok.tok[at].type == JSMN_OBJECT) {
            int k = at + 1;
            struct buf name = {0};
            for (int m = 0; m < v->tok.tok[at].size; m++, k = v->tok.next[k]) {
                const jsmntok_t *kt = &v->tok.tok[k];
                buf_reset(&name);
                jsontok_unescape(v->js + kt->start, (size_t)(kt->end - kt->start), &name);
                keyset_emit(v, &ks, path, plen, name.data ? name.data : "", name.len);
            }
            buf_free(&name);
        }
    } else {
        const struct eview_edit *e = &v->edits[replaced - 1];
        if (!e->del && jsontok_parse(&v->etok, v->arena.data + e->val_off, e->val_len) == 0) {
            size_t rest = e->path_len == plen ? 0 : plen - e->path_len - 1;
            int at = walk(&v->etok, 0, path + (plen - rest), rest);
            if (at >= 0 && v->etok.tok[at].type == JSMN_OBJECT) {
                /* Copy the names out first: eview_get below reuses etok. */
                struct buf names = {0};
                int k = at + 1;
                for (int m = 0; m < v->etok.tok[at].size; m++, k = v->etok.next[k]) {
                    const jsmntok_t *kt = &v->etok.tok[k];
                    jsontok_unescape(v->etok.js + kt->start, (size_t)(kt->end - kt->start), &names);
                    buf_putc(&names, '\0');
                }
                for (size_t off = 0; off < names.len;) {
                    size_t l = strlen(names.data + off);
                    keyset_emit(v, &ks, path, plen, names.data + off, l);
                    off += l + 1;
                }
                buf_free(&names);
            }
        }
    }
    /* Keys added by edits below the path, in the order they were made. */
    for (int i = 0; i < v->nedits; i++) {
        const struct eview_edit *e = &v->edits[i];
        const char *ep = v->arena.data + e->path_off;
        if (!path_under(path, plen, ep, e->path_len) && !(plen == 0 && e->path_len))
            continue;
        const char *child = plen ? ep + plen + 1 : ep;
        size_t cl = seg_len(child, e->path_len - (size_t)(child - ep));
        keyset_emit(v, &ks, path, plen, child, cl);
    }
    buf_free(&ks.names);
    return 0;
}

/* ---- serialization ---- */

/* Applies one edit to a jansson value (rest: the path below the top-level member). Returns the
 * new value (the reference passes to the caller), NULL for "absent". */
static json_t *apply_edit(json_t *root, const char *rest, size_t rlen, const char *val, size_t vlen,
                          int del)
{
    if (rlen == 0) {
        json_decref(root);
        return del ? NULL : json_loadb(val, vlen, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    }
    if (!json_is_object(root) && !json_is_array(root)) {
        json_decref(root);
        root = json_object();
    }
    json_t *cur = root;
    size_t off = 0;
    for (;;) {
        size_t n = seg_len(rest + off, rlen - off);
        char *seg = strndup(rest + off, n);
        int last = off + n >= rlen;
        if (json_is_array(cur)) {
            char *end;
            long idx = strtol(seg, &end, 10) - 1;
            if (*end || idx < 0 || (size_t)idx > json_array_size(cur)) {
                free(seg);
                break;
            }
            if (last) {
                json_t *nv = del ? NULL : json_loadb(val, vlen, JSON_DECODE_ANY, NULL);
                if (del)
                    json_array_remove(cur, (size_t)idx);
                else if ((size_t)idx == json_array_size(cur))
                    json_array_append_new(cur, nv);
                else
                    json_array_set_new(cur, (size_t)idx, nv);
                free(seg);
                break;
            }
            json_t *child = json_array_get(cur, (size_t)idx);
            if (!json_is_object(child) && !json_is_array(child)) {
                child = json_object();
                if ((size_t)idx == json_array_size(cur))
                    json_array_append_new(cur, child);
                else
                    json_array_set_new(cur, (size_t)idx, child);
            }
            cur = child;
        } else {
            if (last) {
                if (del)
                    json_object_del(cur, seg);
                else
                    json_object_set_new(cur, seg, json_loadb(val, vlen, JSON_DECODE_ANY, NULL));
                free(seg);
                break;
            }
            json_t *child = json_object_get(cur, seg);
            if (!json_is_object(child) && !json_is_array(child)) {
                child = json_object();
                json_object_set_new(cur, seg, child);
            }
            cur = child;
        }
        free(seg);
        off += n + 1;
    }
    return root;
}

/* Writes `"key":value` for top-level member `name` with every edit under it applied in order.
 * orig: the original value's token, or -1 when the member is new. */
static int emit_member(struct eview *v, const char *name, size_t nlen, int orig, struct buf *out,
                       int *first)
{
    int exact_last = -1, deeper = 0;
    for (int i = 0; i < v->nedits; i++) {
        const struct eview_edit *e = &v->edits[i];
        const char *ep = v->arena.data + e->path_off;
        if (path_eq(ep, e->path_len, name, nlen))
            exact_last = i, deeper = 0;
        else if (path_under(name, nlen, ep, e->path_len))
            deeper = 1;
    }
    const char *vt = NULL;
    size_t vl = 0;
    json_t *built = NULL;
    if (!deeper) {
        if (exact_last >= 0) {
            if (v->edits[exact_last].del)
                return 0;
            vt = v->arena.data + v->edits[exact_last].val_off;
            vl = v->edits[exact_last].val_len;
        } else if (orig >= 0) {
            vt = v->js + jsontok_text_start(&v->tok, orig);
            vl = jsontok_text_end(&v->tok, orig) - jsontok_text_start(&v->tok, orig);
        } else {
            return 0;
        }
    } else {
        /* Rare: rebuild this one member from its original value and the edits under it. */
        if (orig >= 0) {
            size_t s = jsontok_text_start(&v->tok, orig);
            built =
                json_loadb(v->js + s, jsontok_text_end(&v->tok, orig) - s, JSON_DECODE_ANY, NULL);
        }
        for (int i = 0; i < v->nedits; i++) {
            const struct eview_edit *e = &v->edits[i];
            const char *ep = v->arena.data + e->path_off;
            if (path_eq(ep, e->path_len, name, nlen))
                built = apply_edit(built, "", 0, v->arena.data + e->val_off, e->val_len, e->del);
            else if (path_under(name, nlen, ep, e->path_len))
                built = apply_edit(built, ep + nlen + 1, e->path_len - nlen - 1,
                                   v->arena.data + e->val_off, e->val_len, e->del);
        }
        if (!built)
            return 0;
    }
    if (!*first)
        buf_putc(out, ',');
    *first = 0;
    jsonw_string(out, name, nlen);
    buf_putc(out, ':');
    if (built) {
        char *s = json_dumps(built, JSON_COMPACT | JSON_ENCODE_ANY);
        json_decref(built);
        if (!s)
            return -ENOMEM;
        int rc = buf_puts(out, s);
        free(s);
        return rc;
    }
    return jsonw_raw_compact(out, vt, vl);
}

/* True when an edit's path starts with the segment name[0..n). */
static int touched(const struct eview *v, const char *name, size_t n)
{
    for (int i = 0; i < v->nedits; i++) {
        const char *ep = v->arena.data + v->edits[i].path_off;
        size_t el = v->edits[i].path_len;
        if (el >= n && memcmp(ep, name, n) == 0 && (el == n || ep[n] == '\0'))
            return 1;
    }
    return 0;
}

int eview_serialize(struct eview *v, struct buf *out)
{
    if (v->nedits == 0)
        return buf_append(out, v->js, v->len);
    if (eview_parse(v))
        return -EINVAL;
    const struct jsontok *t = &v->tok;
    size_t start = out->len;
    int first = 1, rc = 0;
    struct buf name = {0};
    buf_putc(out, '{');
    int k = 1;
    for (int m = 0; m < t->tok[0].size && !rc; m++, k = t->next[k]) {
        const jsmntok_t *kt = &t->tok[k];
        const char *raw = v->js + kt->start;
        size_t rlen = (size_t)(kt->end - kt->start);
        if (!memchr(raw, '\\', rlen) && !touched(v, raw, rlen)) {
            /* Untouched member: one copy of its text, key and value together. */
            size_t s = jsontok_text_start(t, k), e = jsontok_text_end(t, k + 1);
            if (!first)
                buf_putc(out, ',');
            first = 0;
            rc = jsonw_raw_compact(out, v->js + s, e - s);
            continue;
        }
        buf_reset(&name);
        jsontok_unescape(raw, rlen, &name);
        rc = emit_member(v, name.data ? name.data : "", name.len, k + 1, out, &first);
    }
    /* New top-level members, in the order of their first edit. */
    for (int i = 0; i < v->nedits && !rc; i++) {
        const char *ep = v->arena.data + v->edits[i].path_off;
        size_t n = seg_len(ep, v->edits[i].path_len);
        if (jsontok_find(t, 0, ep, n) >= 0)
            continue;
        int dup = 0;
        for (int j = 0; j < i && !dup; j++) {
            const char *pp = v->arena.data + v->edits[j].path_off;
            dup = seg_len(pp, v->edits[j].path_len) == n && memcmp(pp, ep, n) == 0;
        }
        if (!dup)
            rc = emit_member(v, ep, n, -1, out, &first);
    }
    buf_free(&name);
    if (!rc)
        rc = buf_putc(out, '}');
    if (rc)
        out->len = start;
    return rc;
}
