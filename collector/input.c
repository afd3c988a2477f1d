#include "collector/input.h"

extern const struct cfg_section input_tcp_section;
extern const struct cfg_section input_unix_section;
extern const struct cfg_section input_udp_section;
extern const struct cfg_section input_http_section;
extern const struct cfg_section input_statsd_section;
extern const struct cfg_section input_tail_section;
extern const struct cfg_section input_stdin_section;
extern const struct cfg_section input_unix_dgram_section;

/* The registry: adding an input type adds one line here. */
/* clang-format off */
const struct cfg_section *const input_sections[] = {
    &input_tcp_section,
    &input_unix_section,
    &input_udp_section,
    &input_unix_dgram_section,
    &input_http_section,
    &input_statsd_section,
    &input_tail_section,
    &input_stdin_section,
    NULL,
};
/* clang-format on */

const struct cfg_section input_list_section = {
    .name = "input", .variants = input_sections, .keys = (const struct cfg_key[]){{0}}};

static char *default_alias_keys[] = {"msg", "severity", "@timestamp"};
static char *default_alias_vals[] = {"message", "level", "timestamp"};
static const struct cfg_strmap default_aliases = {default_alias_keys, default_alias_vals, 3};

const struct cfg_strmap *input_aliases(const struct input_common *c)
{
    return c->aliases.n ? &c->aliases : &default_aliases;
}
