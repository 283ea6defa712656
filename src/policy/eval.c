/*
 * eval.c - the rules of one stage against the facts of one turn, in file
 * order, each reporting what made it fire.
 *
 * Keyword tests share one pass of the Aho-Corasick automaton per text
 * (norm or draft), run the first time a rule of the stage asks for it;
 * each regex runs at most once, also on first use.  Their results are kept
 * in scratch memory that lives in the same allocation as hits->v, after
 * its cap hits, so a struct tg_policy_hits is all the state an evaluation
 * needs and, once grown, evaluation allocates nothing:
 *
 *     [ hit 0 .. hit cap-1 ][ struct scratch ][ kw spans ][ rx records ]
 *
 * Only this file grows or frees hits->v; callers read v[0..n).
 */
#include "policy/policy_int.h"

#include "text/text.h"

#include <string.h>

struct span {
    uint32_t start, end; /* start == POLICY_NONE: no occurrence */
};

enum { RX_UNKNOWN, RX_NO, RX_YES };

struct rx_rec {
    uint32_t start, end;
    uint32_t state;
};

struct scratch {
    size_t kw_cap, rx_cap;
    pcre2_match_data *md; /* one ovector pair: the whole match */
};

_Static_assert(sizeof(struct tg_policy_hit) % _Alignof(struct scratch) == 0,
               "scratch follows the hits unaligned");
_Static_assert(sizeof(struct scratch) % _Alignof(struct span) == 0, "span records unaligned");
_Static_assert(sizeof(struct span) % _Alignof(struct rx_rec) == 0, "regex records unaligned");

static struct scratch *scratch_of(const struct tg_policy_hits *h)
{
    return (struct scratch *)(void *)(h->v + h->cap);
}

static struct span *spans_of(struct scratch *s)
{
    return (struct span *)(void *)(s + 1);
}

static struct rx_rec *rx_of(struct scratch *s)
{
    return (struct rx_rec *)(void *)(spans_of(s) + s->kw_cap);
}

void tg_policy_hits_init(struct tg_policy_hits *h)
{
    h->v = NULL;
    h->n = 0;
    h->cap = 0;
}

void tg_policy_hits_free(struct tg_policy_hits *h)
{
    if (h->v) {
        pcre2_match_data_free(scratch_of(h)->md);
        tg_free(h->v);
    }
    tg_policy_hits_init(h);
}

/* Room for nh hits and the scratch of nkw keyword and nrx regex tests. */
static int ensure(struct tg_policy_hits *h, size_t nh, size_t nkw, size_t nrx)
{
    struct scratch *old = h->v ? scratch_of(h) : NULL;
    pcre2_general_context *gctx = NULL;
    if (old && h->cap >= nh && old->kw_cap >= nkw && old->rx_cap >= nrx && (!nrx || old->md))
        return TG_OK;
    size_t cap = TG_MAX(TG_MAX(nh, h->cap), (size_t)4);
    size_t kwc = TG_MAX(nkw, old ? old->kw_cap : 0);
    size_t rxc = TG_MAX(nrx, old ? old->rx_cap : 0);
    pcre2_match_data *md = old ? old->md : NULL;
    if (!md && nrx) {
        gctx = pcre2_general_context_create(policy_pcre_alloc, policy_pcre_release, NULL);
        md = gctx ? pcre2_match_data_create(1, gctx) : NULL;
        pcre2_general_context_free(gctx);
        if (!md)
            return TG_E_NOMEM;
    }
    size_t bytes = sizeof(struct scratch);
    bool fits = cap <= (SIZE_MAX / 4) / sizeof(struct tg_policy_hit) &&
                kwc <= (SIZE_MAX / 4) / sizeof(struct span) &&
                rxc <= (SIZE_MAX / 4) / sizeof(struct rx_rec);
    bytes += cap * sizeof(struct tg_policy_hit) + kwc * sizeof(struct span) +
             rxc * sizeof(struct rx_rec);
    void *v = fits ? tg_malloc(bytes) : NULL;
    if (!v) {
        if (!old || md != old->md)
            pcre2_match_data_free(md);
        return TG_E_NOMEM;
    }
    tg_free(h->v);
    h->v = v;
    h->cap = cap;
    h->n = 0;
    struct scratch *s = scratch_of(h);
    s->kw_cap = kwc;
    s->rx_cap = rxc;
    s->md = md;
    return TG_OK;
}

/* ------------------------------------------------------------ evaluation */

struct ectx {
    const struct tg_policy *p;
    const struct tg_policy_facts *f;
    struct scratch *s;
    struct span *kw;
    struct rx_rec *rx;
    bool scanned[3]; /* by enum policy_field */
    uint8_t scan_field;
};

/*
 * What made a condition hold: the first leaf, in evaluation order, with a
 * span or value; failing that, the name of the first leaf that held
 * ("channel"), or "not", so a hit always names something.
 */
struct trig {
    const char *field;
    uint32_t start, end;
    double value;
    bool has_value;
    bool set;
    const char *fallback;
};

static const char *const field_names[] = {
    [PF_TEXT] = "text", [PF_NORM] = "norm", [PF_DRAFT] = "draft"};

static void trig_set(struct trig *t, const char *field, uint32_t start, uint32_t end, double value,
                     bool has_value)
{
    if (t->set)
        return;
    t->set = true;
    t->field = field;
    t->start = start;
    t->end = end;
    t->value = value;
    t->has_value = has_value;
}

static const char *field_text(const struct tg_policy_facts *f, uint8_t field, size_t *len)
{
    const char *s = field == PF_TEXT ? f->text : field == PF_NORM ? f->norm : f->draft;
    *len = field == PF_TEXT ? f->text_len : field == PF_NORM ? f->norm_len : f->draft_len;
    if (*len > UINT32_MAX - 1)
        *len = UINT32_MAX - 1;
    return s;
}

static bool cmp_holds(const struct policy_cmp *c, double x)
{
    for (uint8_t i = 0; i < c->n; i++) {
        double v = c->v[i];
        bool ok;
        switch (c->op[i]) {
        case OP_EQ:
            ok = x == v;
            break;
        case OP_NE:
            ok = x != v;
            break;
        case OP_GT:
            ok = x > v;
            break;
        case OP_GE:
            ok = x >= v;
            break;
        case OP_LT:
            ok = x < v;
            break;
        default:
            ok = x <= v;
            break;
        }
        if (!ok)
            return false;
    }
    return true;
}

/* A leaf without span or value held: name it unless something was named before. */
static bool named(struct trig *t, const char *name, bool held)
{
    if (held && !t->fallback)
        t->fallback = name;
    return held;
}

/* A comparison leaf: holds when x passes; the trigger is the value. */
static bool value(struct trig *t, const struct policy_node *n, double x)
{
    if (!cmp_holds(&n->cmp, x))
        return false;
    trig_set(t, n->name, 0, 0, x, true);
    return true;
}

static bool in_names(const struct policy_node *n, const char *s)
{
    if (!s)
        return false;
    for (size_t i = 0; i < n->n_names; i++) {
        if (strcmp(n->names[i], s) == 0)
            return true;
    }
    return false;
}

static size_t utf8_chars(const char *s, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += ((uint8_t)s[i] & 0xC0) != 0x80;
    return n;
}

/* A term occurred: keep, for each test of the scanned text using it, the leftmost (longest). */
static void on_term(void *arg, uint32_t term, uint32_t start, uint32_t end)
{
    struct ectx *e = arg;
    const struct tg_policy *p = e->p;
    for (uint32_t i = p->term_leaf_start[term]; i < p->term_leaf_start[term + 1]; i++) {
        uint32_t leaf = p->term_leaf[i];
        struct span *sp = &e->kw[leaf];
        if (p->kw[leaf].field != e->scan_field)
            continue;
        if (sp->start == POLICY_NONE || start < sp->start ||
            (start == sp->start && end > sp->end)) {
            sp->start = start;
            sp->end = end;
        }
    }
}

/* Run the automaton over one text, once per evaluation. */
static void scan(struct ectx *e, uint8_t field)
{
    size_t len;
    if (e->scanned[field])
        return;
    e->scanned[field] = true;
    for (size_t i = 0; i < e->p->n_kw; i++) {
        if (e->p->kw[i].field == field)
            e->kw[i].start = POLICY_NONE;
    }
    const char *text = field_text(e->f, field, &len);
    if (!text || !e->p->ac)
        return;
    e->scan_field = field;
    policy_ac_scan(e->p->ac, text, len, on_term, e);
}

/* Run regex id, once per evaluation. */
static const struct rx_rec *regex(struct ectx *e, uint32_t id)
{
    struct rx_rec *r = &e->rx[id];
    size_t len;
    if (r->state != RX_UNKNOWN)
        return r;
    r->state = RX_NO;
    const struct policy_rx *x = &e->p->rx[id];
    const char *s = field_text(e->f, x->field, &len);
    if (!s)
        return r;
    /* A failure to match (match limit, bad UTF-8) counts as no match. */
    int rc = pcre2_match(x->code, (PCRE2_SPTR)s, len, 0, 0, e->s->md, e->p->mctx);
    if (rc >= 0) {
        const PCRE2_SIZE *ov = pcre2_get_ovector_pointer(e->s->md);
        r->start = (uint32_t)ov[0];
        r->end = (uint32_t)TG_MAX(ov[1], ov[0]);
        r->state = RX_YES;
    }
    return r;
}

static bool eval_node(struct ectx *e, uint32_t idx, struct trig *t);

/*
 * all: every child, the trigger of the first that has one.  A false result
 * leaves t in no particular state: any and not give each child a trigger
 * of its own and drop it when the child fails, and a rule that does not
 * fire reports nothing.
 */
static bool eval_all(struct ectx *e, const struct policy_node *n, struct trig *t)
{
    for (uint32_t i = 0; i < n->n; i++) {
        if (!eval_node(e, e->p->kids[n->a + i], t))
            return false;
    }
    return true;
}

static bool eval_any(struct ectx *e, const struct policy_node *n, struct trig *t)
{
    for (uint32_t i = 0; i < n->n; i++) {
        struct trig sub = {0};
        if (eval_node(e, e->p->kids[n->a + i], &sub)) {
            if (sub.set)
                trig_set(t, sub.field, sub.start, sub.end, sub.value, sub.has_value);
            if (!t->fallback)
                t->fallback = sub.fallback;
            return true;
        }
    }
    return false;
}

static bool eval_money(const struct tg_policy_facts *f, const struct policy_node *n, struct trig *t)
{
    const struct tg_entities *en = f->entities;
    size_t count = en ? en->n_money : 0;
    if (n->kind == PC_MONEY_COUNT)
        return value(t, n, (double)count);
    if (n->kind == PC_MONEY_ANY) {
        if ((count > 0) != n->flag)
            return false;
        if (count)
            trig_set(t, "money", en->money[0].start, en->money[0].end, en->money[0].value_cny,
                     true);
        return true;
    }
    if (!count)
        return false;
    size_t best = 0;
    for (size_t i = 1; i < count; i++) {
        if (en->money[i].value_cny > en->money[best].value_cny)
            best = i;
    }
    double x = en->money[best].value_cny;
    if (!cmp_holds(&n->cmp, x))
        return false;
    trig_set(t, "money", en->money[best].start, en->money[best].end, x, true);
    return true;
}

static bool eval_pii(const struct tg_policy_facts *f, const struct policy_node *n, struct trig *t)
{
    const struct tg_entities *en = f->entities;
    size_t count = en ? en->n_pii : 0;
    if (n->kind == PC_PII_ANY) {
        if ((count > 0) != n->flag)
            return false;
        if (count)
            trig_set(t, "pii", en->pii[0].start, en->pii[0].end, 0, false);
        return true;
    }
    for (size_t i = 0; i < count; i++) {
        if (n->pii_mask & (1u << en->pii[i].type)) {
            trig_set(t, "pii", en->pii[i].start, en->pii[i].end, 0, false);
            return true;
        }
    }
    return false;
}

static bool eval_node(struct ectx *e, uint32_t idx, struct trig *t)
{
    const struct policy_node *n = &e->p->nodes[idx];
    const struct tg_policy_facts *f = e->f;
    switch ((enum policy_cond)n->kind) {
    case PC_ALL:
        return eval_all(e, n, t);
    case PC_ANY:
        return eval_any(e, n, t);
    case PC_NOT: {
        struct trig sub = {0};
        return named(t, "not", !eval_node(e, n->a, &sub));
    }
    case PC_INTENT:
        if (!in_names(n, f->intent))
            return false;
        trig_set(t, "intent", 0, 0, f->intent_confidence, true);
        return true;
    case PC_INTENT_CONFIDENCE:
        return value(t, n, f->intent_confidence);
    case PC_MONEY_MAX:
    case PC_MONEY_COUNT:
    case PC_MONEY_ANY:
        return eval_money(f, n, t);
    case PC_PII_ANY:
    case PC_PII_TYPE:
        return eval_pii(f, n, t);
    case PC_KEYWORDS:
    case PC_DRAFT_KEYWORDS: {
        uint8_t field = e->p->kw[n->a].field;
        scan(e, field);
        const struct span *sp = &e->kw[n->a];
        if (sp->start == POLICY_NONE)
            return false;
        trig_set(t, field_names[field], sp->start, sp->end, 0, false);
        return true;
    }
    case PC_REGEX:
    case PC_DRAFT_REGEX: {
        const struct rx_rec *r = regex(e, n->a);
        if (r->state != RX_YES)
            return false;
        trig_set(t, field_names[e->p->rx[n->a].field], r->start, r->end, 0, false);
        return true;
    }
    case PC_EVIDENCE_BEST:
        return value(t, n, f->best_score);
    case PC_EVIDENCE_COUNT:
        return value(t, n, (double)f->n_evidence);
    case PC_DEGRADATIONS:
        return value(t, n, (double)f->degradations);
    case PC_CHANNEL:
        return named(t, n->name, in_names(n, f->channel));
    case PC_TIER:
        return named(t, n->name, in_names(n, f->tier));
    case PC_DRAFT_UNGROUNDED:
        return value(t, n, (double)f->ungrounded);
    case PC_DRAFT_LENGTH:
        return value(t, n, f->draft ? (double)utf8_chars(f->draft, f->draft_len) : 0.0);
    case PC_DRAFT_LANGUAGE:
        return named(t, n->name, in_names(n, f->draft_language));
    case PC_CONFIDENCE:
        return f->confidence >= 0 && value(t, n, f->confidence);
    }
    return false;
}

int tg_policy_eval(const struct tg_policy *p, enum tg_policy_stage stage,
                   const struct tg_policy_facts *facts, struct tg_policy_hits *hits)
{
    TG_ASSERT(facts && hits);
    hits->n = 0;
    if (!p || (stage != TG_POLICY_PRE && stage != TG_POLICY_POST) || !p->n_stage[stage])
        return TG_OK;
    int rc = ensure(hits, p->n_stage[stage], p->n_kw, p->n_rx);
    if (rc)
        return rc;
    struct ectx e = {.p = p, .f = facts, .s = scratch_of(hits)};
    e.kw = spans_of(e.s);
    e.rx = rx_of(e.s);
    if (p->n_rx)
        memset(e.rx, 0, p->n_rx * sizeof(*e.rx));
    for (size_t i = 0; i < p->n_rules; i++) {
        const struct policy_rule *r = &p->rules[i];
        struct trig t = {0};
        if (r->stage != stage || !eval_node(&e, r->root, &t))
            continue;
        TG_ASSERT(hits->n < hits->cap);
        hits->v[hits->n++] = (struct tg_policy_hit){
            .rule = r->id,
            .description = r->description,
            .actions = r->actions,
            .n_actions = r->n_actions,
            .field = t.set        ? t.field
                     : t.fallback ? t.fallback
                                  : "not",
            .start = t.set ? t.start : 0,
            .end = t.set ? t.end : 0,
            .value = t.set ? t.value : 0,
            .has_value = t.set && t.has_value,
        };
    }
    return TG_OK;
}
