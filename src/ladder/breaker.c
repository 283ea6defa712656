/*
 * breaker.c - the ladder's breakers: one per upstream model, a rung's own
 * when its model is fixed, else entries of a small table of the
 * pass-through models failing now.  See ladder_int.h and, for the policy,
 * ladder.c.
 */
#include "ladder/ladder_int.h"

#include <string.h>

static uint64_t name_hash(const char *s, size_t len)
{
    return tg_fnv1a64(s, len, TG_FNV64_INIT);
}

bool tg_ladder_breaker_failing(const struct breaker *b)
{
    return b->fails || b->open_until_ns;
}

/* Back to healthy; a table entry gives up its slot. */
static void breaker_clear(struct tg_ladder *l, struct breaker *b)
{
    if (b->backend) {
        memset(b, 0, sizeof(*b));
        l->tracked--;
        return;
    }
    b->fails = 0;
    b->open_until_ns = 0;
    b->turns = b->calls = 0;
    b->probe = 0;
}

/* Faults that never opened the breaker and are long past are forgotten. */
static bool breaker_stale(const struct breaker *b, int64_t now)
{
    return b->fails && !b->open_until_ns && !b->probe && now - b->fault_ns > FORGET_NS;
}

/* Which entry a full table gives up first: closed before open, then the least recently used. */
static bool evict_before(const struct breaker *a, const struct breaker *b)
{
    if (!b)
        return true;
    if (!a->open_until_ns != !b->open_until_ns)
        return !a->open_until_ns;
    return a->used_ns < b->used_ns;
}

/*
 * The breaker that guards rung r's calls for model (the client's): the
 * rung's own when its model is fixed, else the table entry of (backend,
 * model); NULL on a ladder without breakers.  A healthy pass-through model
 * has no entry: NULL, unless create, which takes a free slot or, with the
 * table full, the entry evict_before picks among those without a probe in
 * flight (NULL when every entry has one).  A client naming random models
 * thus costs at most BREAKERS entries.
 */
struct breaker *tg_ladder_breaker_get(struct tg_ladder *l, struct rung *r, const char *model,
                                      bool create, int64_t now)
{
    if (!l->breakers)
        return NULL;
    if (!r->pass_through) {
        if (breaker_stale(&r->br, now))
            breaker_clear(l, &r->br);
        return &r->br;
    }
    if (!l->tracked && !create)
        return NULL;
    const char *m = model ? model : "";
    size_t len = strlen(m);
    uint64_t h = name_hash(m, len);
    struct breaker *slot = NULL, *victim = NULL;
    size_t seen = 0;
    for (size_t i = 0; i < BREAKERS && (create || seen < l->tracked); i++) {
        struct breaker *e = &l->models[i];
        if (!e->backend) {
            if (!slot)
                slot = e;
            continue;
        }
        seen++;
        if (e->backend == r->backend && e->hash == h && e->len == len &&
            !strncmp(e->model, m, sizeof(e->model) - 1)) {
            if (!breaker_stale(e, now)) {
                e->used_ns = now;
                return e;
            }
            breaker_clear(l, e);
            slot = e;
            break;
        }
        if (!e->probe && evict_before(e, victim))
            victim = e;
    }
    if (!create)
        return NULL;
    if (!slot && victim) {
        tg_info("ladder: %d failing models tracked; forgetting model '%s' of backend %s", BREAKERS,
                victim->model, tg_backend_name(victim->backend));
        breaker_clear(l, victim);
        slot = victim;
    }
    if (!slot)
        return NULL;
    slot->backend = r->backend;
    slot->hash = h;
    slot->len = len;
    tg_strlcpy(slot->model, m, sizeof(slot->model));
    slot->used_ns = now;
    l->tracked++;
    return slot;
}

/*
 * May turn d call rung r's model now?  A healthy model: yes, with retries.
 * A failing one counts the turn, and lets it call once, without retries,
 * only while the model has had fewer calls than turns since its first
 * fault; while open, not at all; half-open, as the one probe in flight (a
 * probe_share of the turns that find it so), which d then holds.
 */
bool tg_ladder_breaker_admit(struct tg_dispatch *d, struct rung *r, int64_t now)
{
    struct tg_ladder *l = d->l;
    struct breaker *b = tg_ladder_breaker_get(l, r, d->rq.model, false, now);
    d->may_retry = !b || !tg_ladder_breaker_failing(b);
    if (d->may_retry)
        return true;
    b->turns++;
    if (b->calls >= b->turns)
        return false;
    if (b->open_until_ns) {
        if (now < b->open_until_ns || b->probe || tg_ladder_uniform(l) >= l->probe_share)
            return false;
        b->probe = d->probe = ++l->probe_seq;
    }
    return true;
}

/* A call on rung r is about to start: a failing model counts it. */
void tg_ladder_breaker_call(struct tg_dispatch *d, struct rung *r, int64_t now)
{
    struct breaker *b = tg_ladder_breaker_get(d->l, r, d->rq.model, false, now);
    if (b && tg_ladder_breaker_failing(b))
        b->calls++;
}

/* d leaves its rung or its call ended: give back the probe it holds, if any. */
void tg_ladder_probe_release(struct tg_dispatch *d)
{
    if (!d->probe)
        return;
    if (d->rung < d->l->n) {
        struct breaker *b = tg_ladder_breaker_get(d->l, &d->l->rungs[d->rung], d->rq.model, false,
                                                  tg_clock_mono_ns());
        if (b && b->probe == d->probe)
            b->probe = 0;
    }
    d->probe = 0;
}

/* What d's call on rung r did: any answer from the upstream (even a
 * refusal) closes the breaker; a fault starts or continues its count, and
 * opens it after `failures` in a row, or again when a probe fails. */
void tg_ladder_breaker_result(struct tg_dispatch *d, struct rung *r, bool fault, int64_t now)
{
    struct tg_ladder *l = d->l;
    tg_ladder_probe_release(d);
    struct breaker *b = tg_ladder_breaker_get(l, r, d->rq.model, fault, now);
    if (!b)
        return;
    if (!fault) {
        if (b->open_until_ns)
            tg_info("ladder: rung %s (model %s) answered again; breaker closed", r->name,
                    r->fixed ? r->fixed : b->model);
        if (tg_ladder_breaker_failing(b))
            breaker_clear(l, b);
        return;
    }
    if (!tg_ladder_breaker_failing(b)) {
        b->turns = 1; /* this turn and its call begin the count */
        b->calls = 1;
    }
    b->fails++;
    b->fault_ns = now;
    bool half_open = b->open_until_ns && now >= b->open_until_ns;
    if (half_open || (!b->open_until_ns && b->fails >= l->breaker_failures)) {
        if (!b->open_until_ns)
            tg_warn("ladder: rung %s (model %s) failed %d times in a row; breaker open, "
                    "probed every %lld ms",
                    r->name, r->fixed ? r->fixed : b->model, b->fails,
                    (long long)l->breaker_open_ms);
        b->open_until_ns = now + l->breaker_open_ms * 1000000;
    }
}
