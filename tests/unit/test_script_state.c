/* Unit tests of the router's spillway.state (router/script_state.h), in memory and over a real
 * store in a temporary directory: set/delete seen through script_state_each, the version moving on
 * every set, script_state_flush writing each change once (and again after a new set, even one made
 * while a flush runs), script_state_new loading what the store holds, and memory staying bounded.
 */
#include <errno.h>
#include <ftw.h>
#include <malloc.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/buf.h"
#include "core/store.h"
#include "router/script_state.h"

/* ---- helpers ---- */

struct fixture {
    char dir[64];
    char db[128];
    struct store *st;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    if (!f)
        return -1;
    snprintf(f->dir, sizeof(f->dir), "/tmp/spw_test_kv_XXXXXX");
    if (!mkdtemp(f->dir)) {
        free(f);
        return -1;
    }
    snprintf(f->db, sizeof(f->db), "%s/spillway.db", f->dir);
    char err[512];
    f->st = store_open(f->db, err, sizeof(err));
    if (!f->st) {
        fprintf(stderr, "store_open: %s\n", err);
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    store_close(f->st);
    nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

/* What script_state_each lists, as "key=value" items sorted and joined by ','; NUL bytes shown as
 * '~'. */
struct listing {
    char *items[64];
    int n;
};

static void collect(void *ud, const char *k, size_t kl, const char *v, size_t vl)
{
    struct listing *l = ud;
    assert_true(l->n < 64);
    char *s = malloc(kl + vl + 2);
    assert_non_null(s);
    for (size_t i = 0; i < kl; i++)
        s[i] = k[i] ? k[i] : '~';
    s[kl] = '=';
    for (size_t i = 0; i < vl; i++)
        s[kl + 1 + i] = v[i] ? v[i] : '~';
    s[kl + vl + 1] = '\0';
    l->items[l->n++] = s;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void listing_text(struct listing *l, char *out, size_t len)
{
    qsort(l->items, (size_t)l->n, sizeof(char *), cmp_str);
    size_t at = 0;
    out[0] = '\0';
    for (int i = 0; i < l->n; i++) {
        at += (size_t)snprintf(out + at, len - at, "%s%s", i ? "," : "", l->items[i]);
        free(l->items[i]);
    }
    l->n = 0;
}

static void expect_kv(struct script_state *kv, const char *want)
{
    struct listing l = {.n = 0};
    uint64_t v = script_state_each(kv, collect, &l);
    assert_int_equal(v, script_state_version(kv));
    char got[4096];
    listing_text(&l, got, sizeof(got));
    if (strcmp(got, want) != 0) {
        print_error("script_state_each\ngot  [%s]\nwant [%s]\n", got, want);
        fail();
    }
}

static void expect_store(struct store *st, const char *want)
{
    struct listing l = {.n = 0};
    assert_int_equal(store_kv_each(st, collect, &l), 0);
    char got[4096];
    listing_text(&l, got, sizeof(got));
    if (strcmp(got, want) != 0) {
        print_error("store\ngot  [%s]\nwant [%s]\n", got, want);
        fail();
    }
}

static void set(struct script_state *kv, const char *k, const char *v)
{
    assert_int_equal(script_state_set(kv, k, strlen(k), v, v ? strlen(v) : 0), 0);
}

/* ---- tests ---- */

static void test_memory_only(void **state)
{
    struct script_state *kv = script_state_new(NULL);
    assert_non_null(kv);
    expect_kv(kv, "");
    uint64_t v0 = script_state_version(kv);
    set(kv, "a", "1");
    assert_int_equal(script_state_version(kv), v0 + 1);
    set(kv, "b", "2");
    set(kv, "a", "3"); /* overwrite */
    assert_int_equal(script_state_version(kv), v0 + 3);
    expect_kv(kv, "a=3,b=2");
    set(kv, "a", NULL); /* delete */
    assert_int_equal(script_state_version(kv), v0 + 4);
    expect_kv(kv, "b=2");
    set(kv, "a", "again");
    expect_kv(kv, "a=again,b=2");
    /* Binary keys and values, and an empty value (present, not deleted). */
    assert_int_equal(script_state_set(kv, "k\0x", 3, "v\0y", 3), 0);
    assert_int_equal(script_state_set(kv, "k\0z", 3, "", 0), 0);
    expect_kv(kv, "a=again,b=2,k~x=v~y,k~z=");
    /* Without a store nothing is written, and that is not an error. */
    assert_int_equal(script_state_flush(kv), 0);
    script_state_free(kv);
    script_state_free(NULL);
}

struct counter {
    int n, bad;
};

/* Checks each listed key-<i> is odd with value i * 7. */
static void count_key(void *ud, const char *k, size_t kl, const char *v, size_t vl)
{
    struct counter *c = ud;
    char key[64], want[32];
    int i = -1;
    snprintf(key, sizeof(key), "%.*s", (int)kl, k);
    if (sscanf(key, "key-%d", &i) != 1 || i % 2 == 0) {
        c->bad++;
        return;
    }
    snprintf(want, sizeof(want), "%d", i * 7);
    if (vl != strlen(want) || memcmp(v, want, vl) != 0)
        c->bad++;
    c->n++;
}

static void test_grows(void **state)
{
    struct script_state *kv = script_state_new(NULL);
    assert_non_null(kv);
    for (int i = 0; i < 5000; i++) {
        char k[32], v[32];
        snprintf(k, sizeof(k), "key-%d", i);
        snprintf(v, sizeof(v), "%d", i * 7);
        set(kv, k, v);
    }
    for (int i = 0; i < 5000; i += 2) {
        char k[32];
        snprintf(k, sizeof(k), "key-%d", i);
        set(kv, k, NULL);
    }
    struct counter c = {0, 0};
    script_state_each(kv, count_key, &c);
    assert_int_equal(c.bad, 0);
    assert_int_equal(c.n, 2500);
    script_state_free(kv);
}

static void test_flush(void **state)
{
    struct fixture *f = *state;
    struct script_state *kv = script_state_new(f->st);
    assert_non_null(kv);
    assert_int_equal(script_state_flush(kv), 0); /* nothing yet */
    set(kv, "a", "1");
    set(kv, "b", "2");
    set(kv, "b", "22"); /* one key, written once */
    assert_int_equal(script_state_set(kv, "bin\0k", 5, "v\0", 2), 0);
    expect_store(f->st, ""); /* script_state_set never touches disk */
    assert_int_equal(script_state_flush(kv), 3);
    expect_store(f->st, "a=1,b=22,bin~k=v~");
    assert_int_equal(script_state_flush(kv), 0); /* nothing changed since */
    /* A key set again after a flush is dirty again; a delete is written as a delete. */
    set(kv, "a", "10");
    set(kv, "b", NULL);
    set(kv, "never-stored", NULL);
    assert_int_equal(script_state_flush(kv), 3);
    expect_store(f->st, "a=10,bin~k=v~");
    assert_int_equal(script_state_flush(kv), 0);
    set(kv, "a", "10"); /* the same value: still a set */
    assert_int_equal(script_state_flush(kv), 1);
    expect_kv(kv, "a=10,bin~k=v~");
    script_state_free(kv);
}

static void test_new_loads_store(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(store_kv_set(f->st, "x", 1, "1", 1), 0);
    assert_int_equal(store_kv_set(f->st, "y\0z", 3, "\0\0", 2), 0);
    struct script_state *kv = script_state_new(f->st);
    assert_non_null(kv);
    expect_kv(kv, "x=1,y~z=~~");
    /* A worker starts at version 0: the first sync must copy the loaded keys. */
    assert_true(script_state_version(kv) > 0);
    /* Loaded keys are clean: nothing to write back. */
    assert_int_equal(script_state_flush(kv), 0);
    set(kv, "x", NULL);
    assert_int_equal(script_state_flush(kv), 1);
    script_state_free(kv);
    /* What a flushed kv wrote is what the next one loads. */
    kv = script_state_new(f->st);
    expect_kv(kv, "y~z=~~");
    set(kv, "w", "4");
    assert_int_equal(script_state_flush(kv), 1);
    script_state_free(kv);
    kv = script_state_new(f->st);
    expect_kv(kv, "w=4,y~z=~~");
    script_state_free(kv);
}

/* Regression (was a bug, fixed): router/script_state.c script_state_new() loads with
 * store_kv_each(), which passes a zero-length BLOB value as v == NULL (sqlite3_column_blob returns
 * NULL for an empty BLOB), and load_one() hands that to put(), where val == NULL means "deleted".
 * So spillway.state.set("k", "") survives in the database but after a restart the key is gone:
 * script_state_set(kv, "e", 1, "", 0); script_state_flush(kv); script_state_new(store) then
 * script_state_each lists nothing for "e" (want "e="). */
static void test_new_loads_empty_value(void **state)
{
    struct fixture *f = *state;
    struct script_state *kv = script_state_new(f->st);
    set(kv, "e", "");
    set(kv, "f", "1");
    assert_int_equal(script_state_flush(kv), 2);
    expect_store(f->st, "e=,f=1");
    script_state_free(kv);
    kv = script_state_new(f->st);
    struct listing l = {.n = 0};
    script_state_each(kv, collect, &l);
    char got[256];
    listing_text(&l, got, sizeof(got));
    script_state_free(kv);
    if (strcmp(got, "e=,f=1") != 0)
        print_error("script_state_new from a store holding e=\"\", f=1 lists [%s]\n", got);
    assert_string_equal(got, "e=,f=1");
}

static void empty_key_child(const char *db)
{
    char err[512];
    struct store *st = store_open(db, err, sizeof(err));
    if (!st)
        _exit(4);
    struct script_state *kv = script_state_new(st);
    if (!kv)
        _exit(4);
    struct listing l = {.n = 0};
    script_state_each(kv, collect, &l);
    script_state_free(kv);
    store_close(st);
    int ok = l.n == 1 && strcmp(l.items[0], "=v") == 0;
    if (!ok)
        fprintf(stderr, "script_state_new lists %d keys, first `%s`, want `=v`\n", l.n,
                l.n ? l.items[0] : "");
    for (int i = 0; i < l.n; i++)
        free(l.items[i]);
    _exit(ok ? 0 : 3);
}

/* Regression (was a bug, fixed): router/script_state.c put() copies the key with memcpy(e->key,
 * key, klen); for the empty key (spillway.state.set("", "v") is accepted) script_state_new() gets
 * key == NULL from store_kv_each (an empty BLOB again) and calls memcpy(dst, NULL, 0), undefined
 * behaviour: the sanitizer build aborts at start-up ("null pointer passed as argument 2"). Runs in
 * a child. */
static void test_new_loads_empty_key(void **state)
{
    struct fixture *f = *state;
    struct script_state *kv = script_state_new(f->st);
    assert_int_equal(script_state_set(kv, "", 0, "v", 1), 0);
    assert_int_equal(script_state_flush(kv), 1);
    script_state_free(kv);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        empty_key_child(f->db);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        print_error("child %s %d\n", WIFEXITED(status) ? "exited with" : "killed by signal",
                    WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
        fail();
    }
}

/* A set racing with flushes is never lost: whatever the interleaving, once the writer is done
 * and a last flush has run, the store holds the writer's last value. */
struct writer {
    struct script_state *kv;
    int n;
    atomic_int done;
};

static void *write_loop(void *arg)
{
    struct writer *w = arg;
    for (int i = 1; i <= w->n; i++) {
        char v[32];
        snprintf(v, sizeof(v), "%d", i);
        script_state_set(w->kv, "hot", 3, v, strlen(v));
        script_state_set(w->kv, v, strlen(v), "x", 1); /* and many distinct keys */
        if (i % 64 == 0)
            script_state_set(w->kv, v, strlen(v), NULL, 0);
    }
    atomic_store(&w->done, 1);
    return NULL;
}

static void test_set_during_flush_not_lost(void **state)
{
    struct fixture *f = *state;
    struct writer w = {.kv = script_state_new(f->st), .n = 3000};
    assert_non_null(w.kv);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, write_loop, &w), 0);
    /* At least one flush however the threads are scheduled (a busy machine can run the whole
     * writer before this loop starts); most runs overlap many. */
    do
        assert_true(script_state_flush(w.kv) >= 0);
    while (!atomic_load(&w.done));
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_true(script_state_flush(w.kv) >= 0);
    assert_int_equal(script_state_flush(w.kv), 0); /* everything is written */
    struct buf out = {0};
    assert_int_equal(store_kv_get(f->st, "hot", 3, &out), 1);
    buf_putc(&out, '\0');
    assert_string_equal(out.data, "3000");
    buf_free(&out);
    /* Every distinct key as the writer left it. */
    int bad = 0;
    for (int i = 1; i <= w.n; i++) {
        char k[32];
        snprintf(k, sizeof(k), "%d", i);
        struct buf v = {0};
        int rc = store_kv_get(f->st, k, strlen(k), &v);
        bad += rc != (i % 64 == 0 ? 0 : 1);
        buf_free(&v);
    }
    assert_int_equal(bad, 0);
    script_state_free(w.kv);
}

/* Bytes in use by the allocator: the sanitizer's when it has one, else glibc's. */
size_t __sanitizer_get_current_allocated_bytes(void) __attribute__((weak));

static size_t heap_in_use(void)
{
    if (__sanitizer_get_current_allocated_bytes)
        return __sanitizer_get_current_allocated_bytes();
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}

/* Regression (was a bug, fixed): router/script_state.c never removes a deleted key: put() with val
 * NULL keeps the entry (key copy, slot, count towards growth) forever, flushed or not, though the
 * comment says tombstones stay only "until flushed". A script that keeps short-lived keys
 * (spillway.state.set(id, v) ... spillway.state.set(id, nil)) grows the store without bound:
 * 100,000 distinct keys set, deleted and flushed leave ~18 MB allocated (want: about what an
 * empty store holds). */
static void test_deleted_keys_do_not_accumulate(void **state)
{
    struct fixture *f = *state;
    struct script_state *kv = script_state_new(f->st);
    assert_non_null(kv);
    set(kv, "warm", "up");
    assert_int_equal(script_state_flush(kv), 1);
    size_t before = heap_in_use();
    for (int i = 0; i < 100000; i++) {
        char k[32];
        snprintf(k, sizeof(k), "session-%d", i);
        set(kv, k, "state");
        set(kv, k, NULL);
        if (i % 5000 == 4999)
            assert_true(script_state_flush(kv) >= 0);
    }
    assert_true(script_state_flush(kv) >= 0);
    assert_int_equal(script_state_flush(kv), 0);
    size_t after = heap_in_use();
    expect_kv(kv, "warm=up");
    expect_store(f->st, "warm=up");
    script_state_free(kv);
    if (after > before + 2000000)
        print_error("%zu bytes still allocated for 100000 deleted keys\n", after - before);
    assert_true(after <= before + 2000000);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_memory_only),
        cmocka_unit_test(test_grows),
        T(test_flush),
        T(test_new_loads_store),
        T(test_new_loads_empty_value),
        T(test_new_loads_empty_key),
        T(test_set_during_flush_not_lost),
        T(test_deleted_keys_do_not_accumulate),
    };
#undef T
    return cmocka_run_group_tests_name("script_state", tests, NULL, NULL);
}
