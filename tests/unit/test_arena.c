/* Unit tests of the bump arena (core/arena.h): alignment and the remembered sizes, the limit
 * (refused and flagged, nothing else changed), and what a reset keeps: one block of what the
 * last use took, reused without malloc, unless that is over keep. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/arena.h"

static void test_alignment_and_sizes(void **state)
{
    struct arena a = {0};
    for (size_t n = 0; n < 300; n++) {
        unsigned char *p = arena_alloc(&a, n);
        assert_non_null(p);
        assert_int_equal((uintptr_t)p % 8, 0);
        assert_int_equal(arena_size(p), n);
        memset(p, 0xab, n); /* ASan: the whole size is ours */
    }
    void *big = arena_alloc(&a, 1 << 20); /* past the first block: a block of its own */
    assert_non_null(big);
    assert_int_equal(arena_size(big), 1 << 20);
    assert_null(arena_alloc(&a, SIZE_MAX - 4));
    arena_free(&a);
    arena_free(&a); /* a no-op on an empty arena */
}

static void test_limit(void **state)
{
    struct arena a = {.limit = 1000};
    assert_non_null(arena_alloc(&a, 500));
    assert_int_equal(a.over, 0);
    assert_null(arena_alloc(&a, 500)); /* 508 + 508 bytes with the headers: over */
    assert_int_equal(a.over, 1);
    assert_non_null(arena_alloc(&a, 100)); /* what fits still does */
    arena_reset(&a);
    assert_int_equal(a.over, 0);
    assert_non_null(arena_alloc(&a, 900));
    arena_free(&a);
}

static void test_reset_keeps_one_block(void **state)
{
    struct arena a = {.keep = 4 << 20};
    for (int i = 0; i < 1000; i++)
        assert_non_null(arena_alloc(&a, 1000)); /* about 1 MB: several blocks */
    size_t held = a.held;
    assert_true(held >= 1000 * 1008);
    arena_reset(&a);
    /* One block of everything the use took, so the same use fits in it. */
    assert_int_equal(a.held, held);
    void *first = arena_alloc(&a, 1000);
    for (int i = 1; i < 1000; i++)
        assert_non_null(arena_alloc(&a, 1000));
    assert_int_equal(a.held, held);
    arena_reset(&a);
    assert_ptr_equal(arena_alloc(&a, 1000), first); /* the same memory, reused */
    /* A use past keep gives its memory back at the reset. */
    a.keep = 64 * 1024;
    arena_reset(&a);
    assert_int_equal(a.held, 0);
    assert_non_null(arena_alloc(&a, 10));
    arena_free(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_alignment_and_sizes),
        cmocka_unit_test(test_limit),
        cmocka_unit_test(test_reset_keeps_one_block),
    };
    return cmocka_run_group_tests_name("arena", tests, NULL, NULL);
}
