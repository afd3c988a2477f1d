/* The balance of `stats`: every stage's counters checked against one identity, so that no loss
 * is ever silent. Each identity adds counters that are counted independently of each other
 * (held and queued are the rings' own record counts, not differences of counters), so a record
 * that vanished shows as a difference. Computed from the stats document itself, so the numbers
 * shown and the balance agree; see docs/admin.md ("Balance"). */
#include <jansson.h>
#include <string.h>
#include <time.h>

#include "control/admin_int.h"
#include "core/stats.h"

#define SNAPSHOTS   10
#define SNAPSHOT_NS 5000000 /* between snapshots: 50 ms at most for a stats call under load */

static long long ival(json_t *o, const char *k)
{
    return (long long)json_integer_value(json_object_get(o, k));
}

/* Appends {"stage","rule","left","right","difference"}. */
static void check(json_t *checks, const char *stage, const char *name, const char *rule,
                  long long left, long long right)
{
    char label[300];
    snprintf(label, sizeof(label), "%s%s%s", stage, name ? " " : "", name ? name : "");
    json_array_append_new(checks,
                          json_pack("{s:s, s:s, s:I, s:I, s:I}", "stage", label, "rule", rule,
                                    "left", (json_int_t)left, "right", (json_int_t)right,
                                    "difference", (json_int_t)(left - right)));
}

/* The rule of a stage whose table marks what comes in and what goes out: "in = out + held". */
static int stage_rule(const struct stat_stage *stage, char *rule, size_t len)
{
    size_t o = 0;
    int nout = 0;
    rule[0] = '\0';
    for (const struct stat_field *f = stage->fields; f->name; f++) {
        if (f->flags & STAT_IN)
            o += (size_t)snprintf(rule + o, o < len ? len - o : 0, "%s = ", f->name);
    }
    for (const struct stat_field *f = stage->fields; f->name && o; f++) {
        if (f->flags & STAT_OUT)
            o += (size_t)snprintf(rule + o, o < len ? len - o : 0, "%s%s", nout++ ? " + " : "",
                                  f->name);
    }
    return nout > 0;
}

/* Each element of such a stage: what came in equals the sum of what went out. */
static void stage_checks(json_t *st, json_t *checks, const struct stat_stage *stage)
{
    char rule[256];
    if (!stage->id || !stage_rule(stage, rule, sizeof(rule)))
        return;
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(st, stage->key), i, v)
    {
        json_t *c = stat_fields_of(stage, v);
        long long in = 0, out = 0;
        for (const struct stat_field *f = stage->fields; f->name; f++) {
            in += f->flags & STAT_IN ? ival(c, f->name) : 0;
            out += f->flags & STAT_OUT ? ival(c, f->name) : 0;
        }
        char name[32];
        check(checks, stage->name, stat_id_of(stage, v, name, sizeof(name)), rule, in, out);
    }
}

/* Records that pass from one stage to the next arrive there: the inputs' accepted records are
 * in the partitions (or the Kafka topic), and every dead letter reached the dead-letter sink or
 * was counted without one. */
static void flow_checks(json_t *st, json_t *checks)
{
    size_t i;
    json_t *v;
    long long accepted = 0, dead = 0, errors = 0;
    json_array_foreach(json_object_get(st, "inputs"), i, v) accepted += ival(v, "accepted");
    json_t *col = json_object_get(st, "collector");
    json_t *kf = json_object_get(st, "kafka");
    if (col && kf) { /* Kafka mode: the inputs feed the topic, the rings are fed by the consumer */
        check(checks, "inputs -> kafka", NULL, "accepted = produced + staged", accepted,
              ival(kf, "produced") + ival(col, "staged"));
    } else if (col) { /* a router role has no inputs here */
        long long to_partitions = 0;
        json_array_foreach(json_object_get(st, "partitions"), i, v)
        {
            /* Replayed records come back from the spill topic: they entered once, as spilled. */
            to_partitions += ival(v, "in") - ival(v, "replayed") + ival(v, "spilled");
        }
        check(checks, "inputs -> partitions", NULL,
              "accepted = partition in - replayed + spilled + staged", accepted,
              to_partitions + ival(col, "staged"));
    }
    json_array_foreach(json_object_get(st, "partitions"), i, v) dead += ival(v, "dead_letters");
    json_array_foreach(json_object_get(st, "routes"), i, v) errors +=
        ival(json_object_get(v, "counters"), "errors");
    json_t *r = json_object_get(st, "router");
    check(checks, "dead letters", NULL,
          "partition dead_letters + route errors = router dead_letter + dead_letter_unsunk",
          dead + errors, ival(r, "dead_letter") + ival(r, "dead_letter_unsunk"));
}

static json_t *checks_of(json_t *st)
{
    json_t *checks = json_array();
    for (int i = 0; stat_stages[i]; i++)
        stage_checks(st, checks, stat_stages[i]);
    flow_checks(st, checks);
    return checks;
}

/* The first check that does not balance, or NULL. */
static json_t *first_difference(json_t *checks)
{
    size_t i;
    json_t *c;
    json_array_foreach(checks, i, c)
    {
        if (ival(c, "difference"))
            return c;
    }
    return NULL;
}

/* Whether any counter of the checks moved between two snapshots. */
static int moved(json_t *a, json_t *b)
{
    if (json_array_size(a) != json_array_size(b))
        return 1;
    for (size_t i = 0; i < json_array_size(a); i++) {
        json_t *x = json_array_get(a, i), *y = json_array_get(b, i);
        if (ival(x, "left") != ival(y, "left") || ival(x, "right") != ival(y, "right"))
            return 1;
    }
    return 0;
}

/* Counters are read one after the other while events move, so a snapshot taken under load can
 * be off by what moved between two reads. A snapshot that balances is reported as such; one that
 * does not is taken again, a few times, 5 ms apart (a thread preempted between two counters must
 * not look like a loss): if one of them balances, that one is shown; if the counters kept moving,
 * the differences are "in_flight"; if nothing moved over the whole window yet a difference stays,
 * records were lost (or counted twice): "unbalanced". */
json_t *admin__stats_balanced(const struct control_deps *d)
{
    json_t *st = admin__stats(d), *checks = checks_of(st), *first = json_incref(checks);
    json_t *diff = first_difference(checks);
    for (int n = 1; diff && n < SNAPSHOTS; n++) {
        struct timespec ts = {0, SNAPSHOT_NS};
        nanosleep(&ts, NULL);
        json_decref(st);
        json_decref(checks);
        st = admin__stats(d);
        checks = checks_of(st);
        diff = first_difference(checks);
    }
    const char *state = !diff ? "balanced" : moved(first, checks) ? "in_flight" : "unbalanced";
    json_decref(first);
    json_t *b = json_pack("{s:s, s:O}", "state", state, "checks", checks);
    if (diff) {
        json_object_set(b, "stage", json_object_get(diff, "stage"));
        json_object_set(b, "difference", json_object_get(diff, "difference"));
    }
    json_decref(checks);
    json_object_set_new(st, "balance", b);
    return st;
}
