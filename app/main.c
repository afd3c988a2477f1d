/* spillway: the command line. run, check, version (ctl comes with the admin socket). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/app.h"
#include "app/config.h"
#include "core/cfg.h"
#include "ctl/ctl.h"
#include "router/router.h"

static const char usage_main[] =
    "usage: spillway <command> [options]\n"
    "\n"
    "commands:\n"
    "  run [-c FILE]     run the pipeline (without -c: the embedded default config)\n"
    "  check -c FILE     validate a config and its scripts; exit 1 with FILE:LINE on error\n"
    "  ctl COMMAND       talk to a running spillway (stats, routes, sample, reload, ...)\n"
    "  version           print the version\n"
    "\n"
    "`spillway <command> --help` describes a command.\n";

static const char usage_run[] =
    "usage: spillway run [-c FILE]\n"
    "\n"
    "Runs the pipeline until SIGTERM or SIGINT, then drains in-flight events to the sinks\n"
    "within shutdown_timeout. SIGHUP reopens file sinks and reloads the route scripts.\n"
    "Without -c, runs the embedded default config: NDJSON on tcp 127.0.0.1:5170 and\n"
    "run/spillway.sock, events to data/out/events.ndjson.\n"
    "\n"
    "  -c, --config FILE   YAML config (see docs/config.md)\n";

static const char usage_check[] =
    "usage: spillway check -c FILE\n"
    "\n"
    "Validates the config (keys, types, values, references between sections) and compiles\n"
    "every route script. Prints FILE:LINE: key: message for each problem and exits 1, or\n"
    "prints a one-line summary and exits 0.\n";

static const char usage_version[] = "usage: spillway version\n\nPrints the version.\n";

static int want_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
            return 1;
    }
    return 0;
}

/* Parses -c/--config; returns 0, or 2 after printing usage on a bad option. */
static int parse_config_opt(int argc, char **argv, const char *usage, const char **path)
{
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {NULL, 0, NULL, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:", opts, NULL)) != -1) {
        if (c == 'c') {
            *path = optarg;
        } else {
            fputs(usage, stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "spillway: unexpected argument: %s\n", argv[optind]);
        fputs(usage, stderr);
        return 2;
    }
    return 0;
}

static int load(const char *path, struct config *cfg)
{
    struct cfg_errors errs = {0};
    int rc = config_load(path, cfg, &errs);
    if (rc) {
        fwrite(errs.text.data, 1, errs.text.len, stderr);
        if (errs.count > 50)
            fprintf(stderr, "... and %d more\n", errs.count - 50);
    }
    cfg_errors_free(&errs);
    return rc;
}

static int cmd_run(int argc, char **argv)
{
    if (want_help(argc, argv)) {
        fputs(usage_run, stdout);
        return 0;
    }
    const char *path = NULL;
    int rc = parse_config_opt(argc, argv, usage_run, &path);
    if (rc)
        return rc;
    struct config cfg = {0};
    if (load(path, &cfg)) {
        config_free(&cfg);
        return 2;
    }
    rc = app_run(&cfg, path == NULL);
    config_free(&cfg);
    return rc;
}

static void print_warning(void *ud, const char *msg)
{
    (void)ud;
    fprintf(stderr, "warning: %s\n", msg);
}

static int cmd_check(int argc, char **argv)
{
    if (want_help(argc, argv)) {
        fputs(usage_check, stdout);
        return 0;
    }
    const char *path = NULL;
    int rc = parse_config_opt(argc, argv, usage_check, &path);
    if (rc)
        return rc;
    if (!path) {
        fputs(usage_check, stderr);
        return 2;
    }
    struct config cfg = {0};
    if (load(path, &cfg)) {
        config_free(&cfg);
        return 1;
    }
    char err[1024] = "";
    struct router_setup setup = config_router_setup(&cfg);
    if (router_check_scripts(&setup, err, sizeof(err))) {
        fprintf(stderr, "%s\n", err);
        config_free(&cfg);
        return 1;
    }
    config_warnings(&cfg, print_warning, NULL);
    char summary[256];
    config_summary(&cfg, summary, sizeof(summary));
    printf("%s: ok: %s\n", path, summary);
    config_free(&cfg);
    return 0;
}

static int cmd_version(int argc, char **argv)
{
    if (want_help(argc, argv)) {
        fputs(usage_version, stdout);
        return 0;
    }
    printf("spillway %s\n", SPILLWAY_VERSION);
    return 0;
}

/* Prints the config reference generated from the key tables (docs/config.md is checked
 * against it). */
static int cmd_config_reference(int argc, char **argv)
{
    struct buf out = {0};
    cfg_reference(&config_section, &out);
    fwrite(out.data, 1, out.len, stdout);
    buf_free(&out);
    return 0;
}

int main(int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*fn)(int, char **);
    } cmds[] = {
        {"run", cmd_run},
        {"check", cmd_check},
        {"version", cmd_version},
        {"ctl", ctl_main},
        {"config-reference", cmd_config_reference},
    };
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
        !strcmp(argv[1], "help")) {
        fputs(usage_main, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "--version"))
        return cmd_version(1, argv);
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
        if (!strcmp(argv[1], cmds[i].name))
            return cmds[i].fn(argc - 1, argv + 1);
    }
    fprintf(stderr, "spillway: unknown command: %s\n\n%s", argv[1], usage_main);
    return 2;
}
