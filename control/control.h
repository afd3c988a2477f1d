/* The control thread: the process's control plane, on its own libevent loop so that nothing
 * slow (SQLite writes, script compilation, admin clients) ever runs on the collector loop or a
 * router worker. It serves the admin socket, watches router.scripts with inotify (a save
 * hot-reloads), reverts expired runtime overrides, and flushes spillway.state to SQLite.
 * It borrows everything in struct control_deps, which must outlive it. */
#ifndef SPILLWAY_CONTROL_H
#define SPILLWAY_CONTROL_H

#include <stddef.h>
#include <stdint.h>

struct admin_config;
struct cfg_section;
struct router;
struct script_state;
struct store;
struct collector;
struct pipeline;
struct sinks;
struct control;

struct control_deps {
    const struct admin_config *admin;
    const char *scripts;  /* router.scripts, watched for saves */
    int64_t memory_limit; /* pipeline.memory_limit, for stats */
    /* The whole configuration as loaded, the table that describes it and its file, for
     * `spillway ctl config`. */
    const struct cfg_section *config_root;
    const void *config;
    const char *config_file;
    struct router *router;
    struct script_state *script_state;
    struct store *store;
    struct collector *collector;
    struct pipeline *pipeline;
    struct sinks *sinks;
};

struct control *control_new(const struct control_deps *deps);
void control_free(struct control *c);
/* Opens the admin socket and the inotify watch, starts the thread. 0 or a negative errno. */
int control_start(struct control *c, char *err, size_t errlen);
/* Thread-safe: asks the control thread to reload the scripts (SIGHUP). */
void control_request_reload(struct control *c);
/* Stops the thread after a last flush of spillway.state. */
void control_stop(struct control *c);

/* /ready: set once everything started, cleared when draining begins (any thread). */
void control_set_ready(struct control *c, int ready);
int control_ready(struct control *c);

/* For the admin module, on the control thread. */
const struct control_deps *control_deps(struct control *c);
struct event_base *control_base(struct control *c);

#endif
