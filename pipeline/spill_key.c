#include "pipeline/spill_key.h"

#include <string.h>

static void put64(unsigned char *d, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        d[i] = (unsigned char)(v >> (8 * i));
}

void spill_key(unsigned char *key, uint64_t run, uint64_t seq)
{
    put64(key, run);
    put64(key + 8, seq);
}

static uint64_t get64(const unsigned char *d)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)d[i] << (8 * i);
    return v;
}

void spill_batch_key(unsigned char *key, uint64_t run, uint64_t seq, uint64_t first)
{
    put64(key, run);
    put64(key + 8, seq);
    put64(key + 16, first);
}

int spill_key_read(const void *key, size_t len, uint64_t *run, uint64_t *seq, uint64_t *first)
{
    const unsigned char *k = key;
    if (!k || (len != SPILL_KEY && len != SPILL_BATCH_KEY))
        return 0;
    *run = get64(k);
    *seq = get64(k + 8);
    *first = len == SPILL_BATCH_KEY ? get64(k + 16) : 0;
    return 1;
}

void spill_seen_reset(struct spill_seen *s, struct spill_mark mark)
{
    s->mark = mark;
    memset(s->above, 0, sizeof(s->above));
}

static int bit(const struct spill_seen *s, uint64_t seq)
{
    uint64_t i = seq % SPILL_WINDOW;
    return (int)(s->above[i / 64] >> (i % 64) & 1);
}

static void set_bit(struct spill_seen *s, uint64_t seq, int on)
{
    uint64_t i = seq % SPILL_WINDOW, m = (uint64_t)1 << (i % 64);
    s->above[i / 64] = on ? s->above[i / 64] | m : s->above[i / 64] & ~m;
}

/* Moves the mark up to `to`, forgetting what was known between: gaps there are given up on. */
static void slide(struct spill_seen *s, uint64_t to)
{
    if (to - s->mark.seq >= SPILL_WINDOW)
        memset(s->above, 0, sizeof(s->above));
    else
        for (uint64_t q = s->mark.seq + 1; q <= to; q++)
            set_bit(s, q, 0);
    s->mark.seq = to;
}

int spill_seen_copy(struct spill_seen *s, const void *key, size_t len)
{
    uint64_t run, seq, first;
    if (!spill_key_read(key, len, &run, &seq, &first))
        return 0;
    if (run != s->mark.run)
        spill_seen_reset(s, (struct spill_mark){run, 0});
    if (seq <= s->mark.seq)
        return 1;
    if (seq - s->mark.seq > SPILL_WINDOW)
        slide(s, seq - SPILL_WINDOW);
    if (bit(s, seq))
        return 1;
    set_bit(s, seq, 1);
    while (bit(s, s->mark.seq + 1)) { /* the mark follows what is taken in order */
        set_bit(s, s->mark.seq + 1, 0);
        s->mark.seq++;
    }
    return 0;
}
