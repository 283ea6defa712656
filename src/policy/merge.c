/*
 * merge.c - a compiled policy after compiling (policy_int.h): the one
 * Aho-Corasick automaton over the distinct terms of all its keyword tests
 * with an index from each term back to the tests that use it; merging two
 * policies into one; freeing a policy.
 */
#include "policy/policy_int.h"

#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ the keyword index */

struct pair {
    const char *s;
    uint32_t len;
    uint32_t leaf;
};

static int pair_cmp(const void *x, const void *y)
{
    const struct pair *a = x, *b = y;
    int d = memcmp(a->s, b->s, TG_MIN(a->len, b->len));
    if (d)
        return d;
    if (a->len != b->len)
        return a->len < b->len ? -1 : 1;
    return a->leaf < b->leaf ? -1 : a->leaf > b->leaf;
}

int policy_keywords_build(struct tg_policy *p)
{
    struct pair *pairs = NULL;
    const char **terms = NULL;
    uint32_t *lens = NULL, *start = NULL, *leaf = NULL;
    struct policy_ac *ac = NULL;
    size_t np = 0;
    int rc = TG_E_NOMEM;
    for (size_t i = 0; i < p->n_kw; i++)
        np += p->kw[i].n_terms;
    if (np == 0) {
        rc = TG_OK;
        goto swap;
    }
    if (np >= UINT32_MAX)
        goto out;
    pairs = tg_malloc(np * sizeof(*pairs));
    terms = tg_malloc(np * sizeof(*terms));
    lens = tg_malloc(np * sizeof(*lens));
    start = tg_malloc((np + 1) * sizeof(*start));
    leaf = tg_malloc(np * sizeof(*leaf));
    if (!pairs || !terms || !lens || !start || !leaf)
        goto out;
    np = 0;
    for (size_t i = 0; i < p->n_kw; i++) {
        for (uint32_t j = 0; j < p->kw[i].n_terms; j++)
            pairs[np++] = (struct pair){p->kw[i].terms[j], p->kw[i].lens[j], (uint32_t)i};
    }
    qsort(pairs, np, sizeof(*pairs), pair_cmp);
    uint32_t nt = 0, nl = 0;
    for (size_t i = 0; i < np; i++) {
        bool same_term = i > 0 && pairs[i].len == pairs[i - 1].len &&
                         memcmp(pairs[i].s, pairs[i - 1].s, pairs[i].len) == 0;
        if (same_term && pairs[i].leaf == pairs[i - 1].leaf)
            continue;
        if (!same_term) {
            terms[nt] = pairs[i].s;
            lens[nt] = pairs[i].len;
            start[nt++] = nl;
        }
        leaf[nl++] = pairs[i].leaf;
    }
    start[nt] = nl;
    rc = policy_ac_build(terms, lens, nt, &ac);
    if (rc)
        goto out;
swap:
    policy_ac_free(p->ac);
    tg_free(p->term_leaf_start);
    tg_free(p->term_leaf);
    p->ac = ac;
    p->term_leaf_start = start;
    p->term_leaf = leaf;
    ac = NULL;
    start = leaf = NULL;
out:
    policy_ac_free(ac);
    tg_free(pairs);
    tg_free(terms);
    tg_free(lens);
    tg_free(start);
    tg_free(leaf);
    return rc;
}

/* Free the arrays of p, not what they point to (regexes, arenas, match context). */
static void free_arrays(struct tg_policy *p)
{
    policy_ac_free(p->ac);
    tg_free(p->term_leaf_start);
    tg_free(p->term_leaf);
    tg_free(p->rules);
    tg_free(p->nodes);
    tg_free(p->kids);
    tg_free(p->kw);
    tg_free(p->rx);
    tg_free(p->arenas);
}

void tg_policy_free(struct tg_policy *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->n_rx; i++)
        pcre2_code_free(p->rx[i].code);
    pcre2_match_context_free(p->mctx);
    for (size_t i = 0; i < p->n_arenas; i++) {
        tg_arena_free(p->arenas[i]);
        tg_free(p->arenas[i]);
    }
    free_arrays(p);
    tg_free(p);
}

size_t tg_policy_count(const struct tg_policy *p)
{
    return p ? p->n_rules : 0;
}

/* A new array holding a[0..na) then b[0..nb); NULL on allocation failure. */
static void *concat(const void *a, size_t na, const void *b, size_t nb, size_t elem)
{
    void *v = tg_malloc(TG_MAX(na + nb, 1) * elem);
    if (!v)
        return NULL;
    if (na)
        memcpy(v, a, na * elem);
    if (nb)
        memcpy((char *)v + na * elem, b, nb * elem);
    return v;
}

/* In m, a's arrays followed by b's: renumber what b's rules, nodes and kids refer to. */
static void shift_b(struct tg_policy *m, const struct tg_policy *a)
{
    for (size_t i = a->n_rules; i < m->n_rules; i++)
        m->rules[i].root += (uint32_t)a->n_nodes;
    for (size_t i = a->n_kids; i < m->n_kids; i++)
        m->kids[i] += (uint32_t)a->n_nodes;
    for (size_t i = a->n_nodes; i < m->n_nodes; i++) {
        struct policy_node *n = &m->nodes[i];
        if (n->kind == PC_ALL || n->kind == PC_ANY)
            n->a += (uint32_t)a->n_kids;
        else if (n->kind == PC_NOT)
            n->a += (uint32_t)a->n_nodes;
        else if (n->kind == PC_KEYWORDS || n->kind == PC_CONV_KEYWORDS ||
                 n->kind == PC_DRAFT_KEYWORDS || n->kind == PC_TOOL_KEYWORDS)
            n->a += (uint32_t)a->n_kw;
        else if (n->kind == PC_REGEX || n->kind == PC_DRAFT_REGEX || n->kind == PC_TOOL_REGEX)
            n->a += (uint32_t)a->n_rx;
    }
}

int tg_policy_merge(struct tg_policy *a, struct tg_policy *b)
{
    struct tg_policy m = {0};
    int rc = TG_E_NOMEM;
    TG_ASSERT(a != NULL);
    if (!b)
        return TG_OK;
    for (size_t i = 0; i < b->n_rules; i++) {
        for (size_t j = 0; j < a->n_rules; j++) {
            if (strcmp(a->rules[j].id, b->rules[i].id) == 0) {
                tg_error("policy: rule id '%s' is defined twice", b->rules[i].id);
                rc = TG_E_CONFIG;
                goto out;
            }
        }
    }
    m.rules = concat(a->rules, a->n_rules, b->rules, b->n_rules, sizeof(*m.rules));
    m.nodes = concat(a->nodes, a->n_nodes, b->nodes, b->n_nodes, sizeof(*m.nodes));
    m.kids = concat(a->kids, a->n_kids, b->kids, b->n_kids, sizeof(*m.kids));
    m.kw = concat(a->kw, a->n_kw, b->kw, b->n_kw, sizeof(*m.kw));
    m.rx = concat(a->rx, a->n_rx, b->rx, b->n_rx, sizeof(*m.rx));
    m.arenas = concat(a->arenas, a->n_arenas, b->arenas, b->n_arenas, sizeof(*m.arenas));
    if (!m.rules || !m.nodes || !m.kids || !m.kw || !m.rx || !m.arenas)
        goto out;
    m.n_rules = a->n_rules + b->n_rules;
    m.n_nodes = a->n_nodes + b->n_nodes;
    m.n_kids = a->n_kids + b->n_kids;
    m.n_kw = a->n_kw + b->n_kw;
    m.n_rx = a->n_rx + b->n_rx;
    m.n_arenas = a->n_arenas + b->n_arenas;
    m.n_stage[0] = a->n_stage[0] + b->n_stage[0];
    m.n_stage[1] = a->n_stage[1] + b->n_stage[1];
    m.tool_args = a->tool_args || b->tool_args;
    shift_b(&m, a);
    if (policy_keywords_build(&m))
        goto out;
    /* Committed: a takes b's regexes, arenas and, if it had none, match context. */
    m.mctx = a->mctx ? a->mctx : b->mctx;
    if (m.mctx == b->mctx)
        b->mctx = NULL;
    b->n_rx = 0;
    b->n_arenas = 0;
    free_arrays(a);
    *a = m;
    memset(&m, 0, sizeof(m));
    rc = TG_OK;
out:
    free_arrays(&m);
    tg_policy_free(b);
    return rc;
}
