/* Unit tests of the spill's record keys (pipeline/kafka.h): the replay recognises the second
 * copy of a record a producer retry left in Kafka (same run, a sequence number not above the
 * newest taken), and never takes a new record for a copy: a new run, a record without our
 * key, the next sequence number. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "kafka.h"

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

/* A retried batch Kafka wrote twice: 1 2 3 | 1 2 3 4. The second 1 2 3 are copies. */
static void test_copies_of_a_retried_batch(void **state)
{
    (void)state;
    struct spill_seen s = {0, 0};
    const uint64_t run = 0xfeedfacecafebeefull;
    assert_false(copy(&s, run, 1));
    assert_false(copy(&s, run, 2));
    assert_false(copy(&s, run, 3));
    assert_true(copy(&s, run, 1));
    assert_true(copy(&s, run, 2));
    assert_true(copy(&s, run, 3));
    assert_false(copy(&s, run, 4));
    assert_true(s.run == run && s.seq == 4);
}

/* The next run starts its sequence again at 1: its records are new, not copies. */
static void test_a_new_run_is_not_a_copy(void **state)
{
    (void)state;
    struct spill_seen s = {0, 0};
    assert_false(copy(&s, 7, 1000));
    assert_false(copy(&s, 9, 1));
    assert_false(copy(&s, 9, 2));
    assert_true(copy(&s, 9, 2));
}

/* Records spilled before keys existed (no key, or another length) are always taken, and leave
 * what was seen as it was. */
static void test_records_without_our_key(void **state)
{
    (void)state;
    struct spill_seen s = {0, 0};
    assert_false(copy(&s, 5, 10));
    assert_false(spill_seen_copy(&s, NULL, 0));
    assert_false(spill_seen_copy(&s, "abc", 3));
    assert_true(s.run == 5 && s.seq == 10);
    assert_true(copy(&s, 5, 10));
}

/* Restored from the state store after a restart: the mark of the newest record before the
 * saved offset tells copies after it apart. */
static void test_restored_mark(void **state)
{
    (void)state;
    struct spill_seen s = {3, 40};
    assert_true(copy(&s, 3, 39));
    assert_true(copy(&s, 3, 40));
    assert_false(copy(&s, 3, 41));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_key_layout),
        cmocka_unit_test(test_copies_of_a_retried_batch),
        cmocka_unit_test(test_a_new_run_is_not_a_copy),
        cmocka_unit_test(test_records_without_our_key),
        cmocka_unit_test(test_restored_mark),
    };
    return cmocka_run_group_tests_name("spill_key", tests, NULL, NULL);
}
