/* Unit tests of the spill's record keys (pipeline/spill_key.h): the replay recognises a second
 * copy of a record a producer retry left in Kafka, and never takes a new record for a copy: a
 * new run, a record without our key, a record written after higher ones of its run, a gap the
 * window has given up on. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "pipeline/spill_key.h"

static struct spill_seen *fresh(void)
{
    struct spill_seen *s = calloc(1, sizeof(*s));
    assert_non_null(s);
    return s;
}

static int copy(struct spill_seen *s, uint64_t run, uint64_t seq)
{
    unsigned char key[SPILL_KEY];
    spill_key(key, run, seq);
    return spill_seen_copy(s, key, sizeof(key));
}

static void test_key_layout(void **state)
{
    (void)state;
    unsigned char key[SPILL_KEY];
    spill_key(key, 0x0102030405060708ull, 0x1112131415161718ull);
    static const unsigned char want[SPILL_KEY] = {8,    7,    6,    5,    4,    3,    2,    1,
                                                  0x18, 0x17, 0x16, 0x15, 0x14, 0x13, 0x12, 0x11};
    assert_memory_equal(key, want, SPILL_KEY);
}

/* A message of several records is keyed by its run, its own place in the run's messages and
 * its first record's place in the run's records; the copy window counts messages. */
static void test_batch_key(void **state)
{
    (void)state;
    unsigned char key[SPILL_BATCH_KEY];
    spill_batch_key(key, 0x0102030405060708ull, 7, 0x2122232425262728ull);
    static const unsigned char want[SPILL_BATCH_KEY] = {
        8, 7, 6, 5, 4,    3,    2,    1,    7,    0,    0,    0,
        0, 0, 0, 0, 0x28, 0x27, 0x26, 0x25, 0x24, 0x23, 0x22, 0x21};
    assert_memory_equal(key, want, SPILL_BATCH_KEY);
    uint64_t run, seq, first;
    assert_int_equal(spill_key_read(key, sizeof(key), &run, &seq, &first), 1);
    assert_true(run == 0x0102030405060708ull && seq == 7 && first == 0x2122232425262728ull);
    unsigned char one[SPILL_KEY];
    spill_key(one, 5, 9);
    assert_int_equal(spill_key_read(one, sizeof(one), &run, &seq, &first), 1);
    assert_true(run == 5 && seq == 9 && first == 0);
    assert_int_equal(spill_key_read(key, 20, &run, &seq, &first), 0);
    assert_int_equal(spill_key_read(NULL, 0, &run, &seq, &first), 0);
    /* Messages 1 2 | 1 2 3 of a run: the second 1 and 2 are copies. */
    struct spill_seen *s = fresh();
    for (uint64_t q = 1; q <= 2; q++) {
        spill_batch_key(key, 42, q, q * 100);
        assert_int_equal(spill_seen_copy(s, key, sizeof(key)), 0);
    }
    for (uint64_t q = 1; q <= 3; q++) {
        spill_batch_key(key, 42, q, q * 100);
        assert_int_equal(spill_seen_copy(s, key, sizeof(key)), q < 3);
    }
    free(s);
}

/* A retried batch Kafka wrote twice: 1 2 3 | 1 2 3 4. The second 1 2 3 are copies. */
static void test_copies_of_a_retried_batch(void **state)
{
    (void)state;
    struct spill_seen *s = fresh();
    const uint64_t run = 0xfeedfacecafebeefull;
    assert_false(copy(s, run, 1));
    assert_false(copy(s, run, 2));
    assert_false(copy(s, run, 3));
    assert_true(copy(s, run, 1));
    assert_true(copy(s, run, 2));
    assert_true(copy(s, run, 3));
    assert_false(copy(s, run, 4));
    assert_true(s->mark.run == run && s->mark.seq == 4);
    free(s);
}

/* A broker that does not check sequences wrote a retried request after the one that followed
 * it: 4 5 6 1 2 3 4 5 6. 1 2 3 are new (never skipped), the second 4 5 6 copies. */
static void test_records_written_after_higher_ones(void **state)
{
    (void)state;
    struct spill_seen *s = fresh();
    for (uint64_t q = 4; q <= 6; q++)
        assert_false(copy(s, 9, q));
    assert_true(s->mark.seq == 0); /* 1 to 3 not taken yet */
    for (uint64_t q = 1; q <= 3; q++)
        assert_false(copy(s, 9, q));
    assert_true(s->mark.seq == 6); /* the mark caught up */
    for (uint64_t q = 4; q <= 6; q++)
        assert_true(copy(s, 9, q));
    assert_false(copy(s, 9, 7));
    free(s);
}

/* A gap older than the window is given up on (a record Kafka refused for good): the window
 * slides, records above the gap go on being recognised. */
static void test_a_gap_older_than_the_window(void **state)
{
    (void)state;
    struct spill_seen *s = fresh();
    assert_false(copy(s, 1, 1));
    /* 2 never comes: everything after it waits above the mark, then the window slides. */
    for (uint64_t q = 3; q <= SPILL_WINDOW + 10; q++)
        assert_false(copy(s, 1, q));
    assert_true(s->mark.seq == SPILL_WINDOW + 10);
    assert_true(copy(s, 1, 3));
    assert_true(copy(s, 1, SPILL_WINDOW + 10));
    assert_false(copy(s, 1, SPILL_WINDOW + 11));
    /* A jump far ahead: taken, and a copy of it recognised. */
    assert_false(copy(s, 1, 10 * SPILL_WINDOW));
    assert_true(copy(s, 1, 10 * SPILL_WINDOW));
    free(s);
}

/* The next run starts its sequence again at 1: its records are new, not copies. */
static void test_a_new_run_is_not_a_copy(void **state)
{
    (void)state;
    struct spill_seen *s = fresh();
    assert_false(copy(s, 7, 1));
    assert_false(copy(s, 7, 2));
    assert_false(copy(s, 8, 1));
    assert_false(copy(s, 8, 2));
    assert_true(copy(s, 8, 2));
    free(s);
}

/* Records spilled before keys existed (no key, or another length) are always taken, and leave
 * what was seen as it was. */
static void test_records_without_our_key(void **state)
{
    (void)state;
    struct spill_seen *s = fresh();
    assert_false(copy(s, 5, 1));
    assert_false(spill_seen_copy(s, NULL, 0));
    assert_false(spill_seen_copy(s, "abc", 3));
    assert_true(s->mark.run == 5 && s->mark.seq == 1);
    assert_true(copy(s, 5, 1));
    free(s);
}

/* Restored from the store after a restart: the mark saved with the replay offset tells
 * copies after it apart. */
static void test_restored_mark(void **state)
{
    (void)state;
    struct spill_seen *s = fresh();
    assert_false(copy(s, 3, 100)); /* anything before the reset is forgotten */
    spill_seen_reset(s, (struct spill_mark){3, 40});
    assert_true(copy(s, 3, 39));
    assert_true(copy(s, 3, 40));
    assert_false(copy(s, 3, 41));
    assert_false(copy(s, 3, 100));
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_key_layout),
        cmocka_unit_test(test_batch_key),
        cmocka_unit_test(test_copies_of_a_retried_batch),
        cmocka_unit_test(test_records_written_after_higher_ones),
        cmocka_unit_test(test_a_gap_older_than_the_window),
        cmocka_unit_test(test_a_new_run_is_not_a_copy),
        cmocka_unit_test(test_records_without_our_key),
        cmocka_unit_test(test_restored_mark),
    };
    return cmocka_run_group_tests_name("spill_key", tests, NULL, NULL);
}
