/* Internals shared by cfg.c (loading) and cfg_doc.c (dump and reference). Not for other
 * modules. */
#ifndef SPILLWAY_CFG_INT_H
#define SPILLWAY_CFG_INT_H

#include <stddef.h>

#include "core/cfg.h"

/* Enum choice i of k (from its choices or its registry), NULL past the last; *alias gets another
 * spelling it accepts, or NULL. */
const char *cfg__choice(const struct cfg_key *k, int i, const char **alias);
/* "path.key", or "key" at the top. */
void cfg__path(char *out, size_t len, const char *path, const char *key);
/* A bound as a user writes it: sizes with units, durations in seconds. */
void cfg__bound_text(const struct cfg_key *k, double v, char *out, size_t len);

#endif
