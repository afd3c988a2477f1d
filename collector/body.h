/* The body of POST /v1/events: a JSON array of objects, one JSON object, or NDJSON. */
#ifndef SPILLWAY_BODY_H
#define SPILLWAY_BODY_H

#include <stddef.h>

#include "core/jsontok.h"

struct body_items {
    /* Token i of tok: an element of the body's array, or the body's single object. */
    void (*token)(void *ud, int i);
    /* A non-empty NDJSON line, without its newline and a CR before it. */
    void (*line)(void *ud, const char *line, size_t len);
};

/* Hands each item of body b[0..n) to items: the elements of a JSON array, a single object
 * (even spread over lines), else every line. tok holds the tokens of an array or object body
 * while its items are handed over. Returns 0, or -EINVAL with *err for a body that starts as
 * an array but is not a valid one. */
int body_split_events(struct jsontok *tok, const char *b, size_t n, const struct body_items *items,
                      void *ud, const char **err);

/* Hands each non-empty line of b[0..n) to line, without its newline and a CR before it (the
 * NDJSON case above). */
void body_split_lines(const char *b, size_t n, void (*line)(void *ud, const char *l, size_t len),
                      void *ud);

#endif
