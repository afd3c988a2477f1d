/* Helpers shared by the Lua host's unit tests (test_script*.c): hosts and scripts with the
 * eq() prelude, running a script on a JSON event, reading the serialized event back with
 * jansson, and running a case that may hang or crash in a child process. */
#ifndef SPILLWAY_TEST_SCRIPT_TEST_H
#define SPILLWAY_TEST_SCRIPT_TEST_H

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <math.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "core/eview.h"
#include "router/script.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

static const struct script_limits default_limits = {1000000, 64 << 20};
/* Routes outlive every call: the host keeps the pointer of the last one it ran. */
static const struct script_route route_full = {"test", 1.0};

/* On the first line of every script, so error line numbers stay those of the case. */
static const char prelude[] =
    "local tostring, type, error = tostring, type, error "
    "local function eq(got, want, what) if got ~= want then error(string.format("
    "'%s: got %s (%s), want %s (%s)', what or 'value', tostring(got), math.type(got) or "
    "type(got), tostring(want), math.type(want) or type(want)), 2) end end ";

static inline struct script_host *new_host(const struct script_limits *lim,
                                           const struct script_env *env, uint64_t seed)
{
    struct script_host *h = script_host_new(lim ? lim : &default_limits, env, seed);
    assert_non_null(h);
    return h;
}

/* Loads prelude + src; returns the handle or the negative errno with the message in err. */
static inline int try_load(struct script_host *h, const char *name, const char *src, char *err,
                           size_t errlen)
{
    struct buf b = {0};
    buf_puts(&b, prelude);
    buf_puts(&b, src);
    err[0] = '\0';
    int hd = script_load(h, name, b.data, b.len, err, errlen);
    buf_free(&b);
    return hd;
}

/* For children: no cmocka assertions there (a failure would run the rest of the suite in the
 * child); any setup failure exits with 4. */
static inline struct script_host *child_host(int64_t instr, int64_t mem,
                                             const struct script_env *env, int *hd, const char *src)
{
    struct script_limits lim = {instr, mem};
    struct script_host *h = script_host_new(&lim, env, 1);
    char err[512];
    if (!h || (*hd = try_load(h, "child.lua", src, err, sizeof(err))) < 0) {
        fprintf(stderr, "child setup failed: %s\n", h ? err : "no host");
        _exit(4);
    }
    return h;
}

static inline int load(struct script_host *h, const char *src)
{
    char err[1024];
    int hd = try_load(h, "case.lua", src, err, sizeof(err));
    if (hd < 0) {
        print_error("loading failed: %s\nscript: %s\n", err, src);
        fail();
    }
    return hd;
}

/* Runs the script on json (which must outlive the view's use). */
static inline int run(struct script_host *h, int hd, struct eview *v, const char *json,
                      const struct script_route *rt, const char **err)
{
    eview_reset(v, json, strlen(json));
    const char *e = NULL;
    int rc = script_run(h, hd, v, rt ? rt : &route_full, &e);
    if (err)
        *err = e;
    return rc;
}

/* The serialized event, NUL-terminated; the caller frees it. */
static inline char *serialized(struct eview *v)
{
    struct buf out = {0};
    assert_int_equal(eview_serialize(v, &out), 0);
    buf_putc(&out, '\0');
    return out.data;
}

static inline json_t *serialized_json(struct eview *v)
{
    char *s = serialized(v);
    json_error_t e;
    json_t *j = json_loads(s, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &e);
    if (!j)
        print_error("not valid JSON (%s): %s\n", e.text, s);
    free(s);
    return j;
}

/* 1 when the serialized event equals want (jansson: order-insensitive, 1 and 1.0 differ). */
static inline int event_is(struct eview *v, const char *want)
{
    char *s = serialized(v);
    json_t *got = json_loads(s, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, NULL);
    json_t *exp = json_loads(want, JSON_ALLOW_NUL, NULL);
    assert_non_null(exp);
    int ok = got && json_equal(got, exp);
    if (!ok)
        print_error("serialized %s\nwant       %s\n", s, want);
    json_decref(got);
    json_decref(exp);
    free(s);
    return ok;
}

/* A string field of the serialized event (NULL when absent or not a string); caller frees. */
static inline char *field_string(struct eview *v, const char *key)
{
    json_t *j = serialized_json(v);
    assert_non_null(j);
    json_t *f = json_object_get(j, key);
    char *s = json_is_string(f) ? strdup(json_string_value(f)) : NULL;
    json_decref(j);
    return s;
}

static inline int has_field(struct eview *v, const char *key)
{
    json_t *j = serialized_json(v);
    assert_non_null(j);
    int has = json_object_get(j, key) != NULL;
    json_decref(j);
    return has;
}

/* Runs fn in a child that must exit 0 within `seconds`; reports a hang or a crash. */
static inline void in_child(void (*fn)(void), unsigned seconds, const char *what)
{
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        alarm(seconds);
        fn();
        _exit(0);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (WIFSIGNALED(status)) {
        print_error("%s: child %s (signal %d)\n", what,
                    WTERMSIG(status) == SIGALRM ? "still running after the time limit: hung"
                                                : "crashed",
                    WTERMSIG(status));
        fail();
    }
    if (WEXITSTATUS(status) != 0) {
        print_error("%s: child exited with %d\n", what, WEXITSTATUS(status));
        fail();
    }
}

/* Bytes in use by the allocator (the sanitizer's when it has one, else glibc's), to tell a
 * leak from steady state. */
size_t __sanitizer_get_current_allocated_bytes(void) __attribute__((weak));

static inline size_t heap_in_use(void)
{
    if (__sanitizer_get_current_allocated_bytes)
        return __sanitizer_get_current_allocated_bytes();
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}

#endif
