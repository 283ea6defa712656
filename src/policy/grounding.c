/*
 * grounding.c - whether the quantities an answer states can be found in
 * the evidence it was drawn from (policy.h, docs/internals/grounding.md).
 *
 * One lexical scanner reads the quantities of a text: amounts of money,
 * percentages, calendar dates, times of day, durations and counts with a
 * unit, other numbers of two or more digits, and digit codes such as
 * hotlines.  Each becomes a key: a value with its unit, a (year, month,
 * day) triple, or a hash of a code's digits.  The evidence is scanned once
 * per call into a hash set of keys; every claim of the draft is then
 * looked up in it.  Values are compared as numbers, so notation does not
 * matter ("5万元" = "50000元" = "五万元"); a unit or a year missing on
 * either side matches any.
 *
 * Numerals are read by the numeral scanner (text/numbers.h), which the
 * entity extractor shares.  Money is recognised by the cues
 * tg_entities_extract uses (currency signs and words, 千/万/亿, w/k,
 * thousand/million), but here, in the same single pass over the text as
 * everything else: extraction reads every character through its money
 * word lists (about 25 ns a byte on Chinese text), which alone would take
 * most of the time a check may cost.
 *
 * This file holds the evidence set and the check; grounding_scan.c is the
 * scanner, grounding_dates.c its dates, times and digit chains.
 */
#include "policy/grounding_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const kind_names[] = {"amount", "percent", "date", "number"};

/* ------------------------------------------------------------ the evidence set */

/*
 * The quantities of the evidence, and an open-addressing hash table over
 * the values and codes among them (dates, few and matched with wildcards,
 * are looked through in order).  Small evidence fits the local arrays.
 */
struct set {
    struct qty *v;
    size_t n, cap;
    uint32_t *slot; /* 1 + an index into v; 0: empty */
    size_t nslot;   /* a power of two, at least twice n */
    struct qty local[128];
    uint32_t local_slot[256];
};

static void set_init(struct set *s)
{
    s->v = s->local;
    s->n = 0;
    s->cap = TG_ARRAY_LEN(s->local);
    s->slot = s->local_slot;
    s->nslot = 0;
}

static void set_free(struct set *s)
{
    if (s->v != s->local)
        tg_free(s->v);
    if (s->slot != s->local_slot)
        tg_free(s->slot);
    set_init(s);
}

static int set_add(struct set *s, const struct qty *q)
{
    if (s->n == s->cap) {
        size_t cap = s->cap * 2;
        struct qty *v =
            s->v == s->local ? tg_malloc(cap * sizeof(*v)) : tg_realloc(s->v, cap * sizeof(*v));
        if (!v)
            return TG_E_NOMEM;
        if (s->v == s->local)
            memcpy(v, s->local, sizeof(s->local));
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n++] = *q;
    return TG_OK;
}

/* Evidence: a bare integer is also a code, so "4008208820" grounds "400-820-8820". */
static int set_add_qty(void *ctx, const struct qty *q)
{
    struct qty c;
    int rc = set_add(ctx, q);
    if (rc || !q->coded)
        return rc;
    c = *q;
    c.group = G_CODE;
    return set_add(ctx, &c);
}

/* Values are equal when they agree to a millionth (integers past 10^9: to a unit). */
static uint64_t value_key(double v)
{
    double r = (fabs(v) < 1e9 ? nearbyint(v * 1e6) : nearbyint(v)) + 0.0;
    uint64_t bits;
    memcpy(&bits, &r, sizeof(bits));
    return bits;
}

static uint64_t key_of(const struct qty *q)
{
    return q->group == G_CODE ? q->code : value_key(q->v);
}

/* The splitmix64 finalizer: spreads a key over the table. */
static size_t key_slot(uint8_t group, uint64_t key, size_t mask)
{
    key ^= (uint64_t)group << 56;
    key = (key ^ (key >> 30)) * 0xbf58476d1ce4e5b9ULL;
    key = (key ^ (key >> 27)) * 0x94d049bb133111ebULL;
    return (size_t)(key ^ (key >> 31)) & mask;
}

static int set_index(struct set *s)
{
    size_t nslot = 16, h;
    while (nslot < 2 * s->n)
        nslot *= 2;
    if (nslot > TG_ARRAY_LEN(s->local_slot)) {
        s->slot = tg_calloc(nslot, sizeof(*s->slot));
        if (!s->slot) {
            s->slot = s->local_slot;
            return TG_E_NOMEM;
        }
    } else {
        memset(s->slot, 0, nslot * sizeof(*s->slot));
    }
    s->nslot = nslot;
    for (size_t i = 0; i < s->n; i++) {
        const struct qty *q = &s->v[i];
        uint64_t key = key_of(q);
        if (q->group == G_DATE)
            continue;
        /* Evidence repeats itself; a quantity already there is not added
         * again, which keeps the probe runs short. */
        for (h = key_slot(q->group, key, nslot - 1); s->slot[h]; h = (h + 1) & (nslot - 1)) {
            const struct qty *e = &s->v[s->slot[h] - 1];
            if (e->group == q->group && e->unit == q->unit && key_of(e) == key)
                break;
        }
        if (!s->slot[h])
            s->slot[h] = (uint32_t)(i + 1);
    }
    return TG_OK;
}

/* Whether the set holds a value (unit: U_NONE for any) or a code. */
static bool key_found(const struct set *s, uint8_t group, uint64_t key, uint32_t unit)
{
    size_t mask = s->nslot - 1, h = key_slot(group, key, mask);
    for (; s->slot[h]; h = (h + 1) & mask) {
        const struct qty *e = &s->v[s->slot[h] - 1];
        if (e->group == group && key_of(e) == key &&
            (unit == U_NONE || e->unit == U_NONE || e->unit == unit))
            return true;
    }
    return false;
}

static bool date_matches(const struct qty *c, const struct qty *e)
{
    if (c->y && e->y && c->y != e->y)
        return false;
    if (c->y && !e->y && !c->m)
        return false; /* a year needs the year */
    if (c->m && c->m != e->m)
        return false;
    return !c->d || c->d == e->d;
}

static bool date_found(const struct set *s, const struct qty *c)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->v[i].group == G_DATE && date_matches(c, &s->v[i]))
            return true;
    return false;
}

/* Whether the evidence holds the claim.  A bare year ("2024") and a date
 * of that year ("2024年") ground each other. */
static bool grounded(const struct set *s, const struct qty *c)
{
    struct qty year;
    if (c->group == G_CODE)
        return key_found(s, G_CODE, c->code, U_NONE);
    if (c->group == G_DATE)
        return date_found(s, c) ||
               (c->y && !c->m && key_found(s, G_VALUE, value_key(c->y), U_NONE));
    if (key_found(s, G_VALUE, value_key(c->v), c->unit) ||
        (c->coded && key_found(s, G_CODE, c->code, U_NONE)))
        return true;
    if (c->kind != K_NUMBER || c->unit != U_NONE || c->v < 1000 || c->v > 2999 ||
        c->v != floor(c->v))
        return false;
    grounding_make_date(&year, 0, 0, (int)c->v, 0, 0);
    return date_found(s, &year);
}

/* ------------------------------------------------------------ public */

struct check {
    const struct set *set;
    struct tg_claim *out;
    size_t max, count;
};

static int check_claim(void *ctx, const struct qty *q)
{
    struct check *ck = ctx;
    if (grounded(ck->set, q))
        return TG_OK;
    if (ck->count < ck->max)
        ck->out[ck->count] = (struct tg_claim){
            .start = (uint32_t)q->start, .end = (uint32_t)q->end, .kind = kind_names[q->kind]};
    ck->count++;
    return TG_OK;
}

/*
 * Beyond policy.h: evidence entries are NUL-terminated and may be NULL
 * (skipped); out may be NULL when max is 0; claim kinds are static
 * strings.  TG_E_INVAL for a NULL draft of non-zero length or a NULL
 * evidence array with n_evidence > 0, TG_E_TOOBIG for a draft past 4 GiB
 * (spans are 32-bit).  *n is written only on success.
 */
int tg_grounding_check(const char *draft, size_t draft_len, const char *const *evidence,
                       size_t n_evidence, struct tg_claim *out, size_t max, size_t *n)
{
    struct set set;
    struct check ck = {.set = &set, .out = out, .max = out ? max : 0};
    struct qscan sc;
    int rc = TG_OK;
    set_init(&set);
    if ((!draft && draft_len) || (!evidence && n_evidence)) {
        rc = TG_E_INVAL;
        goto out;
    }
    if (draft_len > UINT32_MAX) {
        rc = TG_E_TOOBIG;
        goto out;
    }
    for (size_t i = 0; i < n_evidence && rc == TG_OK; i++) {
        if (!evidence[i])
            continue;
        sc = (struct qscan){
            .in = {evidence[i], strlen(evidence[i])}, .emit = set_add_qty, .ctx = &set};
        rc = grounding_scan_text(&sc);
    }
    if (rc)
        goto out;
    rc = set_index(&set);
    if (rc)
        goto out;
    sc = (struct qscan){.in = {draft, draft_len}, .draft = true, .emit = check_claim, .ctx = &ck};
    rc = grounding_scan_text(&sc);
    if (rc == TG_OK)
        *n = ck.count;
out:
    set_free(&set);
    return rc;
}
