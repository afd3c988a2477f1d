#include "collector/input.h"

/* The registry: an input type is its own file, which defines its descriptor, and a line in each
 * of these two lists. The order is the config reference's. */
extern const struct input_type input_tcp, input_unix, input_udp, input_unix_dgram, input_http,
    input_statsd, input_tail, input_stdin;

/* clang-format off */
const struct input_type *const input_types[] = {
    &input_tcp,
    &input_unix,
    &input_udp,
    &input_unix_dgram,
    &input_http,
    &input_statsd,
    &input_tail,
    &input_stdin,
    NULL,
};
/* clang-format on */

static const struct cfg_section *input_variant(int i)
{
    return input_types[i] ? &input_types[i]->cfg : NULL;
}

const struct cfg_section input_list_section = {
    .name = "input", .variant = input_variant, .keys = (const struct cfg_key[]){{0}}};

static char *default_alias_keys[] = {"msg", "severity", "@timestamp"};
static char *default_alias_vals[] = {"message", "level", "timestamp"};
static const struct cfg_strmap default_aliases = {default_alias_keys, default_alias_vals, 3};

const struct cfg_strmap *input_aliases(const struct input_common *c)
{
    return c->aliases.n ? &c->aliases : &default_aliases;
}
