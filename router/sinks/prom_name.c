#include "router/sinks/prom_name.h"

#include <errno.h>
#include <string.h>

static int alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static int digit(char c)
{
    return c >= '0' && c <= '9';
}

int prom_valid_metric_name(const char *n, size_t len)
{
    if (!len || digit(n[0]))
        return 0;
    for (size_t i = 0; i < len; i++) {
        if (!alnum(n[i]) && n[i] != '_' && n[i] != ':')
            return 0;
    }
    return 1;
}

/* Appends s[0..n) with every character that is not [a-zA-Z0-9_] (and ':' when colon) as an
 * underscore, a run of them as one underscore (a run of underscores that were there stays). */
static int sanitize(struct buf *out, const char *s, size_t n, int colon)
{
    if (buf_reserve(out, n))
        return -ENOMEM;
    int replaced = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (alnum(c) || c == '_' || (colon && c == ':')) {
            out->data[out->len++] = c;
            replaced = 0;
        } else if (!replaced) {
            out->data[out->len++] = '_';
            replaced = 1;
        }
    }
    return 0;
}

static int ends_with(const struct buf *b, size_t from, const char *s)
{
    size_t n = strlen(s);
    return b->len - from >= n && !memcmp(b->data + b->len - n, s, n);
}

/* UCUM units as the specification's table spells them out. */
static const struct {
    const char *ucum, *word;
} units[] = {
    {"d", "days"},          {"h", "hours"},         {"min", "minutes"},    {"s", "seconds"},
    {"ms", "milliseconds"}, {"us", "microseconds"}, {"ns", "nanoseconds"}, {"By", "bytes"},
    {"KiBy", "kibibytes"},  {"MiBy", "mebibytes"},  {"GiBy", "gibibytes"}, {"TiBy", "tebibytes"},
    {"KBy", "kilobytes"},   {"MBy", "megabytes"},   {"GBy", "gigabytes"},  {"TBy", "terabytes"},
    {"m", "meters"},        {"V", "volts"},         {"A", "amperes"},      {"J", "joules"},
    {"W", "watts"},         {"g", "grams"},         {"Cel", "celsius"},    {"Hz", "hertz"},
    {"%", "percent"},
};

/* The "per" units of X/Y. */
static const struct {
    const char *ucum, *word;
} per[] = {{"s", "second"}, {"m", "minute"}, {"h", "hour"}, {"d", "day"},
           {"w", "week"},   {"mo", "month"}, {"y", "year"}};

static const char *word(const char *u, size_t n, int per_unit)
{
    if (per_unit) {
        for (size_t i = 0; i < sizeof(per) / sizeof(per[0]); i++) {
            if (strlen(per[i].ucum) == n && !memcmp(per[i].ucum, u, n))
                return per[i].word;
        }
    }
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strlen(units[i].ucum) == n && !memcmp(units[i].ucum, u, n))
            return units[i].word;
    }
    return NULL;
}

/* Appends one part of a unit (before or after its slash) as a word, or sanitized. */
static int unit_part(struct buf *out, const char *u, size_t n, int per_unit)
{
    const char *w = word(u, n, per_unit);
    return w ? buf_puts(out, w) : sanitize(out, u, n, 0);
}

/* The unit as a name suffix into out ("" when it has none): annotations in braces dropped
 * ("{request}/s" is "/s"), "X/Y" as X_per_Y, "1" as ratio for a gauge and nothing otherwise. */
static int unit_suffix(struct buf *out, const char *unit, size_t n, enum prom_name_kind kind)
{
    char u[128];
    size_t k = 0;
    int depth = 0;
    for (size_t i = 0; i < n && k < sizeof(u); i++) {
        if (unit[i] == '{')
            depth++;
        else if (unit[i] == '}' && depth)
            depth--;
        else if (!depth)
            u[k++] = unit[i];
    }
    if (k == 0)
        return 0;
    if (k == 1 && u[0] == '1')
        return kind == PROM_NAME_GAUGE ? buf_puts(out, "ratio") : 0;
    const char *slash = memchr(u, '/', k);
    size_t a = slash ? (size_t)(slash - u) : k;
    size_t start = out->len;
    if (a && unit_part(out, u, a, 0))
        return -ENOMEM;
    if (slash && k - a - 1 > 0) {
        if ((out->len > start && buf_putc(out, '_')) || buf_puts(out, "per_") ||
            unit_part(out, slash + 1, k - a - 1, 1))
            return -ENOMEM;
    }
    /* A unit that was all punctuation leaves nothing worth a suffix. */
    size_t us = 0;
    for (size_t i = start; i < out->len; i++)
        us += out->data[i] != '_';
    if (!us)
        out->len = start;
    return 0;
}

int prom_metric_name(struct buf *out, const char *name, size_t n, const char *unit, size_t ulen,
                     enum prom_name_kind kind)
{
    size_t start = out->len;
    if (n && digit(name[0]) && buf_putc(out, '_'))
        return -ENOMEM;
    if (sanitize(out, name, n, 1))
        return -ENOMEM;
    /* "_total" goes after the unit: a counter named x_total of unit s is x_seconds_total. */
    if (kind == PROM_NAME_COUNTER && ends_with(out, start, "_total"))
        out->len -= 6;
    size_t at = out->len;
    if (ulen && (buf_putc(out, '_') || unit_suffix(out, unit, ulen, kind)))
        return -ENOMEM;
    size_t sl = out->len - at;
    if (sl == 1) {
        out->len = at; /* no suffix */
    } else if (sl > 1 && at - start >= sl && !memcmp(out->data + at - sl, out->data + at, sl)) {
        out->len = at; /* the name ends with it already */
    }
    if (kind == PROM_NAME_COUNTER && buf_puts(out, "_total"))
        return -ENOMEM;
    return 0;
}

int prom_label_name(struct buf *out, const char *n, size_t len)
{
    if (len && digit(n[0]) && buf_puts(out, "key_"))
        return -ENOMEM;
    return sanitize(out, n, len, 0);
}
