#include "collector/input.h"

#define INPUT_TYPE_ROW(t) &t,
const struct input_type *const input_types[] = {INPUT_TYPES(INPUT_TYPE_ROW) NULL};

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
