#include "app/config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "collector/input.h"
#include "core/fsutil.h"
#include "router/metric_rules.h"
#include "router/sinks/sink.h"

static const char *const log_levels[] = {"debug", "info", "warn", "error", NULL};

static const struct cfg_key config_keys[] = {
    {"data_dir", CFG_STRING, offsetof(struct config, data_dir), "./data",
     "State (spillway.db) and default file sinks."},
    {"log_level", CFG_ENUM, offsetof(struct config, log_level), "info",
     "spillway's own log (JSON lines on stderr).", 0, 0, 0, log_levels},
    {"shutdown_timeout", CFG_DURATION, offsetof(struct config, shutdown_timeout), "10s",
     "On SIGTERM/SIGINT, how long to drain in-flight events before giving up.", 0, 0, 3600},
    {"admin", CFG_SECTION, offsetof(struct config, admin), NULL, "The operator's interfaces.", 0, 0,
     0, NULL, &admin_config_section},
    {"inputs", CFG_LIST, offsetof(struct config, inputs), NULL,
     "Where events come from; every item has a name (its events' `source`) and a type.", 0, 0, 0,
     NULL, &input_list_section},
    {"pipeline", CFG_SECTION, offsetof(struct config, pipeline), NULL,
     "Partitions, memory ceiling and what happens when full.", 0, 0, 0, NULL,
     &pipeline_config_section},
    {"router", CFG_SECTION, offsetof(struct config, router), NULL, "The Lua route scripts.", 0, 0,
     0, NULL, &router_config_section},
    {"routes", CFG_LIST, offsetof(struct config, routes), NULL,
     "Each event is offered to every enabled route in order.", 0, 0, 0, NULL,
     &route_config_section},
    {"sinks", CFG_LIST, offsetof(struct config, sinks), NULL,
     "Destinations, each behind its own bounded queue.", 0, 0, 0, NULL, &sink_list_section},
    {"dead_letter", CFG_STRING, offsetof(struct config, dead_letter), "",
     "Sink that receives what could not be parsed or processed (with error and raw text); "
     "empty: counted and logged."},
    {"fallback", CFG_STRING, offsetof(struct config, fallback), "",
     "Sink that receives events no route kept; empty: they are counted as unrouted."},
    {0},
};

const struct cfg_section config_section = {
    .name = "config", .size = sizeof(struct config), .keys = config_keys};

/* The line a key was written on (fallback when it was not written). */
static int key_line(const struct config *c, const char *path, int fallback)
{
    int l = cfg_line(&c->lines, path);
    return l ? l : fallback;
}

static int item_line(const struct cfg_list *l, int i)
{
    return l->lines ? l->lines[i] : 0;
}

static void check_unique(const struct config *c, const struct cfg_list *l, const char *what,
                         struct cfg_errors *errs)
{
    for (int i = 0; i < l->n; i++) {
        const char *a = cfg_list_item(l, i)->name;
        for (int j = 0; a && j < i; j++) {
            const char *b = cfg_list_item(l, j)->name;
            if (b && strcmp(a, b) == 0)
                cfg_error(errs, c->file, item_line(l, i), what,
                          "name \"%s\" is duplicate (also on line %d)", a, item_line(l, j));
        }
    }
}

static int sink_exists(const struct config *c, const char *name)
{
    for (int i = 0; i < c->sinks.n; i++) {
        const char *n = cfg_list_item(&c->sinks, i)->name;
        if (n && strcmp(n, name) == 0)
            return 1;
    }
    return 0;
}

static void sink_names(const struct config *c, char *out, size_t len)
{
    size_t o = 0;
    out[0] = '\0';
    for (int i = 0; i < c->sinks.n && o < len; i++)
        o += (size_t)snprintf(out + o, len - o, "%s%s", i ? ", " : "",
                              cfg_list_item(&c->sinks, i)->name);
}

static void check_sink_refs(const struct config *c, const struct cfg_strlist *l, int line,
                            const char *key, struct cfg_errors *errs)
{
    char names[1024];
    for (int i = 0; i < l->n; i++) {
        if (!sink_exists(c, l->v[i])) {
            sink_names(c, names, sizeof(names));
            cfg_error(errs, c->file, line, key, "no sink named \"%s\"; sinks: %s", l->v[i],
                      names[0] ? names : "(none)");
        }
    }
}

/* admin.allow_uids are decimal user ids (names are not looked up): read by strtoul, a name
 * such as "alice" would have been uid 0, root's. */
static void check_uids(const struct config *c, struct cfg_errors *errs)
{
    const struct cfg_strlist *l = &c->admin.allow_uids;
    for (int i = 0; i < l->n; i++) {
        const char *s = l->v[i];
        size_t n = strspn(s, "0123456789");
        if (n == 0 || s[n] || n > 10 || strtoull(s, NULL, 10) > 4294967294ULL)
            cfg_error(errs, c->file, key_line(c, "admin.allow_uids", 0), "admin.allow_uids",
                      "\"%s\" is not a numeric user id (0 to 4294967294; `id -u NAME` prints "
                      "one)",
                      s);
    }
}

/* A route's metrics section: its buckets are numbers, ascending; its declared metrics make
 * sense; the route it names exists. */
static void check_route_metrics(const struct config *c, int i, struct cfg_errors *errs)
{
    const struct route_config *routes = c->routes.v;
    const struct route_metrics_config *m = &routes[i].metrics;
    char key[64];
    double b[256];
    size_t n;
    int bad;
    if (route_metric_buckets(m, b, sizeof(b) / sizeof(b[0]), &n, &bad)) {
        snprintf(key, sizeof(key), "routes[%d].metrics.buckets", i);
        cfg_error(errs, c->file, key_line(c, key, item_line(&c->routes, i)), key,
                  "\"%s\" is not a number above the one before (at most 256 bounds)",
                  m->buckets.v[bad]);
    }
    struct metric_rules *rules;
    char err[512];
    if (metric_rules_build(m, routes[i].name ? routes[i].name : "", &rules, err, sizeof(err)) ==
        -EINVAL) {
        snprintf(key, sizeof(key), "routes[%d].metrics.declare", i);
        cfg_error(errs, c->file, key_line(c, key, item_line(&c->routes, i)), key, "%s", err);
    }
    metric_rules_free(rules);
    if (!m->route || !*m->route)
        return;
    for (int j = 0; j < c->routes.n; j++) {
        if (routes[j].name && !strcmp(routes[j].name, m->route))
            return;
    }
    snprintf(key, sizeof(key), "routes[%d].metrics.route", i);
    cfg_error(errs, c->file, key_line(c, key, item_line(&c->routes, i)), key,
              "no route named \"%s\"", m->route);
}

/* Checks that span sections, after every section loaded on its own. */
static void validate(struct config *c, struct cfg_errors *errs)
{
    check_unique(c, &c->inputs, "inputs", errs);
    check_unique(c, &c->sinks, "sinks", errs);
    check_uids(c, errs);
    const struct route_config *routes = c->routes.v;
    for (int i = 0; i < c->routes.n; i++) {
        char key[64];
        for (int j = 0; j < i; j++) {
            if (routes[i].name && routes[j].name && !strcmp(routes[i].name, routes[j].name)) {
                snprintf(key, sizeof(key), "routes[%d].name", i);
                cfg_error(errs, c->file, item_line(&c->routes, i), key,
                          "\"%s\" is duplicate (also on line %d)", routes[i].name,
                          item_line(&c->routes, j));
            }
        }
        snprintf(key, sizeof(key), "routes[%d].sinks", i);
        check_sink_refs(c, &routes[i].sinks, key_line(c, key, item_line(&c->routes, i)), key, errs);
        snprintf(key, sizeof(key), "routes[%d].shadow", i);
        check_sink_refs(c, &routes[i].shadow, key_line(c, key, item_line(&c->routes, i)), key,
                        errs);
        check_route_metrics(c, i, errs);
    }
    char names[1024];
    const char *single[2] = {c->dead_letter, c->fallback};
    const char *keys[2] = {"dead_letter", "fallback"};
    for (int k = 0; k < 2; k++) {
        if (single[k] && *single[k] && !sink_exists(c, single[k])) {
            sink_names(c, names, sizeof(names));
            cfg_error(errs, c->file, key_line(c, keys[k], 0), keys[k],
                      "no sink named \"%s\"; sinks: %s", single[k], names[0] ? names : "(none)");
        }
    }
    if (c->pipeline.when_full == PIPELINE_FULL_SPILL && !*c->pipeline.kafka.brokers)
        cfg_error(errs, c->file, key_line(c, "pipeline.when_full", 0), "pipeline.when_full",
                  "spill needs pipeline.kafka.brokers");
}

int config_load(const char *path, struct config *cfg, struct cfg_errors *errs)
{
    char *text = NULL;
    size_t len = 0;
    if (path) {
        int rc = fs_read_file(path, &text, &len);
        if (rc) {
            cfg_error(errs, path, 0, "config", "cannot read: %s", strerror(-rc));
            return -EINVAL;
        }
    }
    cfg->file = strdup(path ? path : CONFIG_EMBEDDED_NAME);
    int before = errs->count;
    cfg_load(&config_section, cfg, path ? text : embedded_config, path ? len : embedded_config_len,
             cfg->file, errs, &cfg->lines);
    free(text);
    validate(cfg, errs);
    return errs->count > before ? -EINVAL : 0;
}

void config_free(struct config *cfg)
{
    cfg_free(&config_section, cfg);
    cfg_linemap_free(&cfg->lines);
    free(cfg->file);
    cfg->file = NULL;
}

void config_warnings(const struct config *c, void (*fn)(void *ud, const char *msg), void *ud)
{
    char msg[512];
    if (c->pipeline.mode != PIPELINE_KAFKA)
        return;
    if (c->pipeline.role == ROLE_COLLECTOR && (c->routes.n || c->sinks.n)) {
        snprintf(msg, sizeof(msg),
                 "%s:%d: pipeline.role: collector: the %d routes and %d sinks here are not used "
                 "(router processes route and deliver)",
                 c->file, key_line(c, "pipeline.role", 0), c->routes.n, c->sinks.n);
        fn(ud, msg);
    }
    if (c->pipeline.role == ROLE_ROUTER && c->inputs.n) {
        snprintf(msg, sizeof(msg),
                 "%s:%d: pipeline.role: router: the %d inputs here are not opened (collector "
                 "processes receive)",
                 c->file, key_line(c, "pipeline.role", 0), c->inputs.n);
        fn(ud, msg);
    }
}

int config_partitions(const struct config *cfg)
{
    if (cfg->pipeline.partitions)
        return (int)cfg->pipeline.partitions;
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

void config_summary(const struct config *cfg, char *out, size_t len)
{
    snprintf(out, len, "%d inputs, %d routes, %d sinks, %d partitions%s, memory_limit %lld bytes",
             cfg->inputs.n, cfg->routes.n, cfg->sinks.n, config_partitions(cfg),
             cfg->pipeline.partitions ? "" : " (one per CPU)",
             (long long)cfg->pipeline.memory_limit);
}

struct router_setup config_router_setup(const struct config *cfg)
{
    return (struct router_setup){
        .router = &cfg->router,
        .routes = cfg->routes.v,
        .nroutes = cfg->routes.n,
        .dead_letter = cfg->dead_letter,
        .fallback = cfg->fallback,
    };
}

struct control_deps config_control_deps(const struct config *cfg)
{
    return (struct control_deps){
        .admin = &cfg->admin,
        .scripts = cfg->router.scripts,
        .memory_limit = cfg->pipeline.memory_limit,
        .config_root = &config_section,
        .config = cfg,
        .config_file = cfg->file,
    };
}
