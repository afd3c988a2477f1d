#include "collector/prom_text.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/hash.h"

/* A family's TYPE as the page says it. */
enum ftype { FT_NONE, FT_COUNTER, FT_GAUGE, FT_HISTOGRAM, FT_SUMMARY, FT_UNTYPED, FT_OTHER };

void prom_text_init(struct prom_text *p)
{
    memset(p, 0, sizeof(*p));
}

void prom_text_free(struct prom_text *p)
{
    free(p->labels);
    buf_free(&p->values);
    free(p->fam_hash);
    free(p->fam_type);
    free(p->seen);
    memset(p, 0, sizeof(*p));
}

/* ---- sets by hash (a page's families and series) ---- */

/* Finds h in the table (a slot holding h, or the empty one where it goes). */
static size_t probe(const uint64_t *t, size_t mask, uint64_t h)
{
    size_t j = (size_t)h & mask;
    while (t[j] && t[j] != h)
        j = (j + 1) & mask;
    return j;
}

/* Room for one more entry at half load. types may be NULL (the series set). */
static int grow(uint64_t **t, unsigned char **types, size_t *mask, size_t n)
{
    if (*t && (n + 1) * 2 <= *mask + 1)
        return 0;
    size_t cap = *t ? (*mask + 1) * 2 : 256;
    uint64_t *nt = calloc(cap, sizeof(*nt));
    unsigned char *ny = types ? calloc(cap, 1) : NULL;
    if (!nt || (types && !ny)) {
        free(nt);
        free(ny);
        return -ENOMEM;
    }
    for (size_t i = 0; *t && i <= *mask; i++) {
        if (!(*t)[i])
            continue;
        size_t j = probe(nt, cap - 1, (*t)[i]);
        nt[j] = (*t)[i];
        if (types)
            ny[j] = (*types)[i];
    }
    free(*t);
    *t = nt;
    if (types) {
        free(*types);
        *types = ny;
    }
    *mask = cap - 1;
    return 0;
}

static uint64_t name_hash(const char *n, size_t len)
{
    return hash64(n, len) | 1; /* 0 marks an empty slot */
}

static enum ftype family_type(const struct prom_text *p, const char *n, size_t len)
{
    if (!p->fam_hash)
        return FT_NONE;
    size_t j = probe(p->fam_hash, p->fam_mask, name_hash(n, len));
    return p->fam_hash[j] ? (enum ftype)p->fam_type[j] : FT_NONE;
}

/* The type of sample name[0..len): its family's, found by its name or by the name without the
 * suffix a histogram's, summary's or OpenMetrics counter's series have. */
static enum prom_type sample_type(const struct prom_text *p, const char *n, size_t len)
{
    static const char *const sfx[] = {"_total",   "_bucket", "_count", "_sum",
                                      "_created", "_gcount", "_gsum",  "_info"};
    enum ftype t = family_type(p, n, len);
    if (t == FT_COUNTER)
        return PROM_COUNTER;
    if (t == FT_GAUGE)
        return PROM_GAUGE;
    if (t != FT_NONE)
        return PROM_UNKNOWN;
    for (size_t i = 0; i < sizeof(sfx) / sizeof(sfx[0]); i++) {
        size_t k = strlen(sfx[i]);
        if (len > k && !memcmp(n + len - k, sfx[i], k)) {
            t = family_type(p, n, len - k);
            /* An OpenMetrics counter family "x" has the series x_total (and x_created). */
            return t == FT_COUNTER && i == 0 ? PROM_COUNTER : PROM_UNKNOWN;
        }
    }
    return PROM_UNKNOWN;
}

/* ---- lines ---- */

static int name_start(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
}

static int name_char(char c)
{
    return name_start(c) || (c >= '0' && c <= '9');
}

static size_t skip_blank(const char *s, size_t i, size_t n)
{
    while (i < n && (s[i] == ' ' || s[i] == '\t'))
        i++;
    return i;
}

/* A metric or label name at s[i..): its end (i when there is none). */
static size_t name_end(const char *s, size_t i, size_t n, int metric)
{
    if (i >= n || !name_start(s[i]) || (!metric && s[i] == ':'))
        return i;
    size_t e = i + 1;
    while (e < n && name_char(s[e]) && (metric || s[e] != ':'))
        e++;
    return e;
}

/* "# TYPE name type": the family's type; a second TYPE for it is an error. */
static int type_line(struct prom_text *p, const char *s, size_t n, const char **why)
{
    static const struct {
        const char *name;
        enum ftype t;
    } types[] = {{"counter", FT_COUNTER},      {"gauge", FT_GAUGE},     {"histogram", FT_HISTOGRAM},
                 {"summary", FT_SUMMARY},      {"untyped", FT_UNTYPED}, {"unknown", FT_UNTYPED},
                 {"gaugehistogram", FT_OTHER}, {"stateset", FT_OTHER},  {"info", FT_OTHER}};
    size_t i = skip_blank(s, 6, n), e = name_end(s, i, n, 1);
    size_t t0 = skip_blank(s, e, n), t1 = t0;
    while (t1 < n && s[t1] != ' ' && s[t1] != '\t')
        t1++;
    if (e == i || t0 == e || skip_blank(s, t1, n) != n) {
        *why = "a # TYPE line is not \"# TYPE name type\"";
        return -EINVAL;
    }
    enum ftype t = FT_NONE;
    for (size_t k = 0; k < sizeof(types) / sizeof(types[0]); k++) {
        if (strlen(types[k].name) == t1 - t0 && !memcmp(types[k].name, s + t0, t1 - t0))
            t = types[k].t;
    }
    if (t == FT_NONE) {
        *why = "a # TYPE line names no type the format has";
        return -EINVAL;
    }
    if (grow(&p->fam_hash, &p->fam_type, &p->fam_mask, p->nfam))
        return -ENOMEM;
    uint64_t h = name_hash(s + i, e - i);
    size_t j = probe(p->fam_hash, p->fam_mask, h);
    if (p->fam_hash[j]) {
        *why = "a second # TYPE line for a family";
        return -EINVAL;
    }
    p->fam_hash[j] = h;
    p->fam_type[j] = (unsigned char)t;
    p->nfam++;
    return 0;
}

/* A label value "..." at s[i] (the quote): unescaped into p->values; its end after the closing
 * quote, or 0 when it is not a quoted string. */
static size_t label_value(struct prom_text *p, const char *s, size_t i, size_t n)
{
    if (i >= n || s[i] != '"')
        return 0;
    for (i++; i < n && s[i] != '"'; i++) {
        char c = s[i];
        if (c == '\\') {
            if (++i >= n)
                return 0;
            c = s[i] == 'n' ? '\n' : s[i] == '\\' ? '\\' : s[i] == '"' ? '"' : 0;
            if (!c)
                return 0;
        }
        if (buf_putc(&p->values, c))
            return 0;
    }
    return i < n ? i + 1 : 0;
}

/* {name="value",...}: the labels into p->labels (values in p->values); the end after the brace,
 * or 0 with *why. */
static size_t labels(struct prom_text *p, const char *s, size_t i, size_t n, size_t *count,
                     const char **why)
{
    size_t offs[256];
    *count = 0;
    buf_reset(&p->values);
    i = skip_blank(s, i + 1, n);
    while (i < n && s[i] != '}') {
        size_t e = name_end(s, i, n, 0), v = skip_blank(s, e, n);
        if (e == i || v >= n || s[v] != '=') {
            *why = "a label is not name=\"value\"";
            return 0;
        }
        if (*count == sizeof(offs) / sizeof(offs[0])) {
            *why = "more than 256 labels";
            return 0;
        }
        if (*count == p->caplabels) {
            size_t cap = p->caplabels ? p->caplabels * 2 : 16;
            struct prom_label *l = realloc(p->labels, cap * sizeof(*l));
            if (!l) {
                *why = "out of memory";
                return 0;
            }
            p->labels = l;
            p->caplabels = cap;
        }
        offs[*count] = p->values.len;
        size_t end = label_value(p, s, skip_blank(s, v + 1, n), n);
        if (!end) {
            *why = "a label value is not a quoted string with \\\\, \\\" or \\n escapes";
            return 0;
        }
        p->labels[*count] = (struct prom_label){s + i, NULL, e - i, p->values.len - offs[*count]};
        (*count)++;
        i = skip_blank(s, end, n);
        if (i < n && s[i] == ',')
            i = skip_blank(s, i + 1, n);
        else if (i < n && s[i] != '}') {
            *why = "labels are not separated by commas";
            return 0;
        }
    }
    if (i >= n) {
        *why = "the labels are not closed with }";
        return 0;
    }
    for (size_t k = 0; k < *count; k++) /* p->values may have moved while it grew */
        p->labels[k].value = p->values.data ? p->values.data + offs[k] : "";
    for (size_t a = 0; a < *count; a++) {
        for (size_t b = a + 1; b < *count; b++) {
            if (p->labels[a].nlen == p->labels[b].nlen &&
                !memcmp(p->labels[a].name, p->labels[b].name, p->labels[a].nlen)) {
                *why = "a label name given twice";
                return 0;
            }
        }
    }
    return i + 1;
}

/* A float as Go's strconv.ParseFloat (what Prometheus uses) takes it: decimal numbers, NaN and
 * the infinities in any case. */
static int parse_float(const char *s, size_t n, double *v)
{
    char tmp[64];
    if (n == 0 || n >= sizeof(tmp))
        return -1;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    const char *t = tmp + (tmp[0] == '+' || tmp[0] == '-');
    if (!strcasecmp(t, "nan")) {
        *v = NAN;
        return 0;
    }
    if (!strcasecmp(t, "inf") || !strcasecmp(t, "infinity")) {
        *v = tmp[0] == '-' ? -INFINITY : INFINITY;
        return 0;
    }
    for (const char *c = t; *c; c++) { /* no hexadecimal, no "nan(...)" */
        if (!((*c >= '0' && *c <= '9') || *c == '.' || *c == 'e' || *c == 'E' || *c == '+' ||
              *c == '-'))
            return -1;
    }
    char *end;
    *v = strtod(tmp, &end);
    return *end ? -1 : 0;
}

/* The value and the optional timestamp after the name and labels. */
static int value_and_time(const char *s, size_t i, size_t n, int om, double *v, int64_t *ts,
                          const char **why)
{
    /* OpenMetrics: an exemplar after " # " is not part of the sample. */
    const char *ex = om ? memchr(s + i, '#', n - i) : NULL;
    if (ex)
        n = (size_t)(ex - s);
    while (n > i && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    size_t a = skip_blank(s, i, n), b = a;
    while (b < n && s[b] != ' ' && s[b] != '\t')
        b++;
    if (a == i || parse_float(s + a, b - a, v)) {
        *why = a == i ? "no blank between the series and its value" : "the value is not a number";
        return -EINVAL;
    }
    *ts = INT64_MIN;
    size_t c = skip_blank(s, b, n), d = c;
    while (d < n && s[d] != ' ' && s[d] != '\t')
        d++;
    if (c == n)
        return 0;
    double t;
    if (d != n || parse_float(s + c, d - c, &t) || !isfinite(t) || (!om && t != floor(t))) {
        *why = "what follows the value is not a timestamp";
        return -EINVAL;
    }
    t = om ? t * 1000 : t;
    if (t < 0 || t > (double)PROM_MAX_MS) {
        *why = "the timestamp is out of range";
        return -EINVAL;
    }
    *ts = (int64_t)t;
    return 0;
}

/* The series' hash: its name and its labels in name order (the order they were written in does
 * not make another series). */
static uint64_t series_hash(const struct prom_text *p, const char *name, size_t nlen, size_t n)
{
    uint64_t h = hash64(name, nlen);
    uint64_t acc = 0;
    for (size_t k = 0; k < n; k++) {
        const struct prom_label *l = &p->labels[k];
        /* A sum of per-label hashes does not depend on their order. */
        acc += hash64(l->name, l->nlen) * 31 + hash64(l->value, l->vlen) * 0x9E3779B97F4A7C15ULL;
    }
    return (h ^ (acc * 0xff51afd7ed558ccdULL)) | 1;
}

static int sample_line(struct prom_text *p, const char *s, size_t n, int om,
                       const struct prom_text_out *out, const char **why)
{
    size_t e = name_end(s, 0, n, 1), count = 0, i = e;
    if (e == 0) {
        *why = "not a sample (a metric name first), a comment or a blank line";
        return -EINVAL;
    }
    i = skip_blank(s, e, n);
    if (i < n && s[i] == '{') {
        i = labels(p, s, i, n, &count, why);
        if (!i)
            return -EINVAL;
    } else {
        i = e;
    }
    struct prom_sample smp = {s, e, sample_type(p, s, e), 0, INT64_MIN, p->labels, count};
    if (value_and_time(s, i, n, om, &smp.value, &smp.ts_ms, why))
        return -EINVAL;
    if (grow(&p->seen, NULL, &p->seen_mask, p->nseen))
        return -ENOMEM;
    uint64_t h = series_hash(p, s, e, count);
    size_t j = probe(p->seen, p->seen_mask, h);
    if (p->seen[j]) {
        *why = "a series already on the page (the first one is kept)";
        return -EINVAL;
    }
    p->seen[j] = h;
    p->nseen++;
    out->sample(out->ud, &smp);
    return 1;
}

static void page_reset(struct prom_text *p)
{
    if (p->fam_hash)
        memset(p->fam_hash, 0, (p->fam_mask + 1) * sizeof(*p->fam_hash));
    if (p->seen)
        memset(p->seen, 0, (p->seen_mask + 1) * sizeof(*p->seen));
    p->nfam = p->nseen = 0;
}

int prom_text_parse(struct prom_text *p, const char *page, size_t len, int openmetrics,
                    size_t max_line, const struct prom_text_out *out)
{
    int samples = 0;
    page_reset(p);
    for (size_t at = 0; at < len;) {
        const char *nl = memchr(page + at, '\n', len - at);
        const char *s = page + at;
        size_t n = nl ? (size_t)(nl - s) : len - at;
        at += n + 1;
        if (n && s[n - 1] == '\r')
            n--;
        const char *why = NULL;
        int rc = 0;
        size_t b = skip_blank(s, 0, n);
        if (n > max_line) {
            why = "a line longer than max_line";
            rc = -EINVAL;
            n = max_line;
        } else if (b == n) {
            continue; /* blank */
        } else if (s[b] == '#') {
            size_t c = skip_blank(s, b + 1, n);
            if (n - c >= 3 && !memcmp(s + c, "EOF", 3) && skip_blank(s, c + 3, n) == n)
                break;
            if (n - b >= 7 && !memcmp(s + b, "# TYPE ", 7))
                rc = type_line(p, s + b, n - b, &why);
            /* HELP, UNIT and other comments say nothing a sample keeps. */
        } else {
            rc = sample_line(p, s + b, n - b, openmetrics, out, &why);
            if (rc > 0)
                samples++;
        }
        if (rc == -ENOMEM)
            return rc;
        if (rc < 0 && why && !strcmp(why, "out of memory"))
            return -ENOMEM;
        if (rc < 0)
            out->error(out->ud, why, s, n);
    }
    return samples;
}
