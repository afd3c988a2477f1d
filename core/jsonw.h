/* Writing JSON text into a struct buf: strings escaped (invalid UTF-8 replaced by U+FFFD so
 * what we emit is always valid JSON), numbers, and JSON-safe copies of raw spans. */
#ifndef SPILLWAY_JSONW_H
#define SPILLWAY_JSONW_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

/* Appends "s" as a quoted JSON string. Returns 0 or -ENOMEM. */
int jsonw_string(struct buf *b, const char *s, size_t len);
int jsonw_int(struct buf *b, int64_t v);
int jsonw_uint(struct buf *b, uint64_t v);
/* Non-finite values become null. */
int jsonw_double(struct buf *b, double v);
/* Appends already-valid JSON text, dropping whitespace outside strings when it holds line
 * breaks, so the result always fits on one NDJSON line. */
int jsonw_raw_compact(struct buf *b, const char *s, size_t len);

#endif
