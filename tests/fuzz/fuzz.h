/* Helpers shared by the libFuzzer targets (tests/fuzz/fuzz_<what>.c) and their corpus replay
 * (tests/fuzz/replay.c): a fixed receive time, checks that abort() with a message when an
 * invariant fails (libFuzzer and the replay both report an abort as a crash), and the
 * framer's lines collected so two framings of one stream can be compared. Header-only: each
 * target is one translation unit plus this file. */
#ifndef SPILLWAY_FUZZ_H
#define SPILLWAY_FUZZ_H

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collector/framer.h"
#include "collector/normalize.h"
#include "core/buf.h"
#include "core/jsontok.h"
#include "core/timeutil.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A failed invariant: says which and what, then aborts (never returns). */
__attribute__((noreturn, format(printf, 1, 2))) static inline void fuzz_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("fuzz invariant failed: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    abort();
}

#define FUZZ_CHECK(cond, ...)                                                                      \
    do {                                                                                           \
        if (!(cond))                                                                               \
            fuzz_fail(__VA_ARGS__);                                                                \
    } while (0)

/* The same receive time for every run, so a reproducer behaves the same on every replay. */
static inline struct recv_time fuzz_recv_time(void)
{
    struct recv_time rt;
    rt.ns = 1767225600123456000LL; /* 2026-01-01T00:00:00.123456Z */
    time_format_rfc3339(rt.ns, rt.text);
    return rt;
}

/* Aborts unless text[0..len) is one JSON object on one line that jansson loads with flags.
 * what names the producer for the message. A \u0000 escape in a key and an integer past
 * INT64_MAX (a uint64 count) are valid JSON that jansson cannot load: such text is checked by
 * jsontok instead (duplicates unchecked). */
static inline void fuzz_check_object(const char *what, const char *text, size_t len, size_t flags)
{
    json_error_t e;
    if (!text)
        text = ""; /* an empty buffer: no JSON either */
    FUZZ_CHECK(!memchr(text, '\n', len), "%s: output holds a newline: %.*s", what, (int)len, text);
    json_t *j = json_loadb(text, len, flags, &e);
    if (!j && (json_error_code(&e) == json_error_null_byte_in_key ||
               json_error_code(&e) == json_error_numeric_overflow)) {
        struct jsontok t = {0};
        int rc = jsontok_parse(&t, text, len);
        FUZZ_CHECK(rc == 0 && t.tok[0].type == JSMN_OBJECT,
                   "%s: output is not a valid JSON object (%s): %.*s", what,
                   rc ? t.err : "not an object", (int)len, text);
        jsontok_free(&t);
        return;
    }
    FUZZ_CHECK(j, "%s: output is not valid JSON (%s at %d): %.*s", what, e.text, e.position,
               (int)len, text);
    FUZZ_CHECK(json_is_object(j), "%s: output is not a JSON object: %.*s", what, (int)len, text);
    json_decref(j);
}

/* 1 when jansson loads text[0..len) with flags (any JSON value at the top). json_loadb stops
 * at a NUL byte as at the end of the text ("1\0x" loads as 1), so text holding one is not
 * JSON here, whatever jansson says. */
static inline int fuzz_jansson_ok(const char *text, size_t len, size_t flags)
{
    if (!text || memchr(text, '\0', len))
        return 0;
    json_t *j = json_loadb(text, len, flags | JSON_DECODE_ANY, NULL);
    json_decref(j);
    return j != NULL;
}

/* Aborts unless a normalized event out[0..olen) loads as one line holding a JSON object, with
 * no duplicate key unless its source src[0..slen) had one. Text jansson cannot load itself
 * (lone surrogate escapes, numbers past a double) is copied as it came, so only a source that
 * jansson loads must give an event that it loads. */
static inline void fuzz_check_normalized(const char *what, const char *src, size_t slen,
                                         const char *out, size_t olen)
{
    if (!fuzz_jansson_ok(src, slen, JSON_ALLOW_NUL)) {
        FUZZ_CHECK(!memchr(out, '\n', olen), "%s: output holds a newline", what);
        return;
    }
    int unique = fuzz_jansson_ok(src, slen, JSON_ALLOW_NUL | JSON_REJECT_DUPLICATES);
    fuzz_check_object(what, out, olen, JSON_ALLOW_NUL | (unique ? JSON_REJECT_DUPLICATES : 0));
}

/* Every line a framer delivered, as (flags, length, bytes) records in one buffer. */
struct fuzz_lines {
    struct buf rec;
    int n;
    size_t max;
    void (*each)(void *ud, const char *line, size_t len, int flags); /* may be NULL */
    void *ud;
};

static inline void fuzz_on_line(void *ud, const char *line, size_t len, int flags)
{
    struct fuzz_lines *l = ud;
    FUZZ_CHECK(len <= l->max, "framer: a line of %zu bytes over max %zu", len, l->max);
    FUZZ_CHECK(len > 0 || flags, "framer: an empty line delivered");
    buf_putc(&l->rec, (char)flags);
    buf_append(&l->rec, (const char *)&len, sizeof(len));
    buf_append(&l->rec, line, len);
    l->n++;
    if (l->each)
        l->each(l->ud, line, len, flags);
}

/* Aborts unless two framings of one stream delivered the same lines. */
static inline void fuzz_same_lines(const char *what, const struct fuzz_lines *a,
                                   const struct fuzz_lines *b)
{
    FUZZ_CHECK(a->n == b->n && a->rec.len == b->rec.len &&
                   (a->rec.len == 0 || memcmp(a->rec.data, b->rec.data, a->rec.len) == 0),
               "framer: %s delivered different lines (%d vs %d lines) than one whole feed", what,
               b->n, a->n);
}

/* Frames data[0..len) with a newline framer (octets 0) or a syslog one (octets 1) of max bytes
 * per line: in two feeds split at split when chunk is 0, else in feeds of chunk bytes; then
 * finishes the stream. Lines are appended to out (out->max is set here). */
static inline void fuzz_frame(int octets, size_t max, const char *data, size_t len, size_t split,
                              size_t chunk, struct fuzz_lines *out)
{
    struct framer f;
    framer_init(&f, octets ? FRAMING_SYSLOG : FRAMING_LINE, max);
    out->max = max;
    if (chunk == 0) {
        framer_feed(&f, data, split, fuzz_on_line, out);
        framer_feed(&f, data + split, len - split, fuzz_on_line, out);
    } else {
        for (size_t off = 0; off < len; off += chunk)
            framer_feed(&f, data + off, len - off < chunk ? len - off : chunk, fuzz_on_line, out);
    }
    framer_finish(&f, fuzz_on_line, out);
    framer_free(&f);
}

/* The framing must not depend on how reads cut the stream: frames data whole into *whole (its
 * callback, if any, sees each line), then in two reads split at split and, for short inputs,
 * one byte at a time, and checks both give the same lines. */
static inline void fuzz_frame_any_reads(int octets, size_t max, const char *data, size_t len,
                                        size_t split, struct fuzz_lines *whole)
{
    struct fuzz_lines parts = {0}, bytes = {0};
    fuzz_frame(octets, max, data, len, len, 0, whole);
    fuzz_frame(octets, max, data, len, split, 0, &parts);
    fuzz_same_lines("two reads", whole, &parts);
    if (len <= 4096) {
        fuzz_frame(octets, max, data, len, 0, 1, &bytes);
        fuzz_same_lines("reads of one byte", whole, &bytes);
    }
    buf_free(&parts.rec);
    buf_free(&bytes.rec);
}

/* The framing targets' input: byte 0 picks the record limit from limits, bytes 1-2 where the
 * two-read split falls, the rest is the stream, framed as fuzz_frame_any_reads() does. Inputs
 * shorter than three bytes frame nothing. */
static inline void fuzz_frame_input(int octets, const size_t limits[4], const uint8_t *data,
                                    size_t size, struct fuzz_lines *whole)
{
    if (size < 3)
        return;
    size_t len = size - 3;
    size_t split = len ? ((size_t)data[1] << 8 | data[2]) % (len + 1) : 0;
    fuzz_frame_any_reads(octets, limits[data[0] & 3], (const char *)data + 3, len, split, whole);
}

#endif
