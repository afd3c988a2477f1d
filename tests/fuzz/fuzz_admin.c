/* Admin requests, in process: the commands of control/admin_cmd.c (reached through
 * admin__command(), control/admin_int.h) run on a real configuration, store, sinks,
 * pipeline, router, collector and control plane built as app/app.c builds them, with no
 * thread started and no socket opened. The request is handled first as dispatch() in
 * core/admin.c does (JSON or not, an object, a "cmd" string, a known command), then given to a
 * command: its own "cmd" when that is one of version, stats, routes, sample, route, audit,
 * config, sinks or compare, else the one byte 0 picks (written into the request). reload (it
 * rereads script files) and tap (it needs a connection) are left out. After it, routes and
 * stats run too, so a change the command made is read back.
 *
 * The world is built anew for every input (about a millisecond), so a reproducer does not
 * depend on what ran before it: overrides and audit rows live in an in-memory SQLite database.
 *
 * What must hold: every response is a JSON object with a boolean "ok", an "error" string when
 * it is false, and serializes (admin__send drops a response json_dumps cannot write, which
 * would leave the client waiting forever); no crash, no leak. */
#include <event2/event.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <ftw.h>
#include <unistd.h>

#include "app/config.h"
#include "collector/collector.h"
#include "control/admin_int.h"
#include "control/control.h"
#include "fuzz.h"
#include "core/store.h"
#include "pipeline/pipeline.h"
#include "router/router.h"
#include "router/script_state.h"
#include "router/sinks/sink.h"

static const char *const commands[] = {"version", "stats",  "routes", "sample", "route",
                                       "audit",   "config", "sinks",  "compare"};
#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static char dir[64];
static struct config cfg;

struct world {
    struct event_base *base;
    struct store *st;
    struct script_state *script_state;
    struct sinks *sinks;
    struct pipeline *pl;
    struct router *router;
    struct collector *col;
    struct control *ctl;
};

static void write_file(const char *name, const char *text, size_t len)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || write(fd, text, len) != (ssize_t)len) {
        perror(path);
        abort();
    }
    close(fd);
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    return remove(path);
}

static void cleanup(void)
{
    config_free(&cfg);
    if (dir[0])
        nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    snprintf(dir, sizeof(dir), "/tmp/spillway-fuzz-admin-XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        abort();
    }
    char sub[128];
    snprintf(sub, sizeof(sub), "%s/scripts", dir);
    mkdir(sub, 0700);
    write_file("scripts/default.lua", embedded_default_script, embedded_default_script_len);
    write_file("scripts/keep.lua", "function process(ev) return ev.level ~= 'debug' end\n", 51);
    char yaml[2048];
    int n = snprintf(yaml, sizeof(yaml),
                     "data_dir: %s/data\n"
                     "admin: {socket: %s/admin.sock, http_token: secret}\n"
                     "inputs:\n"
                     "  - {name: app, type: tcp, listen: 127.0.0.1:0, format: ndjson}\n"
                     "  - {name: syslog, type: udp, listen: 127.0.0.1:0, format: syslog}\n"
                     "pipeline: {partitions: 2, memory_limit: 4MiB}\n"
                     "router: {scripts: %s/scripts}\n"
                     "routes:\n"
                     "  - {name: default, script: default.lua, sinks: [events]}\n"
                     "  - {name: keep, script: keep.lua, sample_rate: 0.5, sinks: [events],"
                     " shadow: [shadow]}\n"
                     "  - {name: all, sinks: [shadow], enabled: false}\n"
                     "sinks:\n"
                     "  - {name: events, type: \"null\"}\n"
                     "  - {name: shadow, type: \"null\"}\n"
                     "  - {name: dead, type: \"null\"}\n"
                     "dead_letter: dead\n",
                     dir, dir, dir);
    write_file("spillway.yaml", yaml, (size_t)n);
    char path[128];
    snprintf(path, sizeof(path), "%s/spillway.yaml", dir);
    struct cfg_errors errs = {0};
    if (config_load(path, &cfg, &errs)) {
        fprintf(stderr, "fuzz_admin: config: %s", errs.text.data);
        abort();
    }
    cfg_errors_free(&errs);
    atexit(cleanup);
    int null = open("/dev/null", O_WRONLY);
    log_set_fd(null);
    log_set_level(LOG_DEBUG); /* the log calls' formats run too, into /dev/null */
    return 0;
}

static void world_free(struct world *w)
{
    control_free(w->ctl);
    collector_free(w->col);
    router_free(w->router);
    pipeline_free(w->pl);
    sinks_free(w->sinks);
    script_state_free(w->script_state);
    store_close(w->st);
    if (w->base)
        event_base_free(w->base);
}

static void world_new(struct world *w)
{
    char err[1024] = "";
    memset(w, 0, sizeof(*w));
    w->base = event_base_new();
    w->st = store_open(":memory:", err, sizeof(err));
    w->script_state = w->st ? script_state_new(w->st) : NULL;
    w->sinks = w->script_state ? sinks_new(&cfg.sinks, 64 * 1024, cfg.dead_letter, err, sizeof(err))
                               : NULL;
    w->pl = w->sinks ? pipeline_new(&cfg.pipeline, 2, 64 * 1024) : NULL;
    struct router_setup setup = config_router_setup(&cfg);
    w->router = w->pl
                    ? router_new(&setup, w->pl, w->sinks, w->st, w->script_state, err, sizeof(err))
                    : NULL;
    w->col = w->router
                 ? collector_new(w->base, w->pl, w->st, &cfg.inputs, cfg.pipeline.partition_key)
                 : NULL;
    if (w->col) {
        struct control_deps deps = config_control_deps(&cfg);
        deps.router = w->router;
        deps.script_state = w->script_state;
        deps.store = w->st;
        deps.collector = w->col;
        deps.pipeline = w->pl;
        deps.sinks = w->sinks;
        w->ctl = control_new(&deps);
    }
    if (!w->base || !w->ctl) {
        fprintf(stderr, "fuzz_admin: cannot build the world: %s\n", err);
        abort();
    }
}

/* A response as admin__send() would write it. */
static void check_response(const char *cmd, json_t *resp)
{
    FUZZ_CHECK(json_is_object(resp), "%s: the response is not an object", cmd);
    json_t *ok = json_object_get(resp, "ok");
    FUZZ_CHECK(json_is_boolean(ok), "%s: the response has no boolean \"ok\"", cmd);
    if (json_is_false(ok))
        FUZZ_CHECK(json_is_string(json_object_get(resp, "error")),
                   "%s: a failure without an \"error\" string", cmd);
    char *text = json_dumps(resp, JSON_COMPACT);
    FUZZ_CHECK(text, "%s: the response does not serialize (the client would never get it)", cmd);
    fuzz_check_object(cmd, text, strlen(text), JSON_REJECT_DUPLICATES);
    free(text);
    json_decref(resp);
}

static int allowed(const char *cmd)
{
    for (size_t i = 0; i < NCOMMANDS; i++) {
        if (!strcmp(commands[i], cmd))
            return 1;
    }
    return 0;
}

static void run(struct admin *a, struct client *cl, const char *cmd, json_t *req)
{
    admin_cmd_fn fn = admin__command(cmd);
    FUZZ_CHECK(fn, "admin__command(\"%s\") is NULL", cmd);
    check_response(cmd, fn(a, cl, req));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const char *pick = commands[data[0] % NCOMMANDS];
    json_error_t jerr;
    json_t *req = json_loadb((const char *)data + 1, size - 1, 0, &jerr);
    if (!req) {
        check_response("not JSON", admin__fail("request is not JSON: %s", jerr.text));
        return 0;
    }
    if (!json_is_object(req)) {
        check_response("not an object",
                       admin__fail("a request is an object with a \"cmd\" string"));
        json_decref(req);
        return 0;
    }
    const char *cmd = json_string_value(json_object_get(req, "cmd"));
    if (cmd && !admin__command(cmd))
        check_response("unknown", admin__fail("unknown command \"%s\"; commands: %s", cmd,
                                              admin__command_names()));
    if (!cmd || !allowed(cmd)) {
        json_object_set_new(req, "cmd", json_string(pick));
        cmd = pick;
    }

    struct world w;
    world_new(&w);
    struct admin a = {.ctl = w.ctl};
    struct client cl = {.a = &a, .who = {.uid = 1000, .pid = 4242}};
    run(&a, &cl, cmd, req);
    json_decref(req);
    json_t *none = json_object();
    run(&a, &cl, "routes", none);
    run(&a, &cl, "stats", none);
    run(&a, &cl, "audit", none);
    json_decref(none);
    world_free(&w);
    return 0;
}
