#include "core/eview.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/jsonw.h"

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

/* Events in the pipeline were validated by the collector, so they are tokenized as trusted,
 * and only as far as needed: a route that reads `level` and drops the event never tokenizes
 * the members after it. parsed: 0 not begun, 2 in part, 1 whole, -1 not a JSON object. With a
 * key, *at is the value token of the root's member of that name, or -1 when there is none: the
 * member found here is not looked for again (each ev.field read in a script comes this way). */
static int parse_until(struct eview *v, const char *key, size_t klen, int *at)
{
    *at = -1;
    if (v->parsed == 0) {
        v->parsed = jsontok_begin_trusted(&v->tok, v->js, v->len) ? -1 : 2;
    }
    if (v->parsed == 2) {
        if (key && v->tok.ntok && v->tok.tok[0].type == JSMN_OBJECT &&
            (*at = jsontok_find(&v->tok, 0, key, klen)) >= 0)
            return 0; /* tokenized already */
        int rc = jsontok_resume(&v->tok, key, klen);
        if (rc == 1) {
            *at = v->tok.st.found;
            return 0;
        }
        v->parsed = rc == 0 && v->tok.tok[0].type == JSMN_OBJECT ? 1 : -1;
        return v->parsed == 1 ? 0 : -EINVAL;
    }
    if (v->parsed == 1 && key)
        *at = jsontok_find(&v->tok, 0, key, klen);
    return v->parsed >= 1 ? 0 : -EINVAL;
}

int eview_parse(struct eview *v)
{
    int at;
    return parse_until(v, NULL, 0, &at);
}

/* ---- paths ---- */

void eview_dotted_path(char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '.')
            s[i] = '\0';
    }
}

static size_t seg_len(const char *p, size_t len)
{
    const char *z = memchr(p, '\0', len);
    return z ? (size_t)(z - p) : len;
}

/* 1 when a is a proper prefix of b at a segment boundary. */
static int path_under(const char *a, size_t alen, const char *b, size_t blen)
{
    return alen < blen && b[alen] == '\0' && (alen == 0 || memcmp(a, b, alen) == 0);
}

static int path_eq(const char *a, size_t alen, const char *b, size_t blen)
{
    return alen == blen && (alen == 0 || memcmp(a, b, alen) == 0);
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

/* The token at path, whose first segment (n bytes) parse_until found at first. */
static int at_path(const struct eview *v, int first, const char *path, size_t plen, size_t n)
{
    if (plen == 0)
        return 0;
    if (first < 0)
        return -1;
    return n == plen ? first : walk(&v->tok, first, path + n + 1, plen - n - 1);
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
        out->escaped = t->escapes && memchr(out->text, '\\', out->len) != NULL;
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
    size_t n = plen ? seg_len(path, plen) : 0;
    int first, rc = parse_until(v, plen ? path : NULL, n, &first);
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
             * know without rebuilding it; a delete below a scalar changes nothing. */
            int at = at_path(v, first, path, plen, n);
            int container = at >= 0 && (v->tok.tok[at].type == JSMN_OBJECT ||
                                        v->tok.tok[at].type == JSMN_ARRAY);
            if (e->del && !container)
                continue;
            out->kind = at >= 0 && v->tok.tok[at].type == JSMN_ARRAY ? EVK_ARRAY : EVK_OBJECT;
            out->text = NULL;
            out->len = 0;
            out->escaped = 0;
            out->size = -1;
            return 0;
        }
    }
    int at = at_path(v, first, path, plen, n);
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

/* 1 when edit path e lies strictly below path p (every edit lies below the root, plen 0). */
static int below(const char *p, size_t plen, const char *e, size_t elen)
{
    return plen == 0 ? elen > 0 : path_under(p, plen, e, elen);
}

static int touches(const struct eview *v, int from, const char *p, size_t plen)
{
    for (int i = from; i < v->nedits; i++) {
        const char *ep = v->arena.data + v->edits[i].path_off;
        size_t el = v->edits[i].path_len;
        if (path_eq(ep, el, p, plen) || below(p, plen, ep, el))
            return 1;
    }
    return 0;
}

/* touches() for the child p + seg, without building its path (the per-member test). */
static int touches_child(const struct eview *v, int from, const char *p, size_t plen,
                         const char *seg, size_t n)
{
    size_t pre = plen ? plen + 1 : 0;
    for (int i = from; i < v->nedits; i++) {
        const char *ep = v->arena.data + v->edits[i].path_off;
        size_t el = v->edits[i].path_len;
        if (el < pre + n || memcmp(ep + pre, seg, n) != 0 || (el > pre + n && ep[pre + n]))
            continue;
        if (plen && (memcmp(ep, p, plen) != 0 || ep[plen] != '\0'))
            continue;
        return 1;
    }
    return 0;
}

/* child = p + one more segment. */
static void child_path(struct buf *child, const char *p, size_t plen, const char *seg, size_t n)
{
    buf_reset(child);
    buf_append(child, p, plen);
    if (plen)
        buf_putc(child, '\0');
    buf_append(child, seg, n);
}

static int emit_value(struct eview *v, const struct jsontok *t, int tok, const char *p, size_t plen,
                      int from, struct buf *out);

/* Copies JSON text of t onto one line. Text of the event itself is copied as it is unless it
 * has newlines at all (events from the collector never do): one scan per event, not per copy. */
static int copy_text(const struct eview *v, const struct jsontok *t, const char *s, size_t len,
                     struct buf *out)
{
    if (t == &v->tok && !v->multiline)
        return buf_append(out, s, len);
    return jsonw_raw_compact(out, s, len);
}

/* Emits `"key":value` for one member unless the value turns out absent. */
static int emit_member(struct eview *v, const struct jsontok *t, int tok, const char *p,
                       size_t plen, const char *key, size_t klen, const char *rawkey, size_t rawlen,
                       int from, int *first, struct buf *out)
{
    size_t mark = out->len;
    if (!*first)
        buf_putc(out, ',');
    if (rawkey)
        copy_text(v, t, rawkey - 1, rawlen + 2, out); /* the key as it was written */
    else
        jsonw_string(out, key, klen);
    buf_putc(out, ':');
    /* The member's path: on the stack when short (nearly always), no allocation per member. */
    char small[64], *cp = small;
    size_t clen = plen + (plen ? 1 : 0) + klen;
    if (clen > sizeof(small) && !(cp = malloc(clen)))
        return -ENOMEM;
    if (plen) {
        memcpy(cp, p, plen);
        cp[plen] = '\0';
    }
    memcpy(cp + clen - klen, key, klen);
    int rc = emit_value(v, t, tok, cp, clen, from, out);
    if (cp != small)
        free(cp);
    if (rc <= 0)
        out->len = mark;
    else
        *first = 0;
    return rc < 0 ? rc : 0;
}

/* Members s..e of the text (with the commas between them), untouched. */
static int copy_run(const struct eview *v, const struct jsontok *t, size_t s, size_t e, int *first,
                    struct buf *out)
{
    if (!*first)
        buf_putc(out, ',');
    *first = 0;
    return copy_text(v, t, t->js + s, e - s, out);
}

/* The members of object token obj, then those that edits add, in the order of their first
 * edit. An untouched member is copied as one span, key and value together. */
static int emit_object(struct eview *v, const struct jsontok *t, int obj, const char *p,
                       size_t plen, int from, struct buf *out)
{
    int first = 1, rc = 0;
    struct buf name = {0};
    buf_putc(out, '{');
    int k = obj >= 0 ? obj + 1 : -1;
    size_t run = 0, run_end = 0; /* untouched members in a row: copied as one span */
    for (int m = 0; obj >= 0 && m < t->tok[obj].size && !rc; m++, k = t->next[k]) {
        const jsmntok_t *kt = &t->tok[k];
        const char *raw = t->js + kt->start;
        size_t rlen = (size_t)(kt->end - kt->start);
        const char *nm = raw; /* the member's name: as written unless it has escapes */
        size_t nlen = rlen;
        if (t->escapes && memchr(raw, '\\', rlen)) {
            buf_reset(&name);
            jsontok_unescape(raw, rlen, &name);
            nm = name.data ? name.data : "";
            nlen = name.len;
        }
        if (!touches_child(v, from, p, plen, nm, nlen)) {
            if (!run_end)
                run = jsontok_text_start(t, k);
            run_end = jsontok_text_end(t, k + 1);
            continue;
        }
        if (run_end) {
            rc = copy_run(v, t, run, run_end, &first, out);
            run_end = 0;
        }
        if (!rc)
            rc = emit_member(v, t, k + 1, p, plen, nm, nlen, raw, rlen, from, &first, out);
    }
    if (run_end && !rc)
        rc = copy_run(v, t, run, run_end, &first, out);
    for (int i = from; i < v->nedits && !rc; i++) {
        const char *ep = v->arena.data + v->edits[i].path_off;
        size_t el = v->edits[i].path_len;
        if (!below(p, plen, ep, el))
            continue;
        const char *seg = plen ? ep + plen + 1 : ep;
        size_t n = seg_len(seg, el - (size_t)(seg - ep));
        if (obj >= 0 && jsontok_find(t, obj, seg, n) >= 0)
            continue;
        int dup = 0;
        for (int j = from; j < i && !dup; j++) {
            const char *pp = v->arena.data + v->edits[j].path_off;
            size_t pl = v->edits[j].path_len;
            const char *ps = plen ? pp + plen + 1 : pp;
            dup = below(p, plen, pp, pl) && seg_len(ps, pl - (size_t)(ps - pp)) == n &&
                  memcmp(ps, seg, n) == 0;
        }
        if (!dup)
            rc = emit_member(v, NULL, -1, p, plen, seg, n, NULL, 0, from, &first, out);
    }
    buf_free(&name);
    return rc ? rc : buf_putc(out, '}');
}

/* The elements of array token arr (1-based segments), then elements appended by edits. */
static int emit_array(struct eview *v, const struct jsontok *t, int arr, const char *p, size_t plen,
                      int from, struct buf *out)
{
    int first = 1, rc = 0, size = t->tok[arr].size;
    struct buf child = {0};
    buf_putc(out, '[');
    int e = arr + 1;
    for (int idx = 1; !rc; idx++) {
        char num[24];
        int n = snprintf(num, sizeof(num), "%d", idx);
        child_path(&child, p, plen, num, (size_t)n);
        int tok = idx <= size ? e : -1;
        if (idx <= size)
            e = t->next[e];
        else if (!touches(v, from, child.data, child.len))
            break;
        size_t mark = out->len;
        if (!first)
            buf_putc(out, ',');
        int got = emit_value(v, t, tok, child.data, child.len, from, out);
        if (got < 0)
            rc = got;
        else if (got == 0)
            out->len = mark; /* deleted element */
        else
            first = 0;
    }
    buf_free(&child);
    return rc ? rc : buf_putc(out, ']');
}

/* Emits the value at path p: token tok of t (-1: absent) with the edits from index `from` on
 * applied in order. Returns 1 when something was emitted, 0 when the value is absent (deleted
 * or never there), or a negative errno. Only members that edits touch are rebuilt; everything
 * else is copied as it was, so numbers and strings keep their exact text. */
static int emit_value(struct eview *v, const struct jsontok *t, int tok, const char *p, size_t plen,
                      int from, struct buf *out)
{
    int exact = -1;
    for (int i = from; i < v->nedits; i++) {
        const char *ep = v->arena.data + v->edits[i].path_off;
        if (path_eq(ep, v->edits[i].path_len, p, plen))
            exact = i;
    }
    struct jsontok et = {0}; /* the value of the last exact edit, when edits below follow it */
    if (exact >= 0) {
        const struct eview_edit *e = &v->edits[exact];
        from = exact + 1;
        t = NULL;
        tok = -1;
        if (!e->del) {
            if (!touches(v, from, p, plen) || plen == 0)
                return buf_append(out, v->arena.data + e->val_off, e->val_len) ? -ENOMEM : 1;
            if (jsontok_parse_trusted(&et, v->arena.data + e->val_off, e->val_len))
                return -EINVAL;
            t = &et;
            tok = 0;
        }
    }
    int rc;
    int type = tok >= 0 ? (int)t->tok[tok].type : -1;
    int sets_below = 0;
    for (int i = from; i < v->nedits && !sets_below; i++)
        sets_below = !v->edits[i].del &&
                     below(p, plen, v->arena.data + v->edits[i].path_off, v->edits[i].path_len);
    if (!touches(v, from, p, plen) || (type != JSMN_OBJECT && type != JSMN_ARRAY && !sets_below)) {
        /* Nothing to apply (a delete below a scalar changes nothing). */
        if (tok < 0)
            rc = 0;
        else {
            size_t s = jsontok_text_start(t, tok);
            rc = copy_text(v, t, t->js + s, jsontok_text_end(t, tok) - s, out) ? -ENOMEM : 1;
        }
    } else if (type == JSMN_ARRAY) {
        rc = emit_array(v, t, tok, p, plen, from, out);
        rc = rc ? rc : 1;
    } else {
        /* An object, or a scalar/absent value that a write below turns into one. */
        rc = emit_object(v, t, type == JSMN_OBJECT ? tok : -1, p, plen, from, out);
        rc = rc ? rc : 1;
    }
    jsontok_free(&et);
    return rc;
}

int eview_serialize(struct eview *v, struct buf *out)
{
    if (v->nedits == 0)
        return buf_append(out, v->js, v->len);
    if (eview_parse(v))
        return -EINVAL;
    /* Looked for only here: most events are read, or dropped, without being written. */
    v->multiline = memchr(v->js, '\n', v->len) || memchr(v->js, '\r', v->len);
    size_t start = out->len;
    int rc = emit_value(v, &v->tok, 0, "", 0, 0, out);
    if (rc < 0) {
        out->len = start;
        return rc;
    }
    return 0;
}
