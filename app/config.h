/* The whole configuration: the top-level keys, the sections each module declares (pipeline,
 * inputs, router, routes, sinks) and the checks that span sections (names unique, every sink
 * a route names exists). Loading fills a struct config the caller owns and frees. */
#ifndef SPILLWAY_CONFIG_H
#define SPILLWAY_CONFIG_H

#include "control/admin.h"
#include "control/control.h"
#include "core/cfg.h"
#include "pipeline/pipeline.h"
#include "router/route.h"
#include "router/router.h"

struct config {
    char *data_dir;
    int log_level;
    int64_t shutdown_timeout;
    struct admin_config admin;
    struct cfg_list inputs; /* struct cfg_item, opts by input type */
    struct pipeline_config pipeline;
    struct router_config router;
    struct cfg_list routes; /* struct route_config */
    struct cfg_list sinks;  /* struct cfg_item, opts by sink type */
    char *dead_letter;
    char *fallback;
    char *file; /* where it was loaded from, for messages */
    struct cfg_linemap lines;
};

extern const struct cfg_section config_section;
extern const char embedded_config[];
extern const size_t embedded_config_len;
extern const char embedded_default_script[];
extern const size_t embedded_default_script_len;

#define CONFIG_EMBEDDED_NAME "<embedded conf/spillway.yaml>"

/* Loads and checks a file (path) or, with path NULL, the embedded default. Returns 0 or
 * -EINVAL with every problem in errs (FILE:LINE: key: message). cfg must be zeroed. */
int config_load(const char *path, struct config *cfg, struct cfg_errors *errs);
void config_free(struct config *cfg);

/* The number of partitions: pipeline.partitions, or one per CPU when it is 0. */
int config_partitions(const struct config *cfg);
/* Reports what loads fine but is unused (e.g. routes in a kafka-mode collector), one message
 * "FILE:LINE: ..." per call of fn. */
void config_warnings(const struct config *c, void (*fn)(void *ud, const char *msg), void *ud);
/* One line: "N inputs, N routes, N sinks, N partitions, memory_limit N bytes". */
void config_summary(const struct config *cfg, char *out, size_t len);

/* What the control plane borrows from cfg, with the other parts it serves (borrowed too). */
struct control_deps config_control_deps(const struct config *cfg);

/* What the router takes from cfg (borrowed: cfg must outlive the router). */
struct router_setup config_router_setup(const struct config *cfg);

#endif
