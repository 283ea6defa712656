/*
 * ac.c - the Aho-Corasick automaton (A. V. Aho and M. J. Corasick,
 * "Efficient string matching: an aid to bibliographic search", CACM 18(6),
 * 1975) that finds every keyword of every rule in one pass over a text.
 *
 * The alphabet is bytes, so UTF-8 terms need nothing special.  States are
 * numbered breadth first; the edges of a state are one sorted run of
 * (label, target) pairs, found by a short linear or binary search, so a
 * state costs about 21 bytes however many terms there are.  The root, hit
 * by almost every byte, has a full 256-entry table.  Each state keeps its
 * failure link, the term ending there and a link to the nearest suffix
 * state where a term ends, so reporting costs only the matches.
 */
#include "policy/policy_int.h"

#include <string.h>

struct policy_ac {
    uint32_t n_states;
    uint32_t n_terms;
    uint32_t *edge_start; /* n_states + 1: the edges of s are [edge_start[s], edge_start[s+1]) */
    uint8_t *label;
    uint32_t *target; /* never 0: the root is no one's child */
    uint32_t *fail;
    uint32_t *term; /* id + 1 of the term ending at the state, 0 for none */
    uint32_t *dict; /* nearest proper suffix state with a term, 0 for none */
    uint32_t *term_len;
    uint32_t root[256]; /* the root's edges, 0 for none */
};

static inline uint8_t fold(uint8_t c)
{
    return (c >= 'A' && c <= 'Z') ? (uint8_t)(c + ('a' - 'A')) : c;
}

/* The state reached from s (not the root) by c, 0 when s has no such edge. */
static inline uint32_t step(const struct policy_ac *ac, uint32_t s, uint8_t c)
{
    uint32_t lo = ac->edge_start[s], hi = ac->edge_start[s + 1];
    if (hi - lo <= 8) {
        for (uint32_t e = lo; e < hi; e++) {
            if (ac->label[e] == c)
                return ac->target[e];
        }
        return 0;
    }
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (ac->label[mid] < c)
            lo = mid + 1;
        else
            hi = mid;
    }
    return (lo < ac->edge_start[s + 1] && ac->label[lo] == c) ? ac->target[lo] : 0;
}

void policy_ac_free(struct policy_ac *ac)
{
    if (!ac)
        return;
    tg_free(ac->edge_start);
    tg_free(ac->label);
    tg_free(ac->target);
    tg_free(ac->fail);
    tg_free(ac->term);
    tg_free(ac->dict);
    tg_free(ac->term_len);
    tg_free(ac);
}

/* The trie before it is laid out: children as sorted sibling lists. */
struct trie {
    uint32_t *first, *last, *next, *term;
    uint8_t *label;
    uint32_t n;
};

static void trie_free(struct trie *t)
{
    tg_free(t->first);
    tg_free(t->last);
    tg_free(t->next);
    tg_free(t->term);
    tg_free(t->label);
}

/*
 * Insert the sorted terms: each shares with the one before it a prefix
 * whose path is the trie's rightmost, and what follows sorts after every
 * child already there, so new children are always appended.
 */
static int trie_build(struct trie *t, const char *const *terms, const uint32_t *lens, uint32_t n)
{
    size_t total = 1, maxlen = 0;
    uint32_t *path = NULL;
    int rc = TG_E_NOMEM;
    for (uint32_t i = 0; i < n; i++) {
        total += lens[i];
        maxlen = TG_MAX(maxlen, (size_t)lens[i]);
    }
    if (total >= UINT32_MAX)
        goto out;
    t->first = tg_calloc(total, sizeof(uint32_t));
    t->last = tg_calloc(total, sizeof(uint32_t));
    t->next = tg_calloc(total, sizeof(uint32_t));
    t->term = tg_calloc(total, sizeof(uint32_t));
    t->label = tg_calloc(total, 1);
    path = tg_calloc(maxlen + 1, sizeof(uint32_t));
    if (!t->first || !t->last || !t->next || !t->term || !t->label || !path)
        goto out;
    t->n = 1;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t k = 0;
        if (i > 0) {
            uint32_t m = TG_MIN(lens[i], lens[i - 1]);
            while (k < m && terms[i][k] == terms[i - 1][k])
                k++;
            TG_ASSERT(k < lens[i]); /* sorted and distinct */
            TG_ASSERT(k == lens[i - 1] || (uint8_t)terms[i][k] > (uint8_t)terms[i - 1][k]);
        }
        uint32_t node = path[k];
        for (uint32_t d = k; d < lens[i]; d++) {
            uint32_t c = t->n++;
            t->label[c] = (uint8_t)terms[i][d];
            if (t->last[node])
                t->next[t->last[node]] = c;
            else
                t->first[node] = c;
            t->last[node] = c;
            path[d + 1] = c;
            node = c;
        }
        t->term[node] = i + 1;
    }
    rc = TG_OK;
out:
    tg_free(path);
    return rc;
}

/* Failure and dictionary links, breadth first (states are numbered so). */
static void link_states(struct policy_ac *ac)
{
    for (uint32_t u = 0; u < ac->n_states; u++) {
        for (uint32_t e = ac->edge_start[u]; e < ac->edge_start[u + 1]; e++) {
            uint32_t v = ac->target[e], f = 0;
            uint8_t c = ac->label[e];
            if (u != 0) {
                uint32_t s = ac->fail[u];
                for (;;) {
                    uint32_t t = s ? step(ac, s, c) : ac->root[c];
                    if (t || s == 0) {
                        f = t;
                        break;
                    }
                    s = ac->fail[s];
                }
            }
            ac->fail[v] = f;
            ac->dict[v] = ac->term[f] ? f : ac->dict[f];
        }
    }
}

int policy_ac_build(const char *const *terms, const uint32_t *lens, uint32_t n,
                    struct policy_ac **out)
{
    struct trie t = {0};
    uint32_t *queue = NULL, *renum = NULL;
    struct policy_ac *ac = tg_calloc(1, sizeof(*ac));
    int rc = TG_E_NOMEM;
    if (!ac || trie_build(&t, terms, lens, n))
        goto out;
    uint32_t ns = t.n;
    ac->n_states = ns;
    ac->n_terms = n;
    ac->edge_start = tg_calloc((size_t)ns + 1, sizeof(uint32_t));
    ac->label = tg_malloc(ns);
    ac->target = tg_calloc(ns, sizeof(uint32_t));
    ac->fail = tg_calloc(ns, sizeof(uint32_t));
    ac->term = tg_calloc(ns, sizeof(uint32_t));
    ac->dict = tg_calloc(ns, sizeof(uint32_t));
    ac->term_len = tg_malloc(TG_MAX(n, 1u) * sizeof(uint32_t));
    queue = tg_malloc((size_t)ns * sizeof(uint32_t));
    renum = tg_malloc((size_t)ns * sizeof(uint32_t));
    if (!ac->edge_start || !ac->label || !ac->target || !ac->fail || !ac->term || !ac->dict ||
        !ac->term_len || !queue || !renum)
        goto out;
    memcpy(ac->term_len, lens, (size_t)n * sizeof(uint32_t));
    /* Breadth first: the queue position of a trie node is its state number. */
    uint32_t head = 0, tail = 0, edges = 0;
    queue[tail] = 0;
    renum[0] = tail++;
    while (head < tail) {
        uint32_t u = queue[head];
        uint32_t su = head++;
        ac->edge_start[su] = edges;
        ac->term[su] = t.term[u];
        for (uint32_t c = t.first[u]; c; c = t.next[c]) {
            queue[tail] = c;
            renum[c] = tail++;
            ac->label[edges] = t.label[c];
            ac->target[edges] = renum[c];
            edges++;
        }
    }
    ac->edge_start[ns] = edges;
    for (uint32_t e = ac->edge_start[0]; e < ac->edge_start[1]; e++)
        ac->root[ac->label[e]] = ac->target[e];
    link_states(ac);
    *out = ac;
    ac = NULL;
    rc = TG_OK;
out:
    trie_free(&t);
    tg_free(queue);
    tg_free(renum);
    policy_ac_free(ac);
    return rc;
}

void policy_ac_scan(const struct policy_ac *ac, const char *text, size_t len, policy_ac_cb cb,
                    void *arg)
{
    uint32_t s = 0;
    if (len > UINT32_MAX)
        len = UINT32_MAX;
    for (size_t i = 0; i < len; i++) {
        uint8_t c = fold((uint8_t)text[i]);
        for (;;) {
            if (s == 0) {
                s = ac->root[c];
                break;
            }
            uint32_t t = step(ac, s, c);
            if (t) {
                s = t;
                break;
            }
            s = ac->fail[s];
        }
        for (uint32_t o = ac->term[s] ? s : ac->dict[s]; o; o = ac->dict[o]) {
            uint32_t id = ac->term[o] - 1;
            cb(arg, id, (uint32_t)(i + 1 - ac->term_len[id]), (uint32_t)(i + 1));
        }
    }
}

size_t policy_ac_states(const struct policy_ac *ac)
{
    return ac ? ac->n_states : 0;
}

size_t policy_ac_bytes(const struct policy_ac *ac)
{
    if (!ac)
        return 0;
    size_t ns = ac->n_states, ne = ac->edge_start[ns];
    return sizeof(*ac) + (ns + 1) * 4 + ne * 5 + ns * 12 + (size_t)ac->n_terms * 4;
}
