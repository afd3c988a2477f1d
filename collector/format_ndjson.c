/* `ndjson`: one JSON object per line (per datagram), normalized by collector_json (the aliases,
 * the canonical fields) without building a tree. */
#include "collector/collector.h"
#include "collector/format.h"

const struct format format_ndjson = {
    .id = {"ndjson", "json", "One JSON object per line (per datagram), normalized."},
    .framing = FRAMING_LINE,
    .decode = collector_json,
};
