#include "pipeline/spill_key.h"

#include <string.h>

void spill_key(unsigned char *key, uint64_t run, uint64_t seq)
{
    for (int i = 0; i < 8; i++) {
        key[i] = (unsigned char)(run >> (8 * i));
        key[8 + i] = (unsigned char)(seq >> (8 * i));
    }
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
    const unsigned char *k = key;
    uint64_t run = 0, seq = 0;
    if (!k || len != SPILL_KEY)
        return 0;
    for (int i = 0; i < 8; i++) {
        run |= (uint64_t)k[i] << (8 * i);
        seq |= (uint64_t)k[8 + i] << (8 * i);
    }
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
