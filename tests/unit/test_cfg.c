/* Unit tests of the table-driven config loader (core/cfg.h) and of the whole configuration
 * (app/config.h): good files load into the right values, every kind of mistake is reported as
 * "FILE:LINE: key: message" on the right line with the valid choices, ${ENV} substitution,
 * the size converter, and freeing after errors. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "app/config.h"
#include "collector/input.h"
#include "core/cfg.h"
#include "router/sinks/sink.h"

/* ---- helpers ---- */

/* A config loaded through config_load() from a temporary file, so the cross-section checks
 * run too and messages carry a real path. */
struct loaded {
    struct config cfg;
    struct cfg_errors errs;
    char path[64];
    int rc;
};

static void write_temp(char *path, size_t len, const char *text)
{
    snprintf(path, len, "/tmp/spw_test_cfg_XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    size_t n = strlen(text);
    assert_int_equal(write(fd, text, n), (ssize_t)n);
    close(fd);
}

static void load_file(struct loaded *l, const char *yaml)
{
    memset(l, 0, sizeof(*l));
    write_temp(l->path, sizeof(l->path), yaml);
    l->rc = config_load(l->path, &l->cfg, &l->errs);
}

static void loaded_free(struct loaded *l)
{
    config_free(&l->cfg);
    cfg_errors_free(&l->errs);
    unlink(l->path);
}

static const char *errs_text(const struct cfg_errors *e)
{
    return e->text.data ? e->text.data : "";
}

/* True when "file:line: rest" is one whole line of the error text. */
static int has_error_line(const struct cfg_errors *e, const char *file, int line, const char *rest)
{
    char want[2048];
    snprintf(want, sizeof(want), "%s:%d: %s\n", file, line, rest);
    const char *text = errs_text(e);
    for (const char *p = text; (p = strstr(p, want)) != NULL; p++) {
        if (p == text || p[-1] == '\n')
            return 1;
    }
    return 0;
}

static void expect_error_line(const struct cfg_errors *e, const char *file, int line,
                              const char *rest)
{
    if (!has_error_line(e, file, line, rest)) {
        print_error("expected the line \"%s:%d: %s\" in the errors:\n%s", file, line, rest,
                    errs_text(e));
        fail();
    }
}

static const struct cfg_item *item(const struct cfg_list *l, int i)
{
    return cfg_list_item(l, i);
}

/* ---- good configs ---- */

static const char good_yaml[] = "data_dir: /var/lib/spw\n"                           /* 1 */
                                "log_level: debug\n"                                 /* 2 */
                                "shutdown_timeout: 500ms\n"                          /* 3 */
                                "admin:\n"                                           /* 4 */
                                "  socket: /run/spw.sock\n"                          /* 5 */
                                "  http: \"\"\n"                                     /* 6 */
                                "  http_token: s3cret\n"                             /* 7 */
                                "inputs:\n"                                          /* 8 */
                                "  - name: app\n"                                    /* 9 */
                                "    type: tcp\n"                                    /* 10 */
                                "    listen: 0.0.0.0:5170\n"                         /* 11 */
                                "    max_event_size: 64KiB\n"                        /* 12 */
                                "    aliases: {lvl: level, text: message}\n"         /* 13 */
                                "  - {name: local, type: unix, path: /tmp/x.sock}\n" /* 14 */
                                "pipeline:\n"                                        /* 15 */
                                "  partitions: 4\n"                                  /* 16 */
                                "  partition_key: \"\"\n"                            /* 17 */
                                "  memory_limit: 128MiB\n"                           /* 18 */
                                "  when_full: drop_newest\n"                         /* 19 */
                                "  kafka:\n"                                         /* 20 */
                                "    brokers: k1:9092,k2:9092\n"                     /* 21 */
                                "    properties:\n"                                  /* 22 */
                                "      security.protocol: SASL_SSL\n"                /* 23 */
                                "router:\n"                                          /* 24 */
                                "  scripts: /etc/spw/scripts\n"                      /* 25 */
                                "  max_instructions: 5000\n"                         /* 26 */
                                "routes:\n"                                          /* 27 */
                                "  - name: errors\n"                                 /* 28 */
                                "    script: errors.lua\n"                           /* 29 */
                                "    sample_rate: 0.25\n"                            /* 30 */
                                "    sinks: [events, archive]\n"                     /* 31 */
                                "    shadow: debug\n"                                /* 32 */
                                "    enabled: false\n"                               /* 33 */
                                "    stop: yes\n"                                    /* 34 */
                                "  - {name: rest, sinks: events}\n"                  /* 35 */
                                "sinks:\n"                                           /* 36 */
                                "  - {name: events, type: stdout, when_full: drop_newest}\n"
                                "  - {name: archive, type: file, path: /var/log/a.ndjson}\n"
                                "  - {name: debug, type: \"null\"}\n"
                                "dead_letter: archive\n"
                                "fallback: events\n";

static void test_good_config_values(void **state)
{
    struct loaded l;
    load_file(&l, good_yaml);
    if (l.rc != 0)
        print_error("%s", errs_text(&l.errs));
    assert_int_equal(l.rc, 0);
    assert_int_equal(l.errs.count, 0);
    const struct config *c = &l.cfg;

    assert_string_equal(c->data_dir, "/var/lib/spw");
    assert_int_equal(c->log_level, 0); /* debug */
    assert_int_equal(c->shutdown_timeout, 500000000);
    assert_string_equal(c->admin.socket, "/run/spw.sock");
    assert_string_equal(c->admin.http, "");
    assert_string_equal(c->admin.http_token, "s3cret");

    assert_int_equal(c->inputs.n, 2);
    assert_string_equal(item(&c->inputs, 0)->name, "app");
    assert_string_equal(item(&c->inputs, 0)->type, "tcp");
    assert_non_null(item(&c->inputs, 0)->variant);
    assert_string_equal(item(&c->inputs, 0)->variant->name, "tcp");
    assert_int_equal(c->inputs.lines[0], 9);
    const struct input_common *ic = item(&c->inputs, 0)->opts;
    assert_int_equal(ic->max_event_size, 65536);
    assert_int_equal(ic->aliases.n, 2);
    assert_string_equal(ic->aliases.key[0], "lvl");
    assert_string_equal(ic->aliases.val[0], "level");
    assert_string_equal(ic->aliases.key[1], "text");
    assert_string_equal(ic->aliases.val[1], "message");
    assert_ptr_equal(input_aliases(ic), &ic->aliases);
    assert_string_equal(item(&c->inputs, 1)->name, "local");
    assert_string_equal(item(&c->inputs, 1)->variant->name, "unix");
    assert_int_equal(c->inputs.lines[1], 14);
    const struct input_common *ic1 = item(&c->inputs, 1)->opts;
    assert_int_equal(ic1->max_event_size, 1048576); /* default 1MiB */
    assert_int_equal(ic1->aliases.n, 0);
    /* Without configured aliases the defaults apply. */
    const struct cfg_strmap *def = input_aliases(ic1);
    assert_int_equal(def->n, 3);
    assert_string_equal(def->key[0], "msg");
    assert_string_equal(def->val[0], "message");

    assert_int_equal(c->pipeline.partitions, 4);
    assert_string_equal(c->pipeline.partition_key, "");
    assert_int_equal(c->pipeline.memory_limit, 128LL * 1024 * 1024);
    assert_int_equal(c->pipeline.when_full, PIPELINE_FULL_DROP_NEWEST);
    assert_int_equal(c->pipeline.mode, PIPELINE_MEMORY);
    assert_int_equal(c->pipeline.role, ROLE_ALL);
    assert_string_equal(c->pipeline.kafka.brokers, "k1:9092,k2:9092");
    assert_string_equal(c->pipeline.kafka.topic, "spillway-spill");
    assert_int_equal(c->pipeline.kafka.properties.n, 1);
    assert_string_equal(c->pipeline.kafka.properties.key[0], "security.protocol");
    assert_string_equal(c->pipeline.kafka.properties.val[0], "SASL_SSL");

    assert_string_equal(c->router.scripts, "/etc/spw/scripts");
    assert_int_equal(c->router.max_instructions, 5000);
    assert_int_equal(c->router.lua_memory, 64LL * 1024 * 1024);

    assert_int_equal(c->routes.n, 2);
    const struct route_config *r = c->routes.v;
    assert_string_equal(r[0].name, "errors");
    assert_string_equal(r[0].script, "errors.lua");
    assert_float_equal(r[0].sample_rate, 0.25, 1e-12);
    assert_string_equal(r[0].sample_key, "trace_id");
    assert_int_equal(r[0].sinks.n, 2);
    assert_string_equal(r[0].sinks.v[0], "events");
    assert_string_equal(r[0].sinks.v[1], "archive");
    assert_int_equal(r[0].shadow.n, 1); /* a single value is a list of one */
    assert_string_equal(r[0].shadow.v[0], "debug");
    assert_int_equal(r[0].enabled, 0);
    assert_int_equal(r[0].stop, 1);
    assert_int_equal(c->routes.lines[0], 28);
    assert_string_equal(r[1].name, "rest");
    assert_string_equal(r[1].script, "");
    assert_int_equal(r[1].sinks.n, 1);
    assert_string_equal(r[1].sinks.v[0], "events");
    assert_int_equal(r[1].shadow.n, 0);
    assert_int_equal(r[1].enabled, 1);
    assert_int_equal(r[1].stop, 0);
    assert_float_equal(r[1].sample_rate, 1.0, 1e-12);
    assert_int_equal(c->routes.lines[1], 35);

    assert_int_equal(c->sinks.n, 3);
    assert_string_equal(item(&c->sinks, 0)->type, "stdout");
    assert_int_equal(((const struct sink_common *)item(&c->sinks, 0)->opts)->when_full,
                     SINK_FULL_DROP_NEWEST);
    assert_string_equal(item(&c->sinks, 1)->type, "file");
    assert_int_equal(((const struct sink_common *)item(&c->sinks, 1)->opts)->when_full,
                     SINK_FULL_BLOCK);
    assert_string_equal(item(&c->sinks, 2)->variant->name, "null");
    assert_string_equal(c->dead_letter, "archive");
    assert_string_equal(c->fallback, "events");

    char summary[256];
    config_summary(c, summary, sizeof(summary));
    assert_non_null(strstr(summary, "2 inputs, 2 routes, 3 sinks"));
    loaded_free(&l);
}

/* The effective config as JSON: variant options are visible and secrets are redacted. */
static void test_good_config_dump(void **state)
{
    struct loaded l;
    load_file(&l, good_yaml);
    assert_int_equal(l.rc, 0);
    json_t *d = cfg_dump(&config_section, &l.cfg);
    assert_non_null(d);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(d, "admin"), "http_token")),
        "<redacted>");
    json_t *in0 = json_array_get(json_object_get(d, "inputs"), 0);
    assert_string_equal(json_string_value(json_object_get(in0, "name")), "app");
    assert_string_equal(json_string_value(json_object_get(in0, "listen")), "0.0.0.0:5170");
    assert_int_equal(json_integer_value(json_object_get(in0, "max_event_size")), 65536);
    assert_int_equal(json_integer_value(json_object_get(in0, "max_connections")), 1024);
    json_t *in1 = json_array_get(json_object_get(d, "inputs"), 1);
    assert_string_equal(json_string_value(json_object_get(in1, "path")), "/tmp/x.sock");
    assert_string_equal(json_string_value(json_object_get(in1, "mode")), "0660");
    json_t *s1 = json_array_get(json_object_get(d, "sinks"), 1);
    assert_string_equal(json_string_value(json_object_get(s1, "path")), "/var/log/a.ndjson");
    assert_string_equal(json_string_value(json_object_get(s1, "when_full")), "block");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(d, "pipeline"), "when_full")),
        "drop_newest");
    assert_string_equal(json_string_value(json_object_get(d, "shutdown_timeout")), "0.5s");
    json_decref(d);

    /* An empty secret stays visibly empty rather than "<redacted>". */
    struct config c;
    memset(&c, 0, sizeof(c));
    struct cfg_errors e = {0};
    assert_int_equal(cfg_load(&config_section, &c, "", 0, "t.yaml", &e, NULL), 0);
    d = cfg_dump(&config_section, &c);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(d, "admin"), "http_token")), "");
    json_decref(d);
    cfg_free(&config_section, &c);
    cfg_errors_free(&e);
    loaded_free(&l);
}

/* A password in a URL's userinfo is redacted in the dump wherever a URL is written (any string,
 * several URLs in one value, list items, map values); the rest of the URL is kept. */
static void test_dump_redacts_url_passwords(void **state)
{
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"http://user:secret@es:9200/_bulk", "http://user:<redacted>@es:9200/_bulk"},
        {"http://es:9200/x@y:z", "http://es:9200/x@y:z"},                    /* '@' in the path */
        {"http://user@es:9200/", "http://user@es:9200/"},                    /* no password */
        {"https://u:p:q@[::1]:8088/c", "https://u:<redacted>@[::1]:8088/c"}, /* ':' in it, IPv6 */
        {"sasl://a:one@h1:9092, sasl://b:two@h2:9092", "sasl://a:<redacted>@h1:9092, "
                                                       "sasl://b:<redacted>@h2:9092"},
        {"no url: here", "no url: here"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char yaml[512];
        snprintf(yaml, sizeof(yaml),
                 "sinks:\n  - {name: s, type: http, url: \"%s\", headers: {X: \"%s\"}}\n"
                 "routes: [{name: r, sinks: [s], shadow: [\"%s\"]}]\n",
                 cases[i].in, cases[i].in, cases[i].in);
        struct config c;
        memset(&c, 0, sizeof(c));
        struct cfg_errors e = {0};
        assert_int_equal(cfg_load(&config_section, &c, yaml, strlen(yaml), "t.yaml", &e, NULL), 0);
        json_t *d = cfg_dump(&config_section, &c);
        json_t *sink = json_array_get(json_object_get(d, "sinks"), 0);
        json_t *route = json_array_get(json_object_get(d, "routes"), 0);
        assert_string_equal(json_string_value(json_object_get(sink, "url")), cases[i].out);
        assert_string_equal(json_string_value(json_array_get(json_object_get(route, "shadow"), 0)),
                            cases[i].out);
        json_decref(d);
        cfg_free(&config_section, &c);
        cfg_errors_free(&e);
    }
}

/* cfg_load straight from a string (no cross-section checks). */
static void test_cfg_load_string(void **state)
{
    static const char yaml[] = "log_level: warn\n"
                               "pipeline: {partitions: 8, when_full: spill, mode: kafka,"
                               " role: router, kafka: {brokers: \"b:9092\"}}\n"
                               "router: {lua_memory: 1GiB}\n";
    struct config c;
    memset(&c, 0, sizeof(c));
    struct cfg_errors e = {0};
    int rc = cfg_load(&config_section, &c, yaml, strlen(yaml), "inline.yaml", &e, NULL);
    if (rc)
        print_error("%s", errs_text(&e));
    assert_int_equal(rc, 0);
    assert_int_equal(e.count, 0);
    assert_int_equal(c.log_level, 2);
    assert_int_equal(c.pipeline.partitions, 8);
    assert_int_equal(c.pipeline.when_full, PIPELINE_FULL_SPILL);
    assert_int_equal(c.pipeline.mode, PIPELINE_KAFKA);
    assert_int_equal(c.pipeline.role, ROLE_ROUTER);
    assert_string_equal(c.pipeline.kafka.brokers, "b:9092");
    assert_int_equal(c.router.lua_memory, 1073741824LL);
    assert_string_equal(c.data_dir, "./data");
    cfg_free(&config_section, &c);
    cfg_errors_free(&e);
}

static void test_embedded_default(void **state)
{
    struct config c;
    memset(&c, 0, sizeof(c));
    struct cfg_errors e = {0};
    int rc = config_load(NULL, &c, &e);
    if (rc)
        print_error("%s", errs_text(&e));
    assert_int_equal(rc, 0);
    assert_int_equal(e.count, 0);
    assert_string_equal(c.file, CONFIG_EMBEDDED_NAME);
    assert_int_equal(c.inputs.n, 5);
    assert_string_equal(item(&c.inputs, 0)->name, "app");
    assert_string_equal(item(&c.inputs, 0)->type, "tcp");
    assert_string_equal(item(&c.inputs, 1)->name, "local");
    assert_string_equal(item(&c.inputs, 1)->type, "unix");
    assert_string_equal(item(&c.inputs, 2)->type, "udp");
    assert_string_equal(item(&c.inputs, 3)->type, "http");
    assert_string_equal(item(&c.inputs, 4)->type, "otlp_grpc");
    assert_int_equal(c.routes.n, 1);
    assert_int_equal(c.sinks.n, 2);
    assert_int_equal(c.pipeline.partitions, 2);
    assert_int_equal(c.pipeline.memory_limit, 64LL * 1024 * 1024);
    assert_string_equal(c.pipeline.partition_key, "trace_id");
    assert_string_equal(c.dead_letter, "deadletter");
    assert_int_equal(c.log_level, 1);
    assert_int_equal(c.shutdown_timeout, 10000000000LL);
    config_free(&c);
    /* Freeing twice is harmless: config_free leaves everything NULL. */
    config_free(&c);
    cfg_errors_free(&e);
}

static void check_all_defaults(const struct config *c)
{
    assert_string_equal(c->data_dir, "./data");
    assert_int_equal(c->log_level, 1);
    assert_int_equal(c->shutdown_timeout, 10000000000LL);
    assert_string_equal(c->admin.socket, "./run/admin.sock");
    assert_string_equal(c->admin.http, "127.0.0.1:8686");
    assert_string_equal(c->admin.http_token, "");
    assert_int_equal(c->inputs.n, 0);
    assert_int_equal(c->pipeline.partitions, 0);
    assert_string_equal(c->pipeline.partition_key, "trace_id");
    assert_int_equal(c->pipeline.memory_limit, 64LL * 1024 * 1024);
    assert_int_equal(c->pipeline.when_full, PIPELINE_FULL_BLOCK);
    assert_string_equal(c->pipeline.kafka.brokers, "");
    assert_string_equal(c->pipeline.kafka.group, "spillway");
    assert_string_equal(c->router.scripts, "./scripts");
    assert_int_equal(c->router.max_instructions, 1000000);
    assert_int_equal(c->routes.n, 0);
    assert_int_equal(c->sinks.n, 0);
    assert_string_equal(c->dead_letter, "");
    assert_string_equal(c->fallback, "");
}

static void test_empty_file_all_defaults(void **state)
{
    static const char *const texts[] = {"", "# only a comment\n", "---\n", "\n\n"};
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        struct loaded l;
        load_file(&l, texts[i]);
        if (l.rc)
            print_error("text %zu: %s", i, errs_text(&l.errs));
        assert_int_equal(l.rc, 0);
        assert_int_equal(l.errs.count, 0);
        check_all_defaults(&l.cfg);
        loaded_free(&l);
    }
}

/* "key:" with nothing after it means the default, not an error. */
static void test_empty_scalar_is_default(void **state)
{
    struct loaded l;
    load_file(&l, "pipeline:\n  partitions:\n  memory_limit:\nshutdown_timeout:\n");
    assert_int_equal(l.rc, 0);
    assert_int_equal(l.cfg.pipeline.partitions, 0);
    assert_int_equal(l.cfg.pipeline.memory_limit, 64LL * 1024 * 1024);
    assert_int_equal(l.cfg.shutdown_timeout, 10000000000LL);
    loaded_free(&l);
}

/* ---- errors: one row per kind of mistake ---- */

struct err_case {
    const char *yaml;
    int line;
    const char *rest; /* "key: message" */
    int count;        /* exact number of problems */
};

static const struct err_case err_cases[] = {
    /* unknown keys, with the valid keys listed */
    {"data_dir: x\nbogus: 1\n", 2,
     "bogus: unknown key; valid keys: data_dir, log_level, shutdown_timeout, admin, inputs, "
     "pipeline, router, routes, sinks, dead_letter, fallback",
     1},
    {"pipeline:\n  partitions: 2\n  partitons: 4\n", 3,
     "pipeline.partitons: unknown key; valid keys: partitions, partition_key, memory_limit, "
     "when_full, mode, role, kafka",
     1},
    {"admin:\n  sockett: x\n", 2,
     "admin.sockett: unknown key; valid keys: socket, socket_mode, allow_uids, http, http_token",
     1},
    {"inputs:\n  - name: a\n    type: tcp\n    listen: x:1\n    lisen: y\n", 5,
     "inputs[0].lisen: unknown key; valid keys: name, type, listen, max_event_size, aliases, "
     "format, max_connections, idle_timeout",
     1},
    {"sinks:\n  - {name: a, type: file, path: /x, colour: red}\n", 2,
     "sinks[0].colour: unknown key; valid keys: name, type, path, when_full, circuit_after, "
     "circuit_wait, max_size, max_age, keep, fsync, page_cache",
     1},
    /* a mapping or a list where a single value is expected, and the reverse */
    {"pipeline:\n  when_full: {a: b}\n", 2, "pipeline.when_full: expected a value, got a mapping",
     1},
    {"data_dir: [a, b]\n", 1, "data_dir: expected a value, got a list", 1},
    {"log_level: info\npipeline: 5\n", 2, "pipeline: expected a mapping, got a value", 1},
    {"inputs: {a: 1}\n", 1, "inputs: expected a list, got a mapping", 1},
    {"routes:\n  - just-a-name\n", 2, "routes[0]: expected a mapping, got a value", 1},
    {"routes:\n  - {name: r, sinks: {a: b}}\n", 2,
     "routes[0].sinks: expected a list of values, got a mapping", 1},
    {"pipeline:\n  kafka:\n    properties: [a]\n", 3,
     "pipeline.kafka.properties: expected a mapping, got a list", 1},
    {"- a\n- b\n", 1, "config: the top level must be a mapping", 1},
    /* bad enum values list the choices */
    {"pipeline:\n  when_full: sometimes\n", 2,
     "pipeline.when_full: \"sometimes\" is not valid; choose one of: block, drop_newest, spill", 1},
    {"log_level: loud\n", 1,
     "log_level: \"loud\" is not valid; choose one of: debug, info, warn, error", 1},
    {"sinks:\n  - {name: a, type: stdout, when_full: wait}\n", 2,
     "sinks[0].when_full: \"wait\" is not valid; choose one of: block, drop_newest", 1},
    /* sizes, durations, numbers */
    {"pipeline:\n  memory_limit: lots\n", 2,
     "pipeline.memory_limit: \"lots\" is not a size (e.g. 512, 64KiB, 64MiB, 1GiB)", 1},
    {"shutdown_timeout: soon\n", 1,
     "shutdown_timeout: \"soon\" is not a duration (e.g. 500ms, 10s, 15m, 1h)", 1},
    {"shutdown_timeout: -5s\n", 1,
     "shutdown_timeout: \"-5s\" is not a duration (e.g. 500ms, 10s, 15m, 1h)", 1},
    {"pipeline:\n  partitions: four\n", 2, "pipeline.partitions: \"four\" is not an integer", 1},
    {"routes:\n  - {name: r, enabled: maybe}\n", 2,
     "routes[0].enabled: \"maybe\" is not a boolean (true or false)", 1},
    {"routes:\n  - {name: r, sample_rate: half}\n", 2,
     "routes[0].sample_rate: \"half\" is not a number", 1},
    /* out of range */
    {"pipeline:\n  partitions: 9999\n", 2, "pipeline.partitions: must be between 0 and 256", 1},
    {"pipeline:\n  partitions: -1\n", 2, "pipeline.partitions: must be between 0 and 256", 1},
    {"routes:\n  - {name: r, sample_rate: 1.5}\n", 2,
     "routes[0].sample_rate: must be between 0 and 1", 1},
    {"shutdown_timeout: 2h\n", 1, "shutdown_timeout: must be between 0s and 3600s", 1},
    /* duplicate keys */
    {"log_level: info\nlog_level: debug\n", 2, "log_level: is duplicate", 1},
    {"pipeline:\n  partitions: 2\n  when_full: block\n  partitions: 3\n", 4,
     "pipeline.partitions: is duplicate", 1},
    {"inputs:\n  - name: a\n    type: tcp\n    listen: x:1\n    listen: y:2\n", 5,
     "inputs[0].listen: is duplicate", 1},
    /* unknown item types list the valid types */
    {"inputs:\n  - {name: a, type: carrier_pigeon}\n", 2,
     "inputs[0].type: \"carrier_pigeon\" is not valid; choose one of: tcp, unix, udp, "
     "unix_dgram, http, otlp_grpc, statsd, prometheus_scrape, tail, stdin, forward, journald",
     1},
    {"sinks:\n  - {name: s, type: fax}\n", 2,
     "sinks[0].type: \"fax\" is not valid; choose one of: file, stdout, null, http, otlp, "
     "prometheus_remote_write, tcp, unix, kafka",
     1},
    /* missing required keys */
    {"inputs:\n  - {name: a, type: tcp}\n", 2, "inputs[0].listen: is required", 1},
    {"inputs:\n  - name: a\n    type: unix\n", 2, "inputs[0].path: is required", 1},
    {"inputs:\n  - {type: tcp, listen: \"y:2\"}\n", 2, "inputs[0].name: is required", 1},
    {"inputs:\n  - {name: a, listen: \"y:2\"}\n", 2,
     "inputs[0].type: is required; choose one of: tcp, unix, udp, unix_dgram, http, otlp_grpc, "
     "statsd, prometheus_scrape, tail, stdin, forward, journald",
     1},
    {"sinks:\n  - {name: f, type: file}\n", 2, "sinks[0].path: is required", 1},
    {"routes:\n  - {sinks: []}\n", 2, "routes[0].name: is required", 1},
    /* ${ENV} */
    {"data_dir: ${SPW_TEST_SURELY_UNSET}/x\n", 1,
     "data_dir: environment variable SPW_TEST_SURELY_UNSET is not set (use "
     "${SPW_TEST_SURELY_UNSET:-default})",
     1},
    {"routes:\n  - name: r\n    sinks:\n      - ${SPW_TEST_SURELY_UNSET}\n", 4,
     "routes[0].sinks: environment variable SPW_TEST_SURELY_UNSET is not set (use "
     "${SPW_TEST_SURELY_UNSET:-default})",
     1},
    {"data_dir: ${UNCLOSED\n", 1, "data_dir: unterminated ${ in \"${UNCLOSED\"", 1},
    {"data_dir: a${}b\n", 1, "data_dir: bad variable name in \"a${}b\"", 1},
    /* YAML syntax errors carry the line of the problem */
    {"data_dir: x\nlog_level: info\n  bad: indent\n", 3,
     "yaml: mapping values are not allowed in this context", 1},
    {"data_dir: x\nadmin:\n  socket: \"unterminated\n", 4,
     "yaml: found unexpected end of stream while scanning a quoted scalar", 1},
};

static void test_errors_table(void **state)
{
    int failed = 0;
    for (size_t i = 0; i < sizeof(err_cases) / sizeof(err_cases[0]); i++) {
        const struct err_case *c = &err_cases[i];
        struct loaded l;
        load_file(&l, c->yaml);
        if (l.rc != -EINVAL || l.errs.count != c->count ||
            !has_error_line(&l.errs, l.path, c->line, c->rest)) {
            print_error("case %zu: yaml:\n%s\nwant %d problem(s) incl. line %d \"%s\"; got rc %d, "
                        "%d problem(s):\n%s",
                        i, c->yaml, c->count, c->line, c->rest, l.rc, l.errs.count,
                        errs_text(&l.errs));
            failed++;
        }
        loaded_free(&l);
    }
    assert_int_equal(failed, 0);
}

/* Every problem in a file is reported, each on its own line. */
static void test_errors_accumulate(void **state)
{
    struct loaded l;
    load_file(&l, "data_dir: x\n"
                  "bogus: 1\n"
                  "pipeline:\n"
                  "  when_full: sometimes\n"
                  "  memory_limit: lots\n"
                  "  partitions: 9999\n");
    assert_int_equal(l.rc, -EINVAL);
    assert_int_equal(l.errs.count, 4);
    expect_error_line(&l.errs, l.path, 2,
                      "bogus: unknown key; valid keys: data_dir, log_level, "
                      "shutdown_timeout, admin, inputs, pipeline, router, "
                      "routes, sinks, dead_letter, fallback");
    expect_error_line(&l.errs, l.path, 4,
                      "pipeline.when_full: \"sometimes\" is not valid; choose one of: block, "
                      "drop_newest, spill");
    expect_error_line(&l.errs, l.path, 5,
                      "pipeline.memory_limit: \"lots\" is not a size (e.g. 512, 64KiB, 64MiB, "
                      "1GiB)");
    expect_error_line(&l.errs, l.path, 6, "pipeline.partitions: must be between 0 and 256");
    /* Good keys next to bad ones still load. */
    assert_string_equal(l.cfg.data_dir, "x");
    loaded_free(&l);
}

static void test_error_cap(void **state)
{
    struct buf y = {0};
    for (int i = 0; i < 60; i++)
        buf_printf(&y, "bogus%d: 1\n", i);
    struct config c;
    memset(&c, 0, sizeof(c));
    struct cfg_errors e = {0};
    assert_int_equal(cfg_load(&config_section, &c, y.data, y.len, "t.yaml", &e, NULL), -EINVAL);
    assert_int_equal(e.count, 60);
    int lines = 0;
    for (size_t i = 0; i < e.text.len; i++)
        lines += e.text.data[i] == '\n';
    assert_int_equal(lines, 50);
    expect_error_line(&e, "t.yaml", 1,
                      "bogus0: unknown key; valid keys: data_dir, log_level, shutdown_timeout, "
                      "admin, inputs, pipeline, router, routes, sinks, dead_letter, fallback");
    cfg_free(&config_section, &c);
    cfg_errors_free(&e);
    buf_free(&y);
}

/* Checks that span sections (config_load only). */
static void test_cross_section_errors(void **state)
{
    struct loaded l;
    load_file(&l, "sinks:\n"                              /* 1 */
                  "  - {name: s, type: \"null\"}\n"       /* 2 */
                  "  - {name: s, type: stdout}\n"         /* 3 */
                  "  - {name: t, type: \"null\"}\n"       /* 4 */
                  "routes:\n"                             /* 5 */
                  "  - {name: r, sinks: [nope, s]}\n"     /* 6 */
                  "  - {name: r, shadow: [gone]}\n"       /* 7 */
                  "inputs:\n"                             /* 8 */
                  "  - {name: i, type: unix, path: /a}\n" /* 9 */
                  "  - {name: i, type: unix, path: /b}\n" /* 10 */
    );
    assert_int_equal(l.rc, -EINVAL);
    assert_int_equal(l.errs.count, 5);
    expect_error_line(&l.errs, l.path, 3, "sinks: name \"s\" is duplicate (also on line 2)");
    expect_error_line(&l.errs, l.path, 10, "inputs: name \"i\" is duplicate (also on line 9)");
    expect_error_line(&l.errs, l.path, 6,
                      "routes[0].sinks: no sink named \"nope\"; sinks: s, s, t");
    expect_error_line(&l.errs, l.path, 7,
                      "routes[1].shadow: no sink named \"gone\"; sinks: s, s, t");
    expect_error_line(&l.errs, l.path, 7, "routes[1].name: \"r\" is duplicate (also on line 6)");
    loaded_free(&l);

    /* With no sinks at all the message says so. */
    load_file(&l, "routes:\n  - {name: r, sinks: x}\n");
    assert_int_equal(l.rc, -EINVAL);
    assert_int_equal(l.errs.count, 1);
    expect_error_line(&l.errs, l.path, 2, "routes[0].sinks: no sink named \"x\"; sinks: (none)");
    loaded_free(&l);
}

/* Out-of-range messages quote the real limits: a size bound printed with %g would read
 * "1.04858e+06 and 1.09951e+12" for 1MiB..1TiB, which is not what the key accepts. */
static void test_bounds_message_exact(void **state)
{
    static const struct {
        const char *yaml;
        const char *key;
        const char *lo[2], *hi[3];
    } cases[] = {
        {"pipeline:\n  memory_limit: 1KiB\n",
         "pipeline.memory_limit: must be between ",
         {"1048576", "1MiB"},
         {"1099511627776", "1TiB", "1024GiB"}},
        {"router:\n  max_instructions: 10\n",
         "router.max_instructions: must be between ",
         {"1000", "1000"},
         {"1000000000", "1000000000", "1000000000"}},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct loaded l;
        load_file(&l, cases[i].yaml);
        assert_int_equal(l.rc, -EINVAL);
        assert_int_equal(l.errs.count, 1);
        const char *msg = strstr(errs_text(&l.errs), cases[i].key);
        assert_non_null(msg);
        msg += strlen(cases[i].key);
        char lo[64], hi[64];
        assert_int_equal(sscanf(msg, "%63s and %63s", lo, hi), 2);
        int lo_ok = !strcmp(lo, cases[i].lo[0]) || !strcmp(lo, cases[i].lo[1]);
        int hi_ok = !strcmp(hi, cases[i].hi[0]) || !strcmp(hi, cases[i].hi[1]) ||
                    !strcmp(hi, cases[i].hi[2]);
        if (!lo_ok || !hi_ok) {
            print_error("inexact bounds in: %s", errs_text(&l.errs));
            loaded_free(&l);
            fail();
        }
        loaded_free(&l);
    }
}

/* Regression (was a bug, fixed): core/config.c validate() reports a dead_letter / fallback naming a
 * missing sink (and "spill needs pipeline.kafka.brokers") with line 0 instead of the line of the
 * key, because cfg_load keeps no line for scalar keys. FILE:0 is not a location a user can go to.
 */
static void test_cross_section_error_lines(void **state)
{
    struct loaded l;
    load_file(&l, "sinks:\n"                        /* 1 */
                  "  - {name: s, type: \"null\"}\n" /* 2 */
                  "dead_letter: gone\n"             /* 3 */
                  "fallback: away\n"                /* 4 */
                  "pipeline:\n"                     /* 5 */
                  "  when_full: spill\n");          /* 6 */
    int rc = l.rc, count = l.errs.count;
    int ok = has_error_line(&l.errs, l.path, 3, "dead_letter: no sink named \"gone\"; sinks: s") &&
             has_error_line(&l.errs, l.path, 4, "fallback: no sink named \"away\"; sinks: s") &&
             has_error_line(&l.errs, l.path, 6,
                            "pipeline.when_full: spill needs pipeline.kafka.brokers");
    if (!ok)
        print_error("want lines 3, 4 and 6 in:\n%s", errs_text(&l.errs));
    loaded_free(&l);
    assert_int_equal(rc, -EINVAL);
    assert_int_equal(count, 3);
    assert_true(ok);
}

/* Regression (was a bug, fixed): core/cfg.c load_variant_item() reads `name` and `type` of an input
 * or sink itself and silently keeps the last of two; every other repeated key is reported "is
 * duplicate". */
static void test_duplicate_name_in_item(void **state)
{
    static const struct {
        const char *yaml;
        const char *rest;
    } cases[] = {
        {"sinks:\n  - name: a\n    type: stdout\n    name: b\n", "sinks[0].name: is duplicate"},
        {"sinks:\n  - name: a\n    type: stdout\n    type: \"null\"\n",
         "sinks[0].type: is duplicate"},
    };
    int bad = 0;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct loaded l;
        load_file(&l, cases[i].yaml);
        if (l.rc != -EINVAL || !has_error_line(&l.errs, l.path, 4, cases[i].rest)) {
            print_error("want \"%s\" on line 4; rc %d, errors:\n%s", cases[i].rest, l.rc,
                        errs_text(&l.errs));
            bad++;
        }
        loaded_free(&l);
    }
    assert_int_equal(bad, 0);
}

/* A syntax error still leaves every field at its default and safe to free. */
static void test_syntax_error_leaves_defaults(void **state)
{
    static const char yaml[] = "data_dir: x\nroutes: [ {name: r\n";
    struct config c;
    memset(&c, 0, sizeof(c));
    struct cfg_errors e = {0};
    assert_int_equal(cfg_load(&config_section, &c, yaml, strlen(yaml), "t.yaml", &e, NULL),
                     -EINVAL);
    assert_int_equal(e.count, 1);
    assert_non_null(strstr(errs_text(&e), "t.yaml:3: yaml: "));
    check_all_defaults(&c);
    cfg_free(&config_section, &c);
    cfg_free(&config_section, &c);
    cfg_errors_free(&e);
}

/* After every kind of error the half-filled config frees cleanly (run under ASan/LSan). */
static void test_free_after_errors(void **state)
{
    for (size_t i = 0; i < sizeof(err_cases) / sizeof(err_cases[0]); i++) {
        struct config c;
        memset(&c, 0, sizeof(c));
        struct cfg_errors e = {0};
        const char *y = err_cases[i].yaml;
        assert_int_equal(cfg_load(&config_section, &c, y, strlen(y), "t.yaml", &e, NULL), -EINVAL);
        cfg_free(&config_section, &c);
        /* Every pointer is cleared, so a second free is a no-op. */
        assert_null(c.data_dir);
        assert_null(c.inputs.v);
        assert_null(c.routes.v);
        cfg_free(&config_section, &c);
        cfg_errors_free(&e);
        assert_null(e.text.data);
        assert_int_equal(e.count, 0);
    }
    struct config z;
    memset(&z, 0, sizeof(z));
    config_free(&z); /* never loaded */
}

static void test_unreadable_file(void **state)
{
    struct config c;
    memset(&c, 0, sizeof(c));
    struct cfg_errors e = {0};
    assert_int_equal(config_load("/nonexistent/spw/x.yaml", &c, &e), -EINVAL);
    assert_int_equal(e.count, 1);
    expect_error_line(&e, "/nonexistent/spw/x.yaml", 0,
                      "config: cannot read: No such file or directory");
    config_free(&c);
    cfg_errors_free(&e);
}

/* ---- ${ENV} ---- */

static void test_env_substitution(void **state)
{
    setenv("SPW_T_DIR", "/srv/spw", 1);
    setenv("SPW_T_MEM", "128MiB", 1);
    setenv("SPW_T_SINK", "events", 1);
    setenv("SPW_T_EMPTY", "", 1);
    unsetenv("SPW_T_UNSET");
    struct loaded l;
    load_file(&l, "data_dir: ${SPW_T_DIR}/data\n"
                  "admin:\n"
                  "  socket: ${SPW_T_UNSET:-/run/default.sock}\n"
                  "  http: ${SPW_T_EMPTY:-127.0.0.1:9}\n"
                  "  http_token: ${SPW_T_EMPTY}\n"
                  "pipeline:\n"
                  "  memory_limit: ${SPW_T_MEM}\n"
                  "  partition_key: cost$$5 $${SPW_T_DIR} ${SPW_T_UNSET:-}x\n"
                  "routes:\n"
                  "  - {name: r, sinks: [\"${SPW_T_SINK}\"]}\n"
                  "sinks:\n"
                  "  - {name: \"${SPW_T_SINK}\", type: \"null\"}\n");
    if (l.rc)
        print_error("%s", errs_text(&l.errs));
    assert_int_equal(l.rc, 0);
    assert_string_equal(l.cfg.data_dir, "/srv/spw/data");
    assert_string_equal(l.cfg.admin.socket, "/run/default.sock");
    /* Set but empty with a default: the default, as in the shell. */
    assert_string_equal(l.cfg.admin.http, "127.0.0.1:9");
    /* Set but empty without a default: empty, not an error. */
    assert_string_equal(l.cfg.admin.http_token, "");
    assert_int_equal(l.cfg.pipeline.memory_limit, 128LL * 1024 * 1024);
    assert_string_equal(l.cfg.pipeline.partition_key, "cost$5 ${SPW_T_DIR} x");
    assert_string_equal(((const struct route_config *)l.cfg.routes.v)[0].sinks.v[0], "events");
    assert_string_equal(item(&l.cfg.sinks, 0)->name, "events");
    loaded_free(&l);
    unsetenv("SPW_T_DIR");
    unsetenv("SPW_T_MEM");
    unsetenv("SPW_T_SINK");
    unsetenv("SPW_T_EMPTY");
}

/* A substituted value is checked like a literal one. */
static void test_env_value_is_validated(void **state)
{
    setenv("SPW_T_PARTS", "many", 1);
    struct loaded l;
    load_file(&l, "pipeline:\n  partitions: ${SPW_T_PARTS}\n");
    assert_int_equal(l.rc, -EINVAL);
    assert_int_equal(l.errs.count, 1);
    expect_error_line(&l.errs, l.path, 2, "pipeline.partitions: \"many\" is not an integer");
    loaded_free(&l);
    unsetenv("SPW_T_PARTS");
}

/* ---- converters ---- */

static void test_parse_size(void **state)
{
    static const struct {
        const char *s;
        int64_t want;
    } good[] = {
        {"0", 0},           {"512", 512},         {"512B", 512},
        {"64KiB", 65536},   {"64MiB", 67108864},  {"1GiB", 1073741824},
        {"10MB", 10000000}, {"1KB", 1000},        {"2GB", 2000000000},
        {"1.5KiB", 1536},   {"64 KiB", 65536},    {"4K", 4096},
        {"3M", 3145728},    {"2G", 2147483648LL}, {"1024GiB", 1099511627776LL},
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        int64_t v = -1;
        int rc = cfg_parse_size(good[i].s, &v);
        if (rc || v != good[i].want) {
            print_error("cfg_parse_size(\"%s\"): rc %d value %lld, want %lld\n", good[i].s, rc,
                        (long long)v, (long long)good[i].want);
            fail();
        }
    }
    static const char *const bad[] = {
        "",     "lots", "KiB", "-1",    "-1KiB", "10XB", "10 MiB extra",
        "1e30", "nan",  "inf", "64kib", "12 34",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int64_t v = 12345;
        int rc = cfg_parse_size(bad[i], &v);
        if (rc != -EINVAL || v != 12345) {
            print_error("cfg_parse_size(\"%s\"): rc %d value %lld, want -EINVAL and untouched\n",
                        bad[i], rc, (long long)v);
            fail();
        }
    }
}

static void test_parse_bool(void **state)
{
    static const char *const yes[] = {"true", "yes", "on", "1", "TRUE", "Yes"};
    static const char *const no[] = {"false", "no", "off", "0", "False", "NO"};
    for (size_t i = 0; i < 6; i++) {
        int v = -1;
        assert_int_equal(cfg_parse_bool(yes[i], &v), 0);
        assert_int_equal(v, 1);
        assert_int_equal(cfg_parse_bool(no[i], &v), 0);
        assert_int_equal(v, 0);
    }
    int v = 7;
    assert_int_equal(cfg_parse_bool("maybe", &v), -EINVAL);
    assert_int_equal(cfg_parse_bool("", &v), -EINVAL);
    assert_int_equal(cfg_parse_bool("2", &v), -EINVAL);
    assert_int_equal(v, 7);
}

/* The generated reference names every section's keys with their defaults and choices. */
static void test_reference(void **state)
{
    struct buf out = {0};
    cfg_reference(&config_section, &out);
    buf_putc(&out, '\0');
    assert_non_null(strstr(out.data, "| `data_dir` | string | `./data` |"));
    assert_non_null(strstr(out.data, "| `pipeline.when_full` | enum | `block` |"));
    assert_non_null(strstr(out.data, "One of: `block`, `drop_newest`, `spill`."));
    assert_non_null(strstr(out.data, "| `listen` | string | required |"));
    assert_non_null(strstr(out.data, "#### `inputs` type `tcp`"));
    assert_non_null(strstr(out.data, "#### `sinks` type `null`"));
    assert_non_null(strstr(out.data, "Secret: redacted in dumps."));
    buf_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_config_values),
        cmocka_unit_test(test_good_config_dump),
        cmocka_unit_test(test_dump_redacts_url_passwords),
        cmocka_unit_test(test_cfg_load_string),
        cmocka_unit_test(test_embedded_default),
        cmocka_unit_test(test_empty_file_all_defaults),
        cmocka_unit_test(test_empty_scalar_is_default),
        cmocka_unit_test(test_errors_table),
        cmocka_unit_test(test_errors_accumulate),
        cmocka_unit_test(test_error_cap),
        cmocka_unit_test(test_cross_section_errors),
        cmocka_unit_test(test_cross_section_error_lines),
        cmocka_unit_test(test_bounds_message_exact),
        cmocka_unit_test(test_duplicate_name_in_item),
        cmocka_unit_test(test_syntax_error_leaves_defaults),
        cmocka_unit_test(test_free_after_errors),
        cmocka_unit_test(test_unreadable_file),
        cmocka_unit_test(test_env_substitution),
        cmocka_unit_test(test_env_value_is_validated),
        cmocka_unit_test(test_parse_size),
        cmocka_unit_test(test_parse_bool),
        cmocka_unit_test(test_reference),
    };
    return cmocka_run_group_tests_name("cfg", tests, NULL, NULL);
}
