/* `line`: each line (each datagram) is the message of a log event, kept as it is. */
#include <string.h>

#include "collector/collector.h"
#include "collector/format.h"
#include "core/jsonw.h"
#include "core/utf8.h"

static void line_decode(struct input *in, const char *line, size_t len)
{
    if (utf8_check_text(line, len) != len) {
        collector_dead(in, "invalid UTF-8 or NUL in line", line, len);
        return;
    }
    const struct recv_time *now = collector_now(in->col);
    size_t at;
    struct buf *o = collector_buffer(in->col, &at);
    buf_puts(o, "{\"timestamp\":\"");
    buf_append(o, now->text, TIME_RFC3339_LEN);
    buf_puts(o, "\",\"kind\":\"log\",\"source\":");
    jsonw_string(o, in->name, strlen(in->name));
    buf_puts(o, ",\"message\":");
    jsonw_string(o, line, len);
    buf_puts(o, ",\"received_at\":\"");
    buf_append(o, now->text, TIME_RFC3339_LEN);
    buf_puts(o, "\"}");
    collector_event(in, o->data + at, o->len - at);
}

const struct format format_line = {
    .id = {"line", "lines", "Each line (datagram) is the message of a log event, as it is."},
    .framing = FRAMING_LINE,
    .decode = line_decode,
};
