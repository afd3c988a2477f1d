/* One syslog message (RFC 5424, RFC 3164 and what real senders make of them) through
 * syslog_to_event (collector/format_syslog.h), as the UDP input and the framer hand it over.
 *
 * What must hold: a message kept (strictly parsed or loose) is appended as one line holding a
 * JSON object with no duplicate key and no \u0000 (text holding NUL is refused), a loose one
 * says why in syslog_error, every member is among syslog_members (the collector looks for the
 * partition key only there); a refused one leaves the output as it was and says why. */
#include "fuzz.h"
#include "collector/format_syslog.h"
#include "core/strlist.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct recv_time rt = fuzz_recv_time();
    struct buf out = {0};
    buf_puts(&out, "previous");
    const char *err = NULL;
    enum syslog_result r = syslog_to_event((const char *)data, size, "syslog", &rt, &out, &err);
    if (r == SYSLOG_REJECT) {
        FUZZ_CHECK(out.len == 8 && memcmp(out.data, "previous", 8) == 0,
                   "refused (%s) but changed the output", err ? err : "?");
        FUZZ_CHECK(err, "refused without a reason");
    } else {
        FUZZ_CHECK(r == SYSLOG_OK || r == SYSLOG_LOOSE, "result %d", (int)r);
        FUZZ_CHECK(out.len > 8 && memcmp(out.data, "previous", 8) == 0,
                   "kept but the output was not appended to");
        const char *ev = out.data + 8;
        size_t len = out.len - 8;
        fuzz_check_object("syslog_to_event", ev, len, JSON_REJECT_DUPLICATES);
        json_t *j = json_loadb(ev, len, 0, NULL);
        json_t *why = json_object_get(j, "syslog_error");
        FUZZ_CHECK(r == SYSLOG_OK || json_is_string(why),
                   "loose message without a syslog_error string: %.*s", (int)len, ev);
        const char *key;
        json_t *v;
        json_object_foreach(j, key, v)
        {
            FUZZ_CHECK(str_among(key, syslog_members), "member %s is not in syslog_members", key);
        }
        FUZZ_CHECK(json_is_string(json_object_get(j, "timestamp")) &&
                       json_is_string(json_object_get(j, "received_at")),
                   "event without timestamp or received_at: %.*s", (int)len, ev);
        json_decref(j);
    }
    buf_free(&out);
    return 0;
}
