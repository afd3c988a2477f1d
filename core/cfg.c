#include "core/cfg.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "core/cfg_int.h"
#include "core/timeutil.h"

#define CFG_MAX_ERRORS 50
#define CFG_MAX_KEYS   128

/* Everything one load needs, so the walkers take a single context argument. */
struct loader {
    yaml_document_t *doc;
    const char *file;
    struct cfg_errors *errs;
    struct cfg_linemap *lines;
};

static void record_line(struct loader *L, const char *path, int line)
{
    struct cfg_linemap *m = L->lines;
    if (!m)
        return;
    if (m->n == m->cap) {
        int cap = m->cap ? m->cap * 2 : 32;
        char **p = realloc(m->paths, (size_t)cap * sizeof(char *));
        if (!p)
            return;
        m->paths = p;
        int *l = realloc(m->lines, (size_t)cap * sizeof(int));
        if (!l)
            return;
        m->lines = l;
        m->cap = cap;
    }
    m->paths[m->n] = strdup(path);
    m->lines[m->n++] = line;
}

int cfg_line(const struct cfg_linemap *m, const char *path)
{
    for (int i = 0; m && i < m->n; i++) {
        if (m->paths[i] && strcmp(m->paths[i], path) == 0)
            return m->lines[i];
    }
    return 0;
}

void cfg_linemap_free(struct cfg_linemap *m)
{
    for (int i = 0; i < m->n; i++)
        free(m->paths[i]);
    free(m->paths);
    free(m->lines);
    memset(m, 0, sizeof(*m));
}

void cfg_error(struct cfg_errors *errs, const char *file, int line, const char *key,
               const char *fmt, ...)
{
    errs->count++;
    if (errs->count > CFG_MAX_ERRORS)
        return;
    buf_printf(&errs->text, "%s:%d: %s: ", file, line, key);
    va_list ap;
    va_start(ap, fmt);
    char msg[1024];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    buf_printf(&errs->text, "%s\n", msg);
}

void cfg_errors_free(struct cfg_errors *errs)
{
    buf_free(&errs->text);
    errs->count = 0;
}

static int node_line(const yaml_node_t *n)
{
    return n ? (int)n->start_mark.line + 1 : 0;
}

/* ${VAR} and ${VAR:-default} become the variable's value; $$ is a literal $. An unset variable
 * without a default is an error, so a missing secret is caught at start, not at first use. */
static int subst_env(const char *in, struct buf *out, char *err, size_t errlen)
{
    buf_reset(out);
    for (const char *p = in; *p;) {
        if (p[0] == '$' && p[1] == '$') {
            buf_putc(out, '$');
            p += 2;
            continue;
        }
        if (p[0] != '$' || p[1] != '{') {
            buf_putc(out, *p++);
            continue;
        }
        const char *end = strchr(p + 2, '}');
        if (!end) {
            snprintf(err, errlen, "unterminated ${ in \"%s\"", in);
            return -EINVAL;
        }
        char name[256];
        size_t n = (size_t)(end - (p + 2));
        const char *def = NULL;
        size_t deflen = 0;
        const char *colon = memchr(p + 2, ':', n);
        if (colon && colon[1] == '-') {
            def = colon + 2;
            deflen = (size_t)(end - def);
            n = (size_t)(colon - (p + 2));
        }
        if (n == 0 || n >= sizeof(name)) {
            snprintf(err, errlen, "bad variable name in \"%s\"", in);
            return -EINVAL;
        }
        memcpy(name, p + 2, n);
        name[n] = '\0';
        const char *val = getenv(name);
        if (val && *val)
            buf_puts(out, val);
        else if (def)
            buf_append(out, def, deflen);
        else if (val)
            ; /* set but empty: empty */
        else {
            snprintf(err, errlen, "environment variable %s is not set (use ${%s:-default})", name,
                     name);
            return -EINVAL;
        }
        p = end + 1;
    }
    buf_putc(out, '\0');
    return 0;
}

int cfg_parse_size(const char *s, int64_t *out)
{
    static const struct {
        const char *suffix;
        double mult;
    } units[] = {
        {"", 1},     {"B", 1},    {"KiB", 1024}, {"MiB", 1048576}, {"GiB", 1073741824}, {"KB", 1e3},
        {"MB", 1e6}, {"GB", 1e9}, {"K", 1024},   {"M", 1048576},   {"G", 1073741824}};
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || errno || !isfinite(v) || v < 0)
        return -EINVAL;
    while (*end == ' ')
        end++;
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strcmp(end, units[i].suffix) == 0) {
            double bytes = v * units[i].mult;
            if (bytes > 9.2e18)
                return -EINVAL;
            *out = (int64_t)bytes;
            return 0;
        }
    }
    return -EINVAL;
}

int cfg_parse_bool(const char *s, int *out)
{
    static const char *const yes[] = {"true", "yes", "on", "1", NULL};
    static const char *const no[] = {"false", "no", "off", "0", NULL};
    for (int i = 0; yes[i]; i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = 1;
            return 0;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = 0;
            return 0;
        }
    }
    return -EINVAL;
}

const char *cfg__choice(const struct cfg_key *k, int i, const char **alias)
{
    *alias = NULL;
    if (!k->choice)
        return k->choices[i];
    const struct cfg_choice *c = k->choice(i);
    if (!c)
        return NULL;
    *alias = c->alias;
    return c->name;
}

static void names_text(const char *const *names, char *out, size_t len)
{
    size_t o = 0;
    out[0] = '\0';
    for (int i = 0; names[i] && o < len; i++)
        o += (size_t)snprintf(out + o, len - o, "%s%s", i ? ", " : "", names[i]);
}

static void choices_text(const struct cfg_key *k, char *out, size_t len)
{
    size_t o = 0;
    const char *alias, *name;
    out[0] = '\0';
    for (int i = 0; (name = cfg__choice(k, i, &alias)) && o < len; i++)
        o += (size_t)snprintf(out + o, len - o, "%s%s", i ? ", " : "", name);
}

/* A bound as a user writes it: sizes with units, durations in seconds. */
void cfg__bound_text(const struct cfg_key *k, double v, char *out, size_t len)
{
    static const char *const units[] = {"", "KiB", "MiB", "GiB", "TiB"};
    if (k->type == CFG_SIZE) {
        int u = 0;
        while (u < 4 && v >= 1024 && (int64_t)v % 1024 == 0) {
            v /= 1024;
            u++;
        }
        snprintf(out, len, "%.0f%s", v, units[u]);
    } else if (k->type == CFG_DURATION) {
        snprintf(out, len, "%.15gs", v);
    } else {
        snprintf(out, len, "%.15g", v);
    }
}

static int check_bounds(const struct cfg_key *k, double v, char *err, size_t errlen)
{
    if (k->min < k->max && (v < k->min || v > k->max)) {
        char lo[32], hi[32];
        cfg__bound_text(k, k->min, lo, sizeof(lo));
        cfg__bound_text(k, k->max, hi, sizeof(hi));
        snprintf(err, errlen, "must be between %s and %s", lo, hi);
        return -EINVAL;
    }
    return 0;
}

/* Converts one scalar (after env substitution) into the field at p. */
static int set_scalar(const struct cfg_key *k, void *p, const char *s, char *err, size_t errlen)
{
    int64_t i64;
    char *end;
    switch (k->type) {
    case CFG_STRING:
        free(*(char **)p);
        *(char **)p = strdup(s);
        return 0;
    case CFG_INT:
        errno = 0;
        i64 = strtoll(s, &end, 10);
        if (end == s || *end || errno) {
            snprintf(err, errlen, "\"%s\" is not an integer", s);
            return -EINVAL;
        }
        *(int64_t *)p = i64;
        return check_bounds(k, (double)i64, err, errlen);
    case CFG_BOOL:
        if (cfg_parse_bool(s, (int *)p)) {
            snprintf(err, errlen, "\"%s\" is not a boolean (true or false)", s);
            return -EINVAL;
        }
        return 0;
    case CFG_DOUBLE: {
        errno = 0;
        double d = strtod(s, &end);
        if (end == s || *end || errno || !isfinite(d)) {
            snprintf(err, errlen, "\"%s\" is not a number", s);
            return -EINVAL;
        }
        *(double *)p = d;
        return check_bounds(k, d, err, errlen);
    }
    case CFG_SIZE:
        if (cfg_parse_size(s, &i64)) {
            snprintf(err, errlen, "\"%s\" is not a size (e.g. 512, 64KiB, 64MiB, 1GiB)", s);
            return -EINVAL;
        }
        *(int64_t *)p = i64;
        return check_bounds(k, (double)i64, err, errlen);
    case CFG_DURATION:
        if (time_parse_duration(s, &i64)) {
            snprintf(err, errlen, "\"%s\" is not a duration (e.g. 500ms, 10s, 15m, 1h)", s);
            return -EINVAL;
        }
        *(int64_t *)p = i64;
        return check_bounds(k, (double)i64 / 1e9, err, errlen);
    case CFG_ENUM: {
        const char *name, *alias;
        for (int i = 0; (name = cfg__choice(k, i, &alias)); i++) {
            if (strcmp(s, name) == 0 || (alias && strcmp(s, alias) == 0)) {
                *(int *)p = i;
                return 0;
            }
        }
        char valid[512];
        choices_text(k, valid, sizeof(valid));
        snprintf(err, errlen, "\"%s\" is not valid; choose one of: %s", s, valid);
        return -EINVAL;
    }
    default:
        snprintf(err, errlen, "expected a %s, got a single value",
                 k->type == CFG_STRLIST ? "list"
                 : k->type == CFG_LIST  ? "list of mappings"
                                        : "mapping");
        return -EINVAL;
    }
}

static void load_section(struct loader *L, const struct cfg_section *sec, void *base,
                         yaml_node_t *map, const char *path, int item);

static const char *node_kind(const yaml_node_t *n)
{
    return n->type == YAML_MAPPING_NODE    ? "mapping"
           : n->type == YAML_SEQUENCE_NODE ? "list"
                                           : "value";
}

void cfg__path(char *out, size_t len, const char *path, const char *key)
{
    snprintf(out, len, "%s%s%s", path, *path ? "." : "", key);
}

/* A scalar's text after ${ENV} substitution, or NULL after reporting an error. */
static char *scalar_text(struct loader *L, yaml_node_t *n, const char *path, struct buf *tmp)
{
    char err[512];
    if (subst_env((const char *)n->data.scalar.value, tmp, err, sizeof(err))) {
        cfg_error(L->errs, L->file, node_line(n), path, "%s", err);
        return NULL;
    }
    return tmp->data;
}

static void load_strlist(struct loader *L, struct cfg_strlist *l, yaml_node_t *n, const char *path)
{
    struct buf tmp = {0};
    if (n->type == YAML_SCALAR_NODE) { /* a single value is a list of one */
        char *s = scalar_text(L, n, path, &tmp);
        if (s && *s) {
            l->v = calloc(1, sizeof(char *));
            l->v[0] = strdup(s);
            l->n = 1;
        }
        buf_free(&tmp);
        return;
    }
    if (n->type != YAML_SEQUENCE_NODE) {
        cfg_error(L->errs, L->file, node_line(n), path, "expected a list of values, got a %s",
                  node_kind(n));
        return;
    }
    int cnt = (int)(n->data.sequence.items.top - n->data.sequence.items.start);
    l->v = calloc((size_t)cnt + 1, sizeof(char *));
    for (int i = 0; i < cnt; i++) {
        yaml_node_t *it = yaml_document_get_node(L->doc, n->data.sequence.items.start[i]);
        if (it->type != YAML_SCALAR_NODE) {
            cfg_error(L->errs, L->file, node_line(it), path, "list items must be values");
            continue;
        }
        char *s = scalar_text(L, it, path, &tmp);
        if (s)
            l->v[l->n++] = strdup(s);
    }
    buf_free(&tmp);
}

static void load_strmap(struct loader *L, struct cfg_strmap *m, yaml_node_t *n, const char *path)
{
    if (n->type != YAML_MAPPING_NODE) {
        cfg_error(L->errs, L->file, node_line(n), path, "expected a mapping, got a %s",
                  node_kind(n));
        return;
    }
    struct buf tmp = {0};
    int cnt = (int)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
    m->key = calloc((size_t)cnt + 1, sizeof(char *));
    m->val = calloc((size_t)cnt + 1, sizeof(char *));
    for (yaml_node_pair_t *pr = n->data.mapping.pairs.start; pr < n->data.mapping.pairs.top; pr++) {
        yaml_node_t *kn = yaml_document_get_node(L->doc, pr->key);
        yaml_node_t *vn = yaml_document_get_node(L->doc, pr->value);
        if (kn->type != YAML_SCALAR_NODE || vn->type != YAML_SCALAR_NODE) {
            cfg_error(L->errs, L->file, node_line(kn), path,
                      "keys and values must be single values");
            continue;
        }
        char *s = scalar_text(L, vn, path, &tmp);
        if (!s)
            continue;
        m->key[m->n] = strdup((const char *)kn->data.scalar.value);
        m->val[m->n] = strdup(s);
        m->n++;
    }
    buf_free(&tmp);
}

/* The index of the variant named type, or -1. */
static int find_variant(const struct cfg_section *sec, const char *type)
{
    const struct cfg_section *v;
    for (int i = 0; (v = sec->variant(i)); i++) {
        if (strcmp(v->name, type) == 0)
            return i;
    }
    return -1;
}

/* A variant item reads name and type itself, then the type's own keys. */
static void load_variant_item(struct loader *L, const struct cfg_section *sec,
                              struct cfg_item *item, yaml_node_t *n, const char *path)
{
    struct buf tmp = {0};
    item->index = -1;
    for (yaml_node_pair_t *pr = n->data.mapping.pairs.start; pr < n->data.mapping.pairs.top; pr++) {
        yaml_node_t *kn = yaml_document_get_node(L->doc, pr->key);
        yaml_node_t *vn = yaml_document_get_node(L->doc, pr->value);
        const char *key = kn->type == YAML_SCALAR_NODE ? (const char *)kn->data.scalar.value : "";
        char **dst = !strcmp(key, "type") ? &item->type : !strcmp(key, "name") ? &item->name : NULL;
        if (!dst)
            continue;
        char kp[256];
        cfg__path(kp, sizeof(kp), path, key);
        record_line(L, kp, node_line(kn));
        if (*dst) {
            cfg_error(L->errs, L->file, node_line(kn), kp, "is duplicate");
            continue;
        }
        if (vn->type != YAML_SCALAR_NODE) {
            cfg_error(L->errs, L->file, node_line(vn), kp, "expected a value, got a %s",
                      node_kind(vn));
            continue;
        }
        char *s = scalar_text(L, vn, kp, &tmp);
        if (s) {
            free(*dst);
            *dst = strdup(s);
        }
    }
    buf_free(&tmp);
    char kp[256];
    if (!item->name || !*item->name) {
        cfg__path(kp, sizeof(kp), path, "name");
        cfg_error(L->errs, L->file, node_line(n), kp, "is required");
    }
    cfg__path(kp, sizeof(kp), path, "type");
    char valid[512];
    const char *names[64];
    int nv = 0;
    for (const struct cfg_section *v; nv < 63 && (v = sec->variant(nv)); nv++)
        names[nv] = v->name;
    names[nv] = NULL;
    names_text(names, valid, sizeof(valid));
    if (!item->type) {
        cfg_error(L->errs, L->file, node_line(n), kp, "is required; choose one of: %s", valid);
        item->type = strdup("");
        return;
    }
    item->index = find_variant(sec, item->type);
    if (item->index < 0) {
        cfg_error(L->errs, L->file, node_line(n), kp, "\"%s\" is not valid; choose one of: %s",
                  item->type, valid);
        return;
    }
    item->variant = sec->variant(item->index);
    item->opts = calloc(1, item->variant->size);
    load_section(L, item->variant, item->opts, n, path, 1);
}

static void load_list(struct loader *L, const struct cfg_key *k, struct cfg_list *l, yaml_node_t *n,
                      const char *path)
{
    const struct cfg_section *sec = k->section;
    if (n->type != YAML_SEQUENCE_NODE) {
        cfg_error(L->errs, L->file, node_line(n), path, "expected a list, got a %s", node_kind(n));
        return;
    }
    int cnt = (int)(n->data.sequence.items.top - n->data.sequence.items.start);
    size_t isz = sec->variant ? sizeof(struct cfg_item) : sec->size;
    l->v = calloc((size_t)cnt + 1, isz);
    l->lines = calloc((size_t)cnt + 1, sizeof(int));
    for (int i = 0; i < cnt; i++) {
        yaml_node_t *it = yaml_document_get_node(L->doc, n->data.sequence.items.start[i]);
        char ip[256];
        snprintf(ip, sizeof(ip), "%s[%d]", path, i);
        if (it->type != YAML_MAPPING_NODE) {
            cfg_error(L->errs, L->file, node_line(it), ip, "expected a mapping, got a %s",
                      node_kind(it));
            continue;
        }
        void *item = (char *)l->v + (size_t)l->n * isz;
        l->lines[l->n] = node_line(it);
        l->n++;
        if (sec->variant)
            load_variant_item(L, sec, item, it, ip);
        else
            load_section(L, sec, item, it, ip, 0);
    }
}

static void apply_default(struct loader *L, const struct cfg_key *k, void *p, const char *path,
                          int line)
{
    char err[512];
    if (k->type == CFG_SECTION) {
        load_section(L, k->section, p, NULL, path, 0);
        return;
    }
    if (k->type == CFG_STRING && !k->def) {
        *(char **)p = strdup("");
        return;
    }
    if (!k->def || k->type == CFG_LIST || k->type == CFG_STRLIST || k->type == CFG_STRMAP)
        return;
    if (set_scalar(k, p, k->def, err, sizeof(err)))
        cfg_error(L->errs, L->file, line, path, "bad built-in default: %s", err);
}

static void load_value(struct loader *L, const struct cfg_key *k, void *p, yaml_node_t *vn,
                       const char *kp)
{
    char err[512];
    struct buf tmp = {0};
    /* "pipeline:" with nothing under it (everything commented out): the defaults. */
    if (vn->type == YAML_SCALAR_NODE && vn->data.scalar.length == 0 &&
        vn->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && k->type >= CFG_STRLIST) {
        apply_default(L, k, p, kp, node_line(vn));
        return;
    }
    switch (k->type) {
    case CFG_SECTION:
        if (vn->type != YAML_MAPPING_NODE)
            cfg_error(L->errs, L->file, node_line(vn), kp, "expected a mapping, got a %s",
                      node_kind(vn));
        load_section(L, k->section, p, vn->type == YAML_MAPPING_NODE ? vn : NULL, kp, 0);
        break;
    case CFG_LIST:
        load_list(L, k, p, vn, kp);
        break;
    case CFG_STRLIST:
        load_strlist(L, p, vn, kp);
        break;
    case CFG_STRMAP:
        load_strmap(L, p, vn, kp);
        break;
    default: {
        if (vn->type != YAML_SCALAR_NODE) {
            cfg_error(L->errs, L->file, node_line(vn), kp, "expected a value, got a %s",
                      node_kind(vn));
            apply_default(L, k, p, kp, node_line(vn));
            break;
        }
        char *s = scalar_text(L, vn, kp, &tmp);
        if (!s) {
            apply_default(L, k, p, kp, node_line(vn));
        } else if (*s == '\0' && k->type != CFG_STRING) {
            apply_default(L, k, p, kp, node_line(vn)); /* "key:" with nothing: the default */
        } else if (set_scalar(k, p, s, err, sizeof(err))) {
            cfg_error(L->errs, L->file, node_line(vn), kp, "%s", err);
        }
    }
    }
    buf_free(&tmp);
}

static void unknown_key(struct loader *L, const struct cfg_section *sec, yaml_node_t *kn,
                        const char *kp, int item)
{
    char valid[1024];
    size_t o = 0;
    valid[0] = '\0';
    if (item) /* a variant item also takes name and type */
        o += (size_t)snprintf(valid, sizeof(valid), "name, type");
    for (const struct cfg_key *k = sec->keys; k->name && o < sizeof(valid); k++)
        o += (size_t)snprintf(valid + o, sizeof(valid) - o, "%s%s", o ? ", " : "", k->name);
    cfg_error(L->errs, L->file, node_line(kn), kp, "unknown key; valid keys: %s", valid);
}

/* Fills base from the mapping (NULL: all defaults). Keys named in the mapping but not in the
 * table are errors; keys in the table but not in the mapping get their defaults. item: the
 * mapping is a variant list's item, whose name and type load_variant_item reads. */
static void load_section(struct loader *L, const struct cfg_section *sec, void *base,
                         yaml_node_t *map, const char *path, int item)
{
    char seen[CFG_MAX_KEYS] = {0};
    int line = node_line(map);
    if (map) {
        for (yaml_node_pair_t *pr = map->data.mapping.pairs.start; pr < map->data.mapping.pairs.top;
             pr++) {
            yaml_node_t *kn = yaml_document_get_node(L->doc, pr->key);
            yaml_node_t *vn = yaml_document_get_node(L->doc, pr->value);
            if (kn->type != YAML_SCALAR_NODE) {
                cfg_error(L->errs, L->file, node_line(kn), path, "keys must be plain names");
                continue;
            }
            const char *key = (const char *)kn->data.scalar.value;
            char kp[256];
            cfg__path(kp, sizeof(kp), path, key);
            if (item && (!strcmp(key, "name") || !strcmp(key, "type")))
                continue; /* read by load_variant_item */
            int idx = -1;
            for (int i = 0; sec->keys[i].name; i++) {
                if (strcmp(sec->keys[i].name, key) == 0) {
                    idx = i;
                    break;
                }
            }
            if (idx < 0) {
                unknown_key(L, sec, kn, kp, item);
                continue;
            }
            if (seen[idx]) {
                cfg_error(L->errs, L->file, node_line(kn), kp, "is duplicate");
                continue;
            }
            seen[idx] = 1;
            record_line(L, kp, node_line(kn));
            load_value(L, &sec->keys[idx], (char *)base + sec->keys[idx].offset, vn, kp);
        }
    }
    for (int i = 0; sec->keys[i].name; i++) {
        if (seen[i])
            continue;
        const struct cfg_key *k = &sec->keys[i];
        char kp[256];
        cfg__path(kp, sizeof(kp), path, k->name);
        if (k->flags & CFG_REQUIRED)
            cfg_error(L->errs, L->file, line, kp, "is required");
        apply_default(L, k, (char *)base + k->offset, kp, line);
    }
}

int cfg_load(const struct cfg_section *root, void *out, const char *text, size_t len,
             const char *filename, struct cfg_errors *errs, struct cfg_linemap *lines)
{
    yaml_parser_t parser;
    yaml_document_t doc;
    int before = errs->count;
    if (!yaml_parser_initialize(&parser))
        return -ENOMEM;
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    if (!yaml_parser_load(&parser, &doc)) {
        cfg_error(errs, filename, (int)parser.problem_mark.line + 1, "yaml", "%s%s%s",
                  parser.problem ? parser.problem : "syntax error", parser.context ? " " : "",
                  parser.context ? parser.context : "");
        yaml_parser_delete(&parser);
        struct loader L0 = {.doc = NULL, .file = filename, .errs = errs, .lines = lines};
        load_section(&L0, root, out, NULL, "", 0);
        return -EINVAL;
    }
    struct loader L = {.doc = &doc, .file = filename, .errs = errs, .lines = lines};
    yaml_node_t *top = yaml_document_get_root_node(&doc);
    if (top && top->type == YAML_SCALAR_NODE && top->data.scalar.length == 0)
        top = NULL; /* an empty file: every default */
    if (top && top->type != YAML_MAPPING_NODE) {
        cfg_error(errs, filename, node_line(top), "config", "the top level must be a mapping");
        top = NULL;
    }
    load_section(&L, root, out, top, "", 0);
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    return errs->count > before ? -EINVAL : 0;
}

static void free_section(const struct cfg_section *sec, void *base);

static void free_value(const struct cfg_key *k, void *p)
{
    switch (k->type) {
    case CFG_STRING:
        free(*(char **)p);
        *(char **)p = NULL;
        break;
    case CFG_STRLIST: {
        struct cfg_strlist *l = p;
        for (int i = 0; i < l->n; i++)
            free(l->v[i]);
        free(l->v);
        memset(l, 0, sizeof(*l));
        break;
    }
    case CFG_STRMAP: {
        struct cfg_strmap *m = p;
        for (int i = 0; i < m->n; i++) {
            free(m->key[i]);
            free(m->val[i]);
        }
        free(m->key);
        free(m->val);
        memset(m, 0, sizeof(*m));
        break;
    }
    case CFG_SECTION:
        free_section(k->section, p);
        break;
    case CFG_LIST: {
        struct cfg_list *l = p;
        for (int i = 0; i < l->n; i++) {
            if (k->section->variant) {
                struct cfg_item *it = cfg_list_item(l, i);
                if (it->variant)
                    free_section(it->variant, it->opts);
                free(it->opts);
                free(it->name);
                free(it->type);
            } else {
                free_section(k->section, (char *)l->v + (size_t)i * k->section->size);
            }
        }
        free(l->v);
        free(l->lines);
        memset(l, 0, sizeof(*l));
        break;
    }
    default:
        break;
    }
}

static void free_section(const struct cfg_section *sec, void *base)
{
    if (!base)
        return;
    for (const struct cfg_key *k = sec->keys; k->name; k++)
        free_value(k, (char *)base + k->offset);
}

void cfg_free(const struct cfg_section *root, void *out)
{
    free_section(root, out);
}
