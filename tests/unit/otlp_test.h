/* Helpers shared by the OTLP decoder's unit tests (test_otlp.c: OTLP/JSON and the mapping;
 * test_otlp_pb.c: protobuf): a fixed receive time, a decode that collects every event (as text
 * and parsed by jansson, duplicate keys refused) and every invalid record, and the checks of an
 * event's shape and of its whole content. */
#ifndef SPILLWAY_TEST_OTLP_TEST_H
#define SPILLWAY_TEST_OTLP_TEST_H

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "collector/otlp.h"

#define L(s) s, sizeof(s) - 1
#define N(a) (sizeof(a) / sizeof((a)[0]))

#define SRC     "otlp_in"
#define RT_NS   1767225600123456000LL /* 2026-01-01T00:00:00.123456Z */
#define RT_TEXT "2026-01-01T00:00:00.123456Z"

#define MAX_EVENTS  16
#define MAX_INVALID 8

static inline struct recv_time fixed_rt(void)
{
    struct recv_time rt;
    rt.ns = RT_NS;
    time_format_rfc3339(rt.ns, rt.text);
    return rt;
}

/* Every event emitted, as text and parsed (NULL when it does not parse without duplicate
 * keys), and every record handed over as invalid (why, and its text). */
struct events {
    int n;
    char *text[MAX_EVENTS];
    json_t *obj[MAX_EVENTS];
    int ninvalid;
    char *why[MAX_INVALID];
    char *raw[MAX_INVALID];
};

static inline void on_event(void *ud, const char *json, size_t len)
{
    struct events *ev = ud;
    assert_true(ev->n < MAX_EVENTS);
    assert_null(memchr(json, '\n', len));
    ev->text[ev->n] = strndup(json, len);
    json_error_t e;
    ev->obj[ev->n] = json_loadb(json, len, JSON_REJECT_DUPLICATES, &e);
    if (!ev->obj[ev->n])
        print_error("event does not parse (%s): %.*s\n", e.text, (int)len, json);
    ev->n++;
}

static inline void on_invalid(void *ud, const char *why, const char *raw, size_t len)
{
    struct events *ev = ud;
    assert_true(ev->ninvalid < MAX_INVALID);
    assert_true(ev->n == 0); /* invalid records come first */
    ev->why[ev->ninvalid] = strdup(why);
    ev->raw[ev->ninvalid] = strndup(raw, len);
    ev->ninvalid++;
}

static inline void events_free(struct events *ev)
{
    for (int i = 0; i < ev->n; i++) {
        free(ev->text[i]);
        json_decref(ev->obj[i]);
    }
    for (int i = 0; i < ev->ninvalid; i++) {
        free(ev->why[i]);
        free(ev->raw[i]);
    }
    memset(ev, 0, sizeof(*ev));
}

/* Decodes with a decoder of its own (so each test also checks that nothing leaks); *err points
 * to a copy that lives until the next call. */
static inline int decode(struct events *ev, enum otlp_signal sig, enum otlp_encoding enc,
                         const char *body, size_t len, const char **err)
{
    static char why[256];
    struct recv_time rt = fixed_rt();
    struct otlp_decoder *d = otlp_decoder_new(SRC);
    assert_non_null(d);
    const struct otlp_out out = {on_event, on_invalid, ev};
    memset(ev, 0, sizeof(*ev));
    *err = NULL;
    int rc = otlp_decode(d, sig, enc, body, len, &rt, &out, err);
    if (rc >= 0) {
        assert_int_equal(rc, ev->n + ev->ninvalid);
    } else {
        assert_true(ev->n == 0 && ev->ninvalid == 0);
        assert_true(*err && **err);
        snprintf(why, sizeof(why), "%s", *err);
        *err = why;
    }
    otlp_decoder_free(d);
    return rc;
}

static inline int parse(struct events *ev, enum otlp_signal sig, const char *body, size_t len,
                        const char **err)
{
    return decode(ev, sig, OTLP_JSON, body, len, err);
}

/* True when s is "YYYY-MM-DDTHH:MM:SS.ffffffZ". */
static inline int canonical_time(const char *s)
{
    static const char pat[] = "dddd-dd-ddTdd:dd:dd.ddddddZ";
    if (!s || strlen(s) != sizeof(pat) - 1)
        return 0;
    for (size_t i = 0; pat[i]; i++) {
        if (pat[i] == 'd' ? (s[i] < '0' || s[i] > '9') : s[i] != pat[i])
            return 0;
    }
    return 1;
}

/* timestamp, kind, source first, received_at last, times canonical. */
static inline int check_shape(json_t *o, const char *kind)
{
    static const char *const first[] = {"timestamp", "kind", "source"};
    if (!json_is_object(o))
        return -1;
    void *it = json_object_iter(o);
    for (int i = 0; i < 3; i++, it = json_object_iter_next(o, it)) {
        if (!it || strcmp(json_object_iter_key(it), first[i]) != 0)
            return -1;
    }
    const char *last = NULL;
    for (; it; it = json_object_iter_next(o, it))
        last = json_object_iter_key(it);
    if (!last || strcmp(last, "received_at") != 0)
        return -1;
    const char *k = json_string_value(json_object_get(o, "kind"));
    const char *s = json_string_value(json_object_get(o, "source"));
    const char *r = json_string_value(json_object_get(o, "received_at"));
    return canonical_time(json_string_value(json_object_get(o, "timestamp"))) && k &&
                   strcmp(k, kind) == 0 && s && strcmp(s, SRC) == 0 && r && strcmp(r, RT_TEXT) == 0
               ? 0
               : -1;
}

/* Event i must be exactly want_json (its canonical fields included). */
static inline int check_event(const struct events *ev, int i, const char *kind,
                              const char *want_json)
{
    if (i >= ev->n) {
        print_error("event %d missing (%d emitted)\n", i, ev->n);
        return -1;
    }
    json_error_t e;
    json_t *w = json_loads(want_json, 0, &e);
    if (!w) {
        print_error("bad expectation in the test (%s): %s\n", e.text, want_json);
        fail();
    }
    int ok = ev->obj[i] && check_shape(ev->obj[i], kind) == 0 && json_equal(ev->obj[i], w);
    if (!ok) {
        char *ws = json_dumps(w, JSON_COMPACT);
        print_error("event %d:\n  got  %s\n  want %s\n", i, ev->text[i], ws);
        free(ws);
    }
    json_decref(w);
    return ok ? 0 : -1;
}

static inline char *read_fixture(const char *name, size_t *len)
{
    char path[4096];
    const char *src = getenv("SPILLWAY_SRC");
    if (src && *src) {
        snprintf(path, sizeof(path), "%s/tests/fixtures/otlp/%s", src, name);
    } else {
        /* This file is tests/unit/otlp_test.h: the fixtures are in tests/fixtures/otlp/. */
        const char *f = __FILE__;
        const char *unit = strstr(f, "unit/otlp_test.h");
        assert_non_null(unit);
        snprintf(path, sizeof(path), "%.*sfixtures/otlp/%s", (int)(unit - f), f, name);
    }
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        print_error("cannot open fixture %s (set SPILLWAY_SRC to the source tree)\n", path);
        fail();
    }
    char *data = malloc(1 << 16);
    assert_non_null(data);
    *len = fread(data, 1, 1 << 16, fp);
    assert_true(*len > 0 && *len < (1 << 16));
    fclose(fp);
    return data;
}

#endif
