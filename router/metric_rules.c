#include "router/metric_rules.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_RULE_LABELS 64
#define MAX_FIELDS      256 /* distinct fields the declarations of one route read */

_Static_assert(METRIC_COUNT == 0 && METRIC_OBSERVE == 1 && METRIC_GAUGE == 2,
               "metrics.declare's types (route.c) are in enum metric_kind's order");

/* A field the declarations read, as a path (NUL-separated segments): each is looked up once per
 * event however many declarations read it (the service label of a count and a histogram). */
struct path {
    char *p;
    size_t len;
};

struct rule_label {
    const char *name;
    size_t nlen;
    int field; /* index in fields */
};

struct rule {
    enum metric_kind kind;
    const char *name; /* borrowed from the config, as the label names */
    size_t nlen;
    int field; /* index in fields; -1: none (a count of every event) */
    double scale;
    struct rule_label *labels;
    size_t nlabels;
};

struct metric_rules {
    struct rule *v;
    size_t n;
    struct path fields[MAX_FIELDS];
    int nfields;
};

/* The index of field `dotted` in r->fields, added when new; -1 when out of memory, -2 when
 * MAX_FIELDS are held. */
static int field_index(struct metric_rules *r, const char *dotted)
{
    size_t len = strlen(dotted);
    char *path = strdup(dotted);
    if (!path)
        return -1;
    eview_dotted_path(path, len);
    for (int i = 0; i < r->nfields; i++) {
        if (r->fields[i].len == len && !memcmp(r->fields[i].p, path, len)) {
            free(path);
            return i;
        }
    }
    if (r->nfields == MAX_FIELDS) {
        free(path);
        return -2;
    }
    r->fields[r->nfields] = (struct path){path, len};
    return r->nfields++;
}

static int too_many_fields(char *err, size_t errlen, const char *where)
{
    snprintf(err, errlen, "%s: the declarations read more than %d fields", where, MAX_FIELDS);
    return -EINVAL;
}

static int build_rule(struct metric_rules *rs, struct rule *r, enum metric_kind kind,
                      const struct metric_rule_config *c, const char *where, char *err,
                      size_t errlen)
{
    r->kind = kind;
    r->name = c->name;
    r->nlen = strlen(c->name);
    r->scale = c->scale;
    r->field = -1;
    if (r->nlen == 0 || r->nlen > 255) {
        snprintf(err, errlen, "%s.name: a metric name of 1 to 255 bytes", where);
        return -EINVAL;
    }
    if (kind != METRIC_COUNT && !*c->field) {
        snprintf(err, errlen, "%s.field: required (the field holding the value)", where);
        return -EINVAL;
    }
    if (!isfinite(c->scale) || (kind == METRIC_COUNT && c->scale < 0)) {
        snprintf(err, errlen, "%s.scale: %s", where,
                 kind == METRIC_COUNT ? "a finite number, 0 or more (a count cannot go down)"
                                      : "a finite number");
        return -EINVAL;
    }
    if (c->labels.n > MAX_RULE_LABELS) {
        snprintf(err, errlen, "%s.labels: more than %d labels", where, MAX_RULE_LABELS);
        return -EINVAL;
    }
    if (*c->field && (r->field = field_index(rs, c->field)) < 0)
        return r->field == -1 ? -ENOMEM : too_many_fields(err, errlen, where);
    if (c->labels.n && !(r->labels = calloc((size_t)c->labels.n, sizeof(*r->labels))))
        return -ENOMEM;
    for (int i = 0; i < c->labels.n; i++) {
        struct rule_label *l = &r->labels[r->nlabels++];
        l->name = c->labels.key[i];
        l->nlen = strlen(l->name);
        if (!*c->labels.val[i]) {
            snprintf(err, errlen, "%s.labels.%s: the field it takes its value from", where,
                     l->name);
            return -EINVAL;
        }
        if ((l->field = field_index(rs, c->labels.val[i])) < 0)
            return l->field == -1 ? -ENOMEM : too_many_fields(err, errlen, where);
    }
    return 0;
}

int metric_rules_build(const struct route_metrics_config *m, const char *route,
                       struct metric_rules **out, char *err, size_t errlen)
{
    static const char *const types[] = {"count", "observe", "gauge"};
    const struct metric_rule_config *c = m->declare.v;
    size_t n = (size_t)m->declare.n;
    *out = NULL;
    if (!n)
        return 0;
    struct metric_rules *r = calloc(1, sizeof(*r));
    if (!r || !(r->v = calloc(n, sizeof(*r->v)))) {
        free(r);
        return -ENOMEM;
    }
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        char where[300];
        snprintf(where, sizeof(where), "route %s: metrics.declare[%zu] (%s %s)", route, i,
                 types[c[i].type], c[i].name);
        rc = build_rule(r, &r->v[r->n++], (enum metric_kind)c[i].type, &c[i], where, err, errlen);
    }
    if (rc) {
        metric_rules_free(r);
        return rc;
    }
    *out = r;
    return 0;
}

void metric_rules_free(struct metric_rules *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n; i++)
        free(r->v[i].labels);
    for (int i = 0; i < r->nfields; i++)
        free(r->fields[i].p);
    free(r->v);
    free(r);
}

/* The number a field holds: a JSON number, or a string that is one ("12.5", as log lines often
 * carry them). 0, or -1 when it holds something else. */
static int number_of(const struct ev_val *x, double *v)
{
    char text[64];
    int64_t i;
    if ((x->kind != EVK_NUMBER && x->kind != EVK_STRING) || x->escaped || x->len == 0)
        return -1;
    switch (jsontok_simple_number(x->text, x->len, &i, v)) {
    case 1:
        *v = (double)i;
        return 0;
    case 2:
        return 0;
    }
    if (x->len >= sizeof(text))
        return -1;
    memcpy(text, x->text, x->len);
    text[x->len] = '\0';
    char *end;
    *v = strtod(text, &end);
    return *end || !isfinite(*v) ? -1 : 0;
}

/* Field i of the event, looked up on first use: NULL when the event does not have it (or holds
 * null there). */
static const struct ev_val *field(const struct metric_rules *r, struct eview *ev,
                                  struct ev_val *vals, unsigned char *got, int i)
{
    if (!got[i]) {
        got[i] = eview_get(ev, r->fields[i].p, r->fields[i].len, &vals[i]) ||
                         vals[i].kind == EVK_MISSING || vals[i].kind == EVK_NULL
                     ? 2
                     : 1;
    }
    return got[i] == 1 ? &vals[i] : NULL;
}

int64_t metric_rules_apply(const struct metric_rules *r, struct eview *ev, struct metric_agg *agg,
                           struct buf *scratch)
{
    int64_t invalid = 0;
    struct metric_label l[MAX_RULE_LABELS];
    size_t unescaped[MAX_RULE_LABELS]; /* offsets in scratch of the values that needed it */
    struct ev_val vals[MAX_FIELDS];
    unsigned char got[MAX_FIELDS]; /* 0: not looked up yet, 1: there, 2: not there */
    memset(got, 0, (size_t)r->nfields);
    for (size_t i = 0; i < r->n; i++) {
        const struct rule *rule = &r->v[i];
        double v = 1;
        if (rule->field >= 0) {
            const struct ev_val *x = field(r, ev, vals, got, rule->field);
            if (!x)
                continue;
            if (number_of(x, &v) == 0)
                v *= rule->scale;
            else if (rule->kind == METRIC_COUNT)
                v = 1;
            else
                v = NAN;
            if (isnan(v) || (rule->kind == METRIC_COUNT && v < 0)) {
                invalid++; /* not a number; a count cannot go down */
                continue;
            }
        }
        size_t n = 0;
        buf_reset(scratch);
        for (size_t j = 0; j < rule->nlabels; j++) {
            const struct rule_label *rl = &rule->labels[j];
            const struct ev_val *x = field(r, ev, vals, got, rl->field);
            if (!x)
                continue;
            l[n] = (struct metric_label){rl->name, x->text, rl->nlen, x->len};
            unescaped[n] = SIZE_MAX;
            if (x->escaped) {
                unescaped[n] = scratch->len;
                if (jsontok_unescape(x->text, x->len, scratch))
                    return -ENOMEM;
                l[n].vlen = scratch->len - unescaped[n];
            }
            n++;
        }
        for (size_t j = 0; j < n; j++) {
            if (unescaped[j] != SIZE_MAX)
                l[j].value = scratch->data + unescaped[j];
        }
        int rc = metric_agg_add(agg, rule->kind, rule->name, rule->nlen, l, n, v);
        if (rc == -ENOMEM)
            return -ENOMEM;
        invalid += rc == -E2BIG; /* name and labels over 4 KiB: refused, counted */
    }
    return invalid;
}
