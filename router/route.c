#include "router/route.h"

#include <stddef.h>

static const struct cfg_key route_keys[] = {
    {"name", CFG_STRING, offsetof(struct route_config, name), NULL, "Unique route name.",
     CFG_REQUIRED},
    {"script", CFG_STRING, offsetof(struct route_config, script), "",
     "Lua script in router.scripts defining process(ev). Without one the route keeps "
     "spillway.sample(ev[sample_key])."},
    {"sample_rate", CFG_DOUBLE, offsetof(struct route_config, sample_rate), "1.0",
     "The rate spillway.sample() keeps (0..1); can be dialed at runtime.", 0, 0, 1},
    {"sample_key", CFG_STRING, offsetof(struct route_config, sample_key), "trace_id",
     "Field a route without a script samples by (dots for nested fields)."},
    {"sinks", CFG_STRLIST, offsetof(struct route_config, sinks), NULL,
     "Sinks that receive what the route keeps."},
    {"shadow", CFG_STRLIST, offsetof(struct route_config, shadow), NULL,
     "Sinks that receive an identical copy, dropped (and counted) rather than ever slowing "
     "the primary sinks."},
    {"enabled", CFG_BOOL, offsetof(struct route_config, enabled), "true",
     "A disabled route sees no events."},
    {"stop", CFG_BOOL, offsetof(struct route_config, stop), "false",
     "Later routes do not see what this route kept."},
    {0},
};

const struct cfg_section route_config_section = {
    .name = "route", .size = sizeof(struct route_config), .keys = route_keys};

static const struct cfg_key router_keys[] = {
    {"scripts", CFG_STRING, offsetof(struct router_config, scripts), "./scripts",
     "Directory of the Lua route scripts."},
    {"max_instructions", CFG_INT, offsetof(struct router_config, max_instructions), "1000000",
     "Lua instructions one process() call may run before it fails (event dead-lettered).", 0, 1000,
     1000000000},
    {"lua_memory", CFG_SIZE, offsetof(struct router_config, lua_memory), "64MiB",
     "Memory each worker's Lua state may use; an allocation past it fails that call.", 0, 1048576,
     17179869184.0},
    {0},
};

const struct cfg_section router_config_section = {
    .name = "router", .size = sizeof(struct router_config), .keys = router_keys};
