/* Syslog parsing (RFC 5424, RFC 3164 and what real senders make of it) into the canonical
 * event: host, service (APP-NAME or TAG), level (from severity), facility, procid, msgid,
 * structured data as nested objects, timestamp (UTC), message. A message that fails strict
 * parsing is still kept as a log, with the raw text as its message and `syslog_error` saying
 * why; only text that cannot be a message at all (invalid UTF-8, NUL bytes) is refused.
 * Pure functions over the caller's buffers: unit-tested and fuzzed on their own. */
#ifndef SPILLWAY_SYSLOG_H
#define SPILLWAY_SYSLOG_H

#include <stddef.h>

#include "collector/normalize.h"
#include "core/buf.h"

enum syslog_result {
    SYSLOG_OK = 0,     /* parsed as RFC 5424 or RFC 3164 */
    SYSLOG_LOOSE = 1,  /* kept as a raw message (syslog_error set in the event) */
    SYSLOG_REJECT = -1 /* not a message: *err says why; out is unchanged */
};

/* Appends the canonical event for one syslog message (no framing, no trailing newline). */
enum syslog_result syslog_to_event(const char *msg, size_t len, const char *source,
                                   const struct recv_time *rt, struct buf *out, const char **err);

/* Every top-level member syslog_to_event can write, NULL-ended (collector_event_among). */
extern const char *const syslog_members[];

/* Level names by severity 0..7. */
extern const char *const syslog_levels[8];

#endif
