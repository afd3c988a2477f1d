/* Table-driven YAML configuration. Each module declares the keys of its section next to the
 * struct they fill (type, default, bounds, description); cfg_load() walks a YAML document
 * (libyaml) against those tables, substitutes ${ENV} / ${ENV:-default}, applies defaults and
 * reports every problem as "FILE:LINE: key: message" with the valid choices. The same tables
 * generate the config reference (cfg_reference) and the redacted dump (cfg_dump), both in
 * cfg_doc.c.
 * The caller owns the output struct and releases it with cfg_free(). */
#ifndef SPILLWAY_CFG_H
#define SPILLWAY_CFG_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

enum cfg_type {
    CFG_STRING,   /* char * (owned, never NULL after load: "" when unset) */
    CFG_INT,      /* int64_t */
    CFG_BOOL,     /* int */
    CFG_DOUBLE,   /* double */
    CFG_SIZE,     /* int64_t bytes: 512, 64KiB, 64MiB, 1GiB, 10MB */
    CFG_DURATION, /* int64_t nanoseconds: 500ms, 10s, 15m, 1h */
    CFG_ENUM,     /* int: index into choices */
    CFG_STRLIST,  /* struct cfg_strlist */
    CFG_STRMAP,   /* struct cfg_strmap */
    CFG_SECTION,  /* nested struct at offset, keys in section */
    CFG_LIST,     /* struct cfg_list of section->size items (or struct cfg_item with variants) */
};

enum {
    CFG_REQUIRED = 1 << 0,
    CFG_SECRET = 1 << 1, /* redacted by cfg_dump */
};

struct cfg_strlist {
    char **v;
    int n;
};

struct cfg_strmap {
    char **key;
    char **val;
    int n;
};

struct cfg_list {
    void *v;    /* n items of the section's size */
    int *lines; /* line of each item in its file */
    int n;
};

struct cfg_section;

/* One choice of an enum that a registry holds: the registry's descriptors embed it. */
struct cfg_choice {
    const char *name;
    const char *alias; /* another spelling accepted for it (an older name), or NULL */
    const char *desc;  /* one line, for the reference */
};

struct cfg_key {
    const char *name;
    enum cfg_type type;
    size_t offset;
    const char *def; /* default as it would be written in YAML; NULL: none */
    const char *desc;
    unsigned flags;
    double min, max;                   /* inclusive bounds, checked when min < max */
    const char *const *choices;        /* CFG_ENUM: NULL-terminated */
    const struct cfg_section *section; /* CFG_SECTION and CFG_LIST */
    /* CFG_ENUM whose choices a registry holds (the formats) instead of choices: choice i,
     * NULL past the last one. */
    const struct cfg_choice *(*choice)(int i);
};

/* A list whose items pick their keys by their `type` (inputs, sinks) stores struct cfg_item.
 * index says which variant: the owner of the list finds its typed descriptor (struct
 * input_type, struct sink_type) at that index of its own registry. */
struct cfg_item {
    char *name;
    char *type;
    int index;                         /* of the variant chosen by type, -1 when none */
    const struct cfg_section *variant; /* its section */
    void *opts;                        /* variant->size bytes, filled from variant->keys */
};

struct cfg_section {
    const char *name;
    const char *desc;
    size_t size;
    const struct cfg_key *keys; /* terminated by a key with name NULL */
    /* For variant lists (inputs, sinks): the section of item type i, NULL past the last one.
     * The registry behind it holds typed descriptors that embed these sections. */
    const struct cfg_section *(*variant)(int i);
};

/* Where each key was written: "pipeline.when_full" -> line. Filled by cfg_load so checks made
 * after loading (references between sections) can point at the right line too. */
struct cfg_linemap {
    char **paths;
    int *lines;
    int n, cap;
};

int cfg_line(const struct cfg_linemap *m, const char *path);
void cfg_linemap_free(struct cfg_linemap *m);

struct cfg_errors {
    struct buf text; /* one "FILE:LINE: key: message\n" per problem */
    int count;
};

/* Parses YAML text against root into out (root->size bytes, zeroed by the caller). Returns 0,
 * or -EINVAL with the problems in errs. out is always left safe to cfg_free(). lines (may be
 * NULL) receives the line of every key; the caller frees it with cfg_linemap_free(). */
int cfg_load(const struct cfg_section *root, void *out, const char *text, size_t len,
             const char *filename, struct cfg_errors *errs, struct cfg_linemap *lines);
void cfg_free(const struct cfg_section *root, void *out);

/* Appends one error (used for cross-section checks after cfg_load). */
void cfg_error(struct cfg_errors *errs, const char *file, int line, const char *key,
               const char *fmt, ...) __attribute__((format(printf, 5, 6)));
void cfg_errors_free(struct cfg_errors *errs);

/* Converters shared with the admin commands: return 0 or -EINVAL. */
int cfg_parse_size(const char *s, int64_t *out);
int cfg_parse_bool(const char *s, int *out);

/* The effective configuration as a new JSON object, secrets as "<redacted>". */
struct json_t *cfg_dump(const struct cfg_section *root, const void *cfg);

/* Appends a Markdown reference of every section and key. */
void cfg_reference(const struct cfg_section *root, struct buf *out);

/* Looks up variant list item i. */
static inline struct cfg_item *cfg_list_item(const struct cfg_list *l, int i)
{
    return (struct cfg_item *)l->v + i;
}

#endif
