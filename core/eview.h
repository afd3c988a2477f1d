/* The event view: how a router worker reads and edits one canonical event without building a
 * tree. The event's JSON text is tokenized lazily (on first access); reads walk the tokens;
 * writes are recorded as edits (path + JSON value) and applied only when the event is
 * serialized, by splicing: untouched members are copied as they are, edited top-level members
 * are replaced, and only a member edited below its top level is rebuilt (with jansson).
 *
 * Paths are segments separated by NUL bytes ("http\0status"); an array element's segment is
 * its 1-based index in decimal. One struct eview per worker, reused for every event: it owns
 * its token space and edit arena; the event text is borrowed and must stay valid until the
 * next eview_reset(). */
#ifndef SPILLWAY_EVIEW_H
#define SPILLWAY_EVIEW_H

#include <stddef.h>

#include "core/buf.h"
#include "core/jsontok.h"

enum ev_kind { EVK_MISSING, EVK_NULL, EVK_BOOL, EVK_NUMBER, EVK_STRING, EVK_OBJECT, EVK_ARRAY };

struct ev_val {
    enum ev_kind kind;
    const char *text; /* STRING: the body between the quotes (escaped form); else JSON text */
    size_t len;
    int escaped; /* STRING body holds a backslash: unescape before use */
    int size;    /* OBJECT/ARRAY: members or elements, -1 when edits below make it unknown */
};

struct eview_edit {
    size_t path_off, path_len; /* in arena */
    size_t val_off, val_len;   /* in arena; JSON text */
    int del;
};

struct eview {
    const char *js;
    size_t len;
    int parsed;    /* 0: not yet, 2: in part, 1: whole, -1: not a JSON object */
    int multiline; /* js has a raw newline between tokens: copies of it are compacted (set by
                    * eview_serialize) */
    struct jsontok tok;
    struct eview_edit *edits;
    int nedits;
    int cap;
    struct buf arena;
    struct jsontok etok; /* for reads inside an edited value */
};

void eview_init(struct eview *v);
void eview_free(struct eview *v);

/* Points the view at a new event and forgets all edits. */
void eview_reset(struct eview *v, const char *js, size_t len);
/* Forgets the edits only (the next route sees the event as it arrived). */
void eview_clear_edits(struct eview *v);
/* Tokenizes on first use. Returns 0 or -EINVAL. */
int eview_parse(struct eview *v);

/* Reads the value at path (plen 0: the whole event). Returns 0 (out->kind may be EVK_MISSING)
 * or a negative errno. out->text stays valid until the next call on the view. */
int eview_get(struct eview *v, const char *path, size_t plen, struct ev_val *out);
/* A dotted field name ("http.status") as a path, in place: the dots become NULs. */
void eview_dotted_path(char *s, size_t len);
/* Records path = json (a valid JSON text). Returns 0 or -ENOMEM. */
int eview_set(struct eview *v, const char *path, size_t plen, const char *json, size_t jlen);
int eview_del(struct eview *v, const char *path, size_t plen);
int eview_edited(const struct eview *v);

/* Calls fn for each key of the object at path, edits included. Returns 0 or -ENOMEM. */
int eview_keys(struct eview *v, const char *path, size_t plen,
               void (*fn)(void *ud, const char *key, size_t klen), void *ud);

/* Appends the event with its edits applied as one line of compact JSON. Returns 0, -ENOMEM. */
int eview_serialize(struct eview *v, struct buf *out);

#endif
