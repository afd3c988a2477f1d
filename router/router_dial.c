/* Runtime changes to routes: the sampling dial, enable/disable, reset to the configured value
 * and expiry. Each is applied at once (workers read the route's atomics), written to the store
 * so that it survives a restart, and audited. */
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "core/store.h"
#include "core/timeutil.h"
#include "router/router_int.h"

/* The routes as the store keeps them, from the config. */
static int reconcile(struct router *r)
{
    const struct route_config *rc = r->cfg->routes;
    int n = r->cfg->nroutes;
    struct store_route *sr = calloc((size_t)n + 1, sizeof(*sr));
    char **lists = calloc((size_t)n * 2 + 1, sizeof(char *));
    int rc_ = sr && lists ? 0 : -ENOMEM;
    for (int i = 0; i < n && !rc_; i++) {
        json_t *a = json_array(), *b = json_array();
        for (int j = 0; j < rc[i].sinks.n; j++)
            json_array_append_new(a, json_string(rc[i].sinks.v[j]));
        for (int j = 0; j < rc[i].shadow.n; j++)
            json_array_append_new(b, json_string(rc[i].shadow.v[j]));
        lists[2 * i] = json_dumps(a, JSON_COMPACT);
        lists[2 * i + 1] = json_dumps(b, JSON_COMPACT);
        json_decref(a);
        json_decref(b);
        sr[i] = (struct store_route){rc[i].name,       rc[i].script, rc[i].sample_rate,
                                     rc[i].sample_key, lists[2 * i], lists[2 * i + 1],
                                     rc[i].enabled,    rc[i].stop};
    }
    if (!rc_)
        rc_ = store_routes_reconcile(r->st, sr, n);
    for (int i = 0; lists && i < n * 2; i++)
        free(lists[i]);
    free(lists);
    free(sr);
    return rc_;
}

struct route *router__find(struct router *r, const char *name)
{
    for (int i = 0; i < r->nroutes; i++) {
        if (strcmp(r->routes[i].name, name) == 0)
            return &r->routes[i];
    }
    return NULL;
}

/* The route named route with r->mu held, or NULL (not held) with err set. */
static struct route *lock_route(struct router *r, const char *route, char *err, size_t errlen)
{
    pthread_mutex_lock(&r->mu);
    struct route *rt = router__find(r, route);
    if (!rt) {
        pthread_mutex_unlock(&r->mu);
        snprintf(err, errlen, "no route named %s", route);
    }
    return rt;
}

/* Applies one stored override (under the lock). */
static void apply_override(void *ud, const struct store_override *o)
{
    struct router *r = ud;
    struct route *rt = router__find(r, o->route);
    if (!rt)
        return;
    struct route_origin org = {1, o->set_ns, o->expires_ns, o->uid};
    if (strcmp(o->key, "sample_rate") == 0) {
        route_set_rate(rt, strtod(o->value, NULL));
        rt->rate_origin = org;
    } else if (strcmp(o->key, "enabled") == 0) {
        atomic_store(&rt->enabled, atoi(o->value));
        rt->enabled_origin = org;
    }
}

/* Reconciles the config's routes into the store, then puts runtime changes back in force:
 * a dial made before a restart survives it (and still reverts on time). */
int router__restore(struct router *r, char *err, size_t errlen)
{
    if (reconcile(r)) {
        snprintf(err, errlen, "cannot write the route table to %s", store_path(r->st));
        return -EIO;
    }
    pthread_mutex_lock(&r->mu);
    int rc = store_overrides_each(r->st, apply_override, r);
    pthread_mutex_unlock(&r->mu);
    if (rc) {
        snprintf(err, errlen, "cannot read overrides from %s", store_path(r->st));
        return rc;
    }
    router_expire(r, time_now_ns());
    return 0;
}

/* Puts the configured value back in force (under mu); the caller then clears the stored
 * override with unpersist, after releasing mu. */
static void revert(struct route *rt, const char *key)
{
    if (strcmp(key, "sample_rate") == 0) {
        route_set_rate(rt, rt->cfg_rate);
        memset(&rt->rate_origin, 0, sizeof(rt->rate_origin));
    } else {
        atomic_store(&rt->enabled, rt->cfg_enabled);
        memset(&rt->enabled_origin, 0, sizeof(rt->enabled_origin));
    }
}

static void unpersist(struct router *r, struct route *rt, const char *key)
{
    if (r->st)
        store_override_clear(r->st, rt->name, key);
}

int router_expire(struct router *r, int64_t now_ns)
{
    static const char *const keys[2] = {"sample_rate", "enabled"};
    int n = 0;
    pthread_mutex_lock(&r->persist_mu);
    pthread_mutex_lock(&r->mu);
    for (int i = 0; i < r->nroutes; i++) {
        struct route *rt = &r->routes[i];
        struct route_origin *o[2] = {&rt->rate_origin, &rt->enabled_origin};
        for (int k = 0; k < 2; k++) {
            r->expired[i * 2 + k] =
                o[k]->overridden && o[k]->expires_ns && o[k]->expires_ns <= now_ns;
            if (r->expired[i * 2 + k])
                revert(rt, keys[k]);
        }
    }
    pthread_mutex_unlock(&r->mu);
    for (int i = 0; i < r->nroutes * 2; i++) {
        if (!r->expired[i])
            continue;
        struct route *rt = &r->routes[i / 2];
        unpersist(r, rt, keys[i % 2]);
        char value[32];
        if (i % 2)
            snprintf(value, sizeof(value), "%s", rt->cfg_enabled ? "true" : "false");
        else
            snprintf(value, sizeof(value), "%g", rt->cfg_rate);
        log_info("runtime override expired: back to the configured value", "{s:s, s:s, s:s}",
                 "route", rt->name, "key", keys[i % 2], "value", value);
        n++;
    }
    pthread_mutex_unlock(&r->persist_mu);
    return n;
}

static void audit(struct router *r, const struct router_actor *who, const char *cmd,
                  const char *target, const char *old, const char *new)
{
    if (!r->st)
        return;
    struct store_audit a = {.uid = who->uid,
                            .pid = who->pid,
                            .command = cmd,
                            .target = target,
                            .old_value = old,
                            .new_value = new};
    if (store_audit_add(r->st, &a)) /* the trail is kept in the log instead */
        log_warn("audit entry not written to the store", "{s:s, s:s, s:s, s:s, s:I, s:I}",
                 "command", cmd, "target", target ? target : "", "old", old ? old : "", "new",
                 new ? new : "", "uid", (json_int_t)who->uid, "pid", (json_int_t)who->pid);
}

int router_dial(struct router *r, const char *route, double rate, int64_t for_ns,
                const struct router_actor *who, char *err, size_t errlen)
{
    if (!(rate >= 0.0 && rate <= 1.0)) {
        snprintf(err, errlen, "rate must be between 0 and 1");
        return -EINVAL;
    }
    pthread_mutex_lock(&r->persist_mu);
    struct route *rt = lock_route(r, route, err, errlen);
    if (!rt) {
        pthread_mutex_unlock(&r->persist_mu);
        return -ENOENT;
    }
    char old[64], new[64];
    snprintf(old, sizeof(old), "%g", route_rate(rt));
    snprintf(new, sizeof(new), "%g", rate);
    int64_t now = time_now_ns();
    route_set_rate(rt, rate); /* workers read it for the next event */
    rt->rate_origin = (struct route_origin){1, now, for_ns ? now + for_ns : 0, who->uid};
    struct store_override o = {
        .expires_ns = rt->rate_origin.expires_ns, .set_ns = now, .uid = who->uid};
    snprintf(o.route, sizeof(o.route), "%s", route);
    snprintf(o.key, sizeof(o.key), "sample_rate");
    snprintf(o.value, sizeof(o.value), "%.17g", rate);
    pthread_mutex_unlock(&r->mu);
    int rc = r->st ? store_override_set(r->st, &o) : 0;
    char detail[96];
    if (for_ns)
        snprintf(detail, sizeof(detail), "%s for %gs", new, (double)for_ns / 1e9);
    else
        snprintf(detail, sizeof(detail), "%s", new);
    audit(r, who, "sample", route, old, detail);
    pthread_mutex_unlock(&r->persist_mu);
    log_info("sampling dialed", "{s:s, s:s, s:s, s:I}", "route", route, "from", old, "to", detail,
             "uid", (json_int_t)who->uid);
    if (rc)
        snprintf(err, errlen, "applied, but could not be persisted to %s", store_path(r->st));
    return rc;
}

int router_set_enabled(struct router *r, const char *route, int enabled,
                       const struct router_actor *who, char *err, size_t errlen)
{
    pthread_mutex_lock(&r->persist_mu);
    struct route *rt = lock_route(r, route, err, errlen);
    if (!rt) {
        pthread_mutex_unlock(&r->persist_mu);
        return -ENOENT;
    }
    int was = atomic_load(&rt->enabled);
    atomic_store(&rt->enabled, enabled);
    int64_t now = time_now_ns();
    rt->enabled_origin = (struct route_origin){1, now, 0, who->uid};
    struct store_override o = {.set_ns = now, .uid = who->uid};
    snprintf(o.route, sizeof(o.route), "%s", route);
    snprintf(o.key, sizeof(o.key), "enabled");
    snprintf(o.value, sizeof(o.value), "%d", enabled);
    pthread_mutex_unlock(&r->mu);
    int rc = r->st ? store_override_set(r->st, &o) : 0;
    audit(r, who, enabled ? "route enable" : "route disable", route, was ? "enabled" : "disabled",
          enabled ? "enabled" : "disabled");
    pthread_mutex_unlock(&r->persist_mu);
    if (rc)
        snprintf(err, errlen, "applied, but could not be persisted to %s", store_path(r->st));
    return rc;
}

int router_reset(struct router *r, const char *route, const char *key,
                 const struct router_actor *who, char *err, size_t errlen)
{
    pthread_mutex_lock(&r->persist_mu);
    struct route *rt = lock_route(r, route, err, errlen);
    if (!rt) {
        pthread_mutex_unlock(&r->persist_mu);
        return -ENOENT;
    }
    int is_rate = !strcmp(key, "sample_rate");
    char old[64], new[64];
    if (is_rate) {
        snprintf(old, sizeof(old), "%g", route_rate(rt));
        snprintf(new, sizeof(new), "%g (config)", rt->cfg_rate);
    } else {
        snprintf(old, sizeof(old), "%s", atomic_load(&rt->enabled) ? "enabled" : "disabled");
        snprintf(new, sizeof(new), "%s (config)", rt->cfg_enabled ? "enabled" : "disabled");
    }
    revert(rt, key);
    pthread_mutex_unlock(&r->mu);
    unpersist(r, rt, key);
    audit(r, who, is_rate ? "sample reset" : "route reset", route, old, new);
    pthread_mutex_unlock(&r->persist_mu);
    log_info("runtime override cleared: back to the configured value", "{s:s, s:s, s:s, s:I}",
             "route", route, "key", key, "value", new, "uid", (json_int_t)who->uid);
    return 0;
}
