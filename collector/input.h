/* The input interface: every input type is a typed descriptor (struct input_type: its config
 * keys and its functions, one file each) registered in input.c's table. Inputs run
 * on the collector's event loop; they frame and parse what they read and hand records to the
 * collector (collector_json, collector_event, collector_dead). The collector owns every input;
 * an input owns its listeners and connections. */
#ifndef SPILLWAY_INPUT_H
#define SPILLWAY_INPUT_H

#include <stddef.h>
#include <stdint.h>

#include "collector/normalize.h"
#include "core/cfg.h"
#include "core/stats.h"

struct input;
struct collector;
struct event_base;
struct store;
struct format;
struct format_state;

/* An input type: what `type:` names in the config. Each is one file (input_<x>.c) defining a
 * const struct input_type, registered by one line in input.c. */
struct input_type {
    /* Name, one-line description, option keys and the size of the options struct (which starts
     * with struct input_common): the config loader fills one per configured input. */
    struct cfg_section cfg;
    /* Opens listeners/files. Returns 0 or a negative errno with a message in err. */
    int (*start)(struct input *in, char *err, size_t errlen);
    /* Backpressure: stop reading (the kernel then pushes back on senders), and resume. */
    void (*pause)(struct input *in);
    void (*resume)(struct input *in);
    /* Stops accepting and reading; partial lines are flushed as records. Idempotent. */
    void (*stop)(struct input *in);
    /* Releases everything the input allocated (after stop). */
    void (*destroy)(struct input *in);
};

struct input {
    const struct input_type *type;
    const char *name; /* borrowed from the config */
    const void *opts; /* the type's options struct, filled from type->cfg.keys (borrowed) */
    uint16_t id;      /* index in the collector, carried in ring records */
    struct collector *col;
    struct event_base *base;
    struct store *store; /* positions for file tails (may be NULL) */
    struct normalizer norm;
    struct input_stats stats;
    void *priv; /* the type's own state */
    /* The state its format keeps across messages, if any (collector/format.h: made by the
     * format on first use, freed by the collector with the input). */
    struct format_state *fstate;
    const struct format *fstate_fmt;
};

/* The registry: an input type is its own file, which defines its descriptor, and one line here.
 * The order is the config reference's. */
#define INPUT_TYPES(X)                                                                             \
    X(input_tcp)                                                                                   \
    X(input_unix)                                                                                  \
    X(input_udp)                                                                                   \
    X(input_unix_dgram)                                                                            \
    X(input_http)                                                                                  \
    X(input_otlp_grpc)                                                                             \
    X(input_statsd)                                                                                \
    X(input_prometheus_scrape)                                                                     \
    X(input_tail)                                                                                  \
    X(input_stdin)                                                                                 \
    X(input_forward)                                                                               \
    X(input_journald)

#define INPUT_TYPE_DECLARE(t) extern const struct input_type t;
INPUT_TYPES(INPUT_TYPE_DECLARE)

/* Every input type, NULL-terminated (input.c, from INPUT_TYPES). */
extern const struct input_type *const input_types[];
/* `inputs:` in the config: a list whose items pick their type from the registry. */
extern const struct cfg_section input_list_section;

/* Keys every input accepts about its records. */
struct input_common {
    int64_t max_event_size;
    struct cfg_strmap aliases;
};

/* clang-format off */
#define INPUT_COMMON_KEYS(type)                                                                    \
    {"max_event_size", CFG_SIZE, offsetof(type, common.max_event_size), "1MiB",                    \
     "Longest record; a longer one is cut there and dead-lettered as \"too large\".", 0, 16,       \
     268435456},                                                                                   \
    {"aliases", CFG_STRMAP, offsetof(type, common.aliases), NULL,                                  \
     "Source field names mapped to canonical ones (default: msg: message, severity: level, "      \
     "\"@timestamp\": timestamp)."}
/* clang-format on */

/* The aliases in force: the configured ones, or the defaults above. */
const struct cfg_strmap *input_aliases(const struct input_common *c);

#endif
