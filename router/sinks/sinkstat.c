#include "router/sinks/sinkstat.h"

#include <string.h>
#include <xxhash.h>

#include "core/timeutil.h"

void sinkstat_init(struct sinkstat *s)
{
    memset(s, 0, sizeof(*s));
    pthread_mutex_init(&s->mu, NULL);
}

void sinkstat_free(struct sinkstat *s)
{
    pthread_mutex_destroy(&s->mu);
}

/* The value of the last "received_at" in the record (canonical events carry one; routes that
 * add fields append them after it, hence searching from the end). */
static const char *received_at(const char *json, size_t len)
{
    static const char pat[] = "\"received_at\":\"";
    const size_t pl = sizeof(pat) - 1;
    if (len < pl + TIME_RFC3339_LEN)
        return NULL;
    for (size_t i = len - pl - TIME_RFC3339_LEN + 1; i-- > 0;) {
        if (json[i] == '"' && memcmp(json + i, pat, pl) == 0)
            return json + i + pl;
    }
    return NULL;
}

static struct sinkstat_window *window(struct sinkstat *s, const char *key)
{
    if (s->win[s->last].key[0] && memcmp(s->win[s->last].key, key, 18) == 0)
        return &s->win[s->last];
    for (int i = 0; i < SINKSTAT_WINDOWS; i++) {
        if (s->win[i].key[0] && memcmp(s->win[i].key, key, 18) == 0) {
            s->last = i;
            return &s->win[i];
        }
    }
    s->last = s->next;
    struct sinkstat_window *w = &s->win[s->next];
    s->next = (s->next + 1) % SINKSTAT_WINDOWS;
    memset(w, 0, sizeof(*w));
    memcpy(w->key, key, 18);
    return w;
}

void sinkstat_begin(struct sinkstat *s)
{
    pthread_mutex_lock(&s->mu);
}

void sinkstat_end(struct sinkstat *s)
{
    pthread_mutex_unlock(&s->mu);
}

void sinkstat_record(struct sinkstat *s, const char *json, size_t len, int64_t now_ns)
{
    const char *ra = received_at(json, len);
    uint64_t h = XXH3_64bits(json, len);
    struct sinkstat_window *w = window(s, ra ? ra : "(no received_at)..");
    w->count++;
    w->sum += h;
    w->xor ^= h;
    if (ra && (s->sampled++ & 15) == 0) {
        int64_t t;
        if (time_parse_rfc3339(ra, TIME_RFC3339_LEN, &t) == 0 && now_ns > t) {
            uint64_t us = (uint64_t)(now_ns - t) / 1000;
            int b = 0;
            while (b < SINKSTAT_BUCKETS - 1 && us >= (2ULL << b))
                b++;
            s->lat[b]++;
            s->lat_n++;
        }
    }
}

double sinkstat_percentile(struct sinkstat *s, double p)
{
    pthread_mutex_lock(&s->mu);
    uint64_t want = (uint64_t)(p * (double)s->lat_n), seen = 0;
    double v = 0;
    for (int b = 0; b < SINKSTAT_BUCKETS && s->lat_n; b++) {
        seen += s->lat[b];
        if (seen > want || b == SINKSTAT_BUCKETS - 1) {
            v = (double)(2ULL << b);
            break;
        }
    }
    pthread_mutex_unlock(&s->mu);
    return v;
}

int sinkstat_windows(struct sinkstat *s, struct sinkstat_window *out)
{
    pthread_mutex_lock(&s->mu);
    int n = 0;
    for (int i = 1; i <= SINKSTAT_WINDOWS; i++) {
        const struct sinkstat_window *w =
            &s->win[(s->next - i + SINKSTAT_WINDOWS) % SINKSTAT_WINDOWS];
        if (w->key[0])
            out[n++] = *w;
    }
    pthread_mutex_unlock(&s->mu);
    return n;
}
