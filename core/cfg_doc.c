/* The configuration's documentation, derived from the key tables: the effective configuration
 * as JSON with secrets redacted (`spillway ctl config`) and the Markdown reference that
 * docs/config.md holds (`spillway config-reference`, checked by test_docs). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cfg.h"
#include "core/cfg_int.h"

static json_t *dump_section(const struct cfg_section *sec, const void *base);

/* A string as dumped: the password of every URL's userinfo in it ("scheme://user:secret@host/",
 * also in a list "a://u:p@h1, b://u:p@h2") is redacted, whatever the key: a URL is written in
 * many places (sinks, brokers, ${ENV} values). */
static json_t *string_dump(const char *s)
{
    struct buf out = {0};
    const char *p = s, *scheme;
    int failed = 0;
    while ((scheme = strstr(p, "://"))) {
        const char *auth = scheme + 3;
        size_t n = strcspn(auth, "/?#, \t");
        const char *at = memchr(auth, '@', n);
        const char *colon = at ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
        if (colon) {
            failed |= buf_append(&out, p, (size_t)(colon + 1 - p)) | buf_puts(&out, "<redacted>");
            p = at;
        } else {
            failed |= buf_append(&out, p, (size_t)(auth + n - p));
            p = auth + n;
        }
    }
    failed |= buf_puts(&out, p);
    json_t *j = failed ? NULL : json_stringn(out.data ? out.data : "", out.len);
    buf_free(&out);
    return j ? j : json_string("<redacted>"); /* out of memory: nothing of it */
}

static json_t *dump_value(const struct cfg_key *k, const void *p)
{
    if (k->flags & CFG_SECRET) {
        const char *s = k->type == CFG_STRING ? *(char *const *)p : "x";
        return json_string(s && *s ? "<redacted>" : "");
    }
    switch (k->type) {
    case CFG_STRING:
        return string_dump(*(char *const *)p ? *(char *const *)p : "");
    case CFG_INT:
    case CFG_SIZE:
        return json_integer(*(const int64_t *)p);
    case CFG_DURATION: {
        char s[64];
        snprintf(s, sizeof(s), "%gs", (double)*(const int64_t *)p / 1e9);
        return json_string(s);
    }
    case CFG_BOOL:
        return json_boolean(*(const int *)p);
    case CFG_DOUBLE:
        return json_real(*(const double *)p);
    case CFG_ENUM: {
        const char *alias;
        return json_string(cfg__choice(k, *(const int *)p, &alias));
    }
    case CFG_STRLIST: {
        const struct cfg_strlist *l = p;
        json_t *a = json_array();
        for (int i = 0; i < l->n; i++)
            json_array_append_new(a, string_dump(l->v[i]));
        return a;
    }
    case CFG_STRMAP: {
        const struct cfg_strmap *m = p;
        json_t *o = json_object();
        for (int i = 0; i < m->n; i++)
            json_object_set_new(o, m->key[i], string_dump(m->val[i]));
        return o;
    }
    case CFG_SECTION:
        return dump_section(k->section, p);
    case CFG_LIST: {
        const struct cfg_list *l = p;
        json_t *a = json_array();
        for (int i = 0; i < l->n; i++) {
            json_t *o;
            if (k->section->variant) {
                const struct cfg_item *it = cfg_list_item(l, i);
                o = it->variant ? dump_section(it->variant, it->opts) : json_object();
                json_object_set_new(o, "name", json_string(it->name ? it->name : ""));
                json_object_set_new(o, "type", json_string(it->type ? it->type : ""));
            } else {
                o = dump_section(k->section, (const char *)l->v + (size_t)i * k->section->size);
            }
            json_array_append_new(a, o);
        }
        return a;
    }
    }
    return json_null();
}

static json_t *dump_section(const struct cfg_section *sec, const void *base)
{
    json_t *o = json_object();
    for (const struct cfg_key *k = sec->keys; k->name; k++)
        json_object_set_new(o, k->name, dump_value(k, (const char *)base + k->offset));
    return o;
}

json_t *cfg_dump(const struct cfg_section *root, const void *cfg)
{
    return dump_section(root, cfg);
}

static const char *type_name(const struct cfg_key *k)
{
    static const char *const names[] = {
        [CFG_STRING] = "string",
        [CFG_INT] = "integer",
        [CFG_BOOL] = "boolean",
        [CFG_DOUBLE] = "number",
        [CFG_SIZE] = "size",
        [CFG_DURATION] = "duration",
        [CFG_ENUM] = "enum",
        [CFG_STRLIST] = "list",
        [CFG_STRMAP] = "mapping",
        [CFG_SECTION] = "section",
        [CFG_LIST] = "list of mappings",
    };
    return names[k->type];
}

/* What the reference walk carries: the output, and the enums whose choices a registry holds,
 * whose values get a table of their own at the end (once, however many keys use them). */
struct reference {
    struct buf *out;
    const struct cfg_key *registries[8];
    int nregistries;
};

static void reference_section(struct reference *r, const struct cfg_section *sec, const char *path,
                              int item);

static void note_registry(struct reference *r, const struct cfg_key *k)
{
    for (int i = 0; i < r->nregistries; i++) {
        if (r->registries[i]->choice == k->choice)
            return;
    }
    if (r->nregistries < (int)(sizeof(r->registries) / sizeof(r->registries[0])))
        r->registries[r->nregistries++] = k;
}

static void reference_key(struct reference *r, const struct cfg_key *k, const char *path)
{
    struct buf *out = r->out;
    char kp[256];
    cfg__path(kp, sizeof(kp), path, k->name);
    buf_printf(out, "| `%s` | %s | ", kp, type_name(k));
    if (k->flags & CFG_REQUIRED)
        buf_puts(out, "required");
    else if (k->def && *k->def)
        buf_printf(out, "`%s`", k->def);
    buf_printf(out, " | %s", k->desc ? k->desc : "");
    if (k->type == CFG_ENUM) {
        const char *name, *alias;
        buf_puts(out, " One of:");
        for (int i = 0; (name = cfg__choice(k, i, &alias)); i++) {
            buf_printf(out, "%s `%s`", i ? "," : "", name);
            if (alias)
                buf_printf(out, " (or `%s`)", alias);
        }
        buf_putc(out, '.');
        if (k->choice) {
            buf_printf(out, " See [values of `%s`](#values-of-%s).", k->name, k->name);
            note_registry(r, k);
        }
    }
    if (k->min < k->max) {
        char lo[32], hi[32];
        cfg__bound_text(k, k->min, lo, sizeof(lo));
        cfg__bound_text(k, k->max, hi, sizeof(hi));
        buf_printf(out, " Range %s to %s.", lo, hi);
    }
    if (k->flags & CFG_SECRET)
        buf_puts(out, " Secret: redacted in dumps.");
    buf_puts(out, " |\n");
}

static void reference_section(struct reference *r, const struct cfg_section *sec, const char *path,
                              int item)
{
    struct buf *out = r->out;
    buf_puts(out, "| key | type | default | description |\n|---|---|---|---|\n");
    if (item)
        buf_puts(out, "| `name` | string | required | Unique name. |\n"
                      "| `type` | string | required | Selects this table of keys. |\n");
    for (const struct cfg_key *k = sec->keys; k->name; k++) {
        if (k->type != CFG_SECTION && k->type != CFG_LIST)
            reference_key(r, k, path);
    }
    for (const struct cfg_key *k = sec->keys; k->name; k++) {
        char kp[256];
        cfg__path(kp, sizeof(kp), path, k->name);
        if (k->type == CFG_SECTION) {
            buf_printf(out, "\n### `%s`\n\n%s\n\n", kp, k->desc ? k->desc : "");
            reference_section(r, k->section, kp, 0);
        } else if (k->type == CFG_LIST && k->section->variant) {
            buf_printf(out, "\n### `%s`\n\n%s\n", kp, k->desc ? k->desc : "");
            const struct cfg_section *v;
            for (int i = 0; (v = k->section->variant(i)); i++) {
                buf_printf(out, "\n#### `%s` type `%s`\n\n%s\n\n", kp, v->name,
                           v->desc ? v->desc : "");
                reference_section(r, v, "", 1);
            }
        } else if (k->type == CFG_LIST) {
            buf_printf(out, "\n### `%s`\n\n%s Each item:\n\n", kp, k->desc ? k->desc : "");
            reference_section(r, k->section, "", 0);
        }
    }
}

/* The values of an enum a registry holds, with what each means. */
static void reference_values(struct reference *r, const struct cfg_key *k)
{
    buf_printf(r->out, "\n### Values of `%s`\n\n| value | means |\n|---|---|\n", k->name);
    const struct cfg_choice *c;
    for (int i = 0; (c = k->choice(i)); i++) {
        buf_printf(r->out, "| `%s`", c->name);
        if (c->alias)
            buf_printf(r->out, " (or `%s`)", c->alias);
        buf_printf(r->out, " | %s |\n", c->desc);
    }
}

void cfg_reference(const struct cfg_section *root, struct buf *out)
{
    struct reference r = {.out = out};
    reference_section(&r, root, "", 0);
    for (int i = 0; i < r.nregistries; i++)
        reference_values(&r, r.registries[i]);
}
