/*
 * stage_retrieve.c - evidence from the knowledge base, with citations.
 *
 * The customer's words are searched (BM25, at most one passage per
 * document, the glossary expanding the query); the best passages become
 * the turn's evidence and its citations, and every glossary entry the
 * question used is cited too.  The share of the question's tokens that the
 * best passage contains (coverage) is one of the signals of the answer's
 * confidence.  Without a knowledge base the lists stay empty.
 */
#include "pipeline/pipeline.h"

#include "backend/backend.h"
#include "kb/kb.h"
#include "intent/intent.h"
#include "text/text.h"

#include <math.h>
#include <string.h>

/* Share of needle's tokens (Latin words, CJK bigrams) that occur in hay;
 * both normalized alike; English function words are not counted.  -1 when
 * needle has none. */
static double share_found(struct tg_turn *t, const char *needle, size_t len, const char *hay)
{
    struct tg_tokens q;
    size_t hit = 0, n = 0;
    tg_tokens_init(&q);
    if (tg_text_tokenize(t->p->text, needle, len, TG_TOKEN_BIGRAMS, &q) == TG_OK) {
        for (size_t i = 0; i < q.n; i++) {
            /* Latin words and CJK bigrams: the units the text is made of. */
            if (q.v[i].kind == TG_TOK_CJK_WORD ||
                (q.v[i].kind == TG_TOK_WORD && tg_text_is_stopword(q.v[i].text, q.v[i].len)))
                continue;
            n++;
            hit += strstr(hay, q.v[i].text) != NULL;
        }
    }
    tg_tokens_free(&q);
    return n ? (double)hit / (double)n : -1.0;
}

/* Share of the tokens of q (normalized; NULL: the question) that occur in
 * s (folded here; the question is already Simplified, and
 * Traditional-to-Simplified transliteration of a passage is the costly
 * part), or of s's tokens that occur in the question (inverse): how much of
 * a key the customer said. */
static double share(struct tg_turn *t, const char *s, const char *q, bool inverse)
{
    struct tg_buf norm;
    double r = -1.0;
    size_t qlen = q ? strlen(q) : t->understand.norm_len;
    if (!q)
        q = t->understand.norm_text;
    tg_buf_init(&norm, 1u << 22);
    if (s && s[0] && q && tg_text_normalize(t->p->text, s, strlen(s), 0, &norm) == TG_OK &&
        norm.data)
        r = inverse ? share_found(t, norm.data, norm.len, t->understand.norm_text)
                    : share_found(t, q, qlen, norm.data);
    tg_buf_free(&norm);
    return r < 0 ? 0.0 : r;
}

/* The line a chunk answers: its FAQ question, else its last heading. */
static const char *key_line(const struct tg_kb_chunk *c)
{
    const char *s = c->question ? c->question : c->heading, *last = s;
    for (const char *p = strstr(s, " > "); p; p = strstr(p + 3, " > "))
        last = p + 3;
    return last;
}

/*
 * The learned ranker: a linear score of each passage's features, fitted
 * by bench/calibrate.sh (listwise softmax regression) on questions made
 * from the knowledge base's own FAQ questions and headings, never on an
 * evaluation set (bench/RETRIEVAL.md).  The features, in order:
 *   0 its score relative to the best (BM25 plus the key match)
 *   1 its key's cosine with the question (kb.h)
 *   2 1 for an FAQ pair
 *   3 share of the question's tokens found in the passage
 *   4 share of its key's tokens (FAQ question or heading) the question has
 *   5 share of its document title's tokens the question has
 *   6 the probability the intent classifier gives the turn's intent on the
 *     passage's topic (its title and key): the passage is about what was
 *     asked (0 without a classifier)
 */
static const double rank_w[TG_RANK_FEATURES] = {3.465, 1.839, -0.474, 1.434, 1.266, 1.120, 0.557};

/* The classifier's probability of the turn's intent on the passage's
 * title and key (remembered per text by the model); 0 without one. */
static int topic_intent(struct tg_turn *t, const struct tg_kb_chunk *c, double *out)
{
    struct tg_intent_model *m = t->a->intents;
    const double *p;
    size_t n = m ? tg_intent_n_labels(m) : 0, j = 0;
    *out = 0;
    while (j < n && strcmp(tg_intent_label(m, j), t->understand.intent) != 0)
        j++;
    if (j == n)
        return TG_OK;
    const char *topic =
        c->question ? c->question : tg_arena_printf(&t->arena, "%s %s", c->title, key_line(c));
    if (!topic)
        return TG_E_NOMEM;
    int rc = tg_intent_probabilities_of(m, t->p->text, topic, strlen(topic), &p);
    if (!rc)
        *out = p[j];
    return rc;
}

static int features(struct tg_turn *t, const struct tg_kb_chunk *c, double rel, double match,
                    double *f)
{
    f[0] = rel;
    f[1] = match;
    f[2] = c->question != NULL;
    f[3] = share(t, c->text, NULL, false);
    f[4] = share(t, key_line(c), NULL, true);
    f[5] = c->question ? 0.0 : share(t, c->title, NULL, true);
    return topic_intent(t, c, &f[6]);
}

/* Order the evidence by the ranker (an insertion sort: stable, so the
 * retrieval order breaks ties; n is top_k) and give each its softmax share. */
static void rerank(struct tg_evidence *ev, size_t n)
{
    double top = -1e300, sum = 0;
    for (size_t i = 0; i < n; i++) {
        double z = 0;
        for (size_t j = 0; j < TG_RANK_FEATURES; j++)
            z += rank_w[j] * ev[i].features[j];
        ev[i].rank = z;
        top = TG_MAX(top, z);
    }
    for (size_t i = 0; i < n; i++)
        sum += (ev[i].rank = exp(ev[i].rank - top));
    for (size_t i = 0; i < n; i++)
        ev[i].rank /= sum;
    for (size_t i = 1; i < n; i++) {
        struct tg_evidence e = ev[i];
        size_t j = i;
        for (; j > 0 && ev[j - 1].rank < e.rank; j--)
            ev[j] = ev[j - 1];
        ev[j] = e;
    }
}

const char *tg_turn_focus(struct tg_turn *t)
{
    if (t->understand.focus || !t->understand.norm_text)
        return t->understand.focus ? t->understand.focus : "";
    struct tg_buf b;
    tg_buf_init(&b, 1u << 16);
    const char *f = tg_text_focus(t->understand.norm_text, t->understand.norm_len, &b);
    t->understand.focus = f ? tg_arena_strdup(&t->arena, f) : NULL;
    tg_buf_free(&b);
    return t->understand.focus;
}

int tg_turn_kb_search(struct tg_turn *t, size_t k, const struct tg_kb_result **out)
{
    struct tg_kb *kb = t->a->kb;
    struct tg_kb_result res, *kept;
    int rc;
    *out = t->kb_found;
    if (t->kb_found && t->kb_found->cap >= k)
        return TG_OK;
    tg_kb_result_init(&res);
    /* an English or Japanese question reaches the Chinese articles through
     * the glossary's translations */
    unsigned flags = TG_KB_SEARCH_PER_DOC;
    if (t->understand.language && strcmp(t->understand.language, "zh") != 0)
        flags |= TG_KB_SEARCH_TRANSLATE;
    /* The question normalized by the understand stage is searched as it
     * is when the knowledge base normalizes the same way. */
    const char *q = t->admit.user_text;
    size_t qlen = strlen(q);
    if (t->understand.norm_text && t->understand.norm_flags == tg_kb_norm_flags(kb)) {
        q = t->understand.norm_text;
        qlen = t->understand.norm_len;
        flags |= TG_KB_SEARCH_NORMALIZED;
    }
    /* with the question's vector (kb.embeddings), fused with the dense ranking */
    struct tg_kb_dense dq = {
        .qvec = t->understand.qvec,
        .dim = t->understand.qdim,
        .rrf_k = t->a->cfg->kb_rrf_k,
        .min_cos = t->a->cfg->kb_embed_min_similarity,
    };
    rc = tg_kb_search_dense(kb, q, qlen, &dq, k, flags, &res);
    /* kept in the turn's arena; cap records the k it was searched for */
    kept = rc ? NULL : tg_arena_alloc(&t->arena, sizeof(*kept));
    if (!rc && !kept)
        rc = TG_E_NOMEM;
    if (!rc) {
        *kept = (struct tg_kb_result){.n = res.n, .cap = k, .n_glossary = res.n_glossary};
        kept->hits = tg_arena_alloc(&t->arena, (res.n ? res.n : 1) * sizeof(*kept->hits));
        kept->glossary =
            tg_arena_alloc(&t->arena, (res.n_glossary ? res.n_glossary : 1) * sizeof(uint32_t));
        if (!kept->hits || !kept->glossary)
            rc = TG_E_NOMEM;
    }
    if (!rc) {
        if (res.n)
            memcpy(kept->hits, res.hits, res.n * sizeof(*kept->hits));
        if (res.n_glossary)
            memcpy(kept->glossary, res.glossary, res.n_glossary * sizeof(uint32_t));
        t->kb_found = kept;
        *out = kept;
    }
    tg_kb_result_free(&res);
    return rc;
}

static int search(struct tg_turn *t)
{
    struct tg_kb *kb = t->a->kb;
    const struct tg_kb_result *found;
    int rc = tg_turn_kb_search(t, t->a->cfg->kb_top_k, &found);
    /* the search may have been made for more passages (the intent vote) */
    struct tg_kb_result res = {0};
    if (!rc) {
        res = *found;
        res.n = TG_MIN(res.n, t->a->cfg->kb_top_k);
    }
    if (!rc && res.n) {
        t->retrieve.evidence = tg_arena_alloc(&t->arena, res.n * sizeof(*t->retrieve.evidence));
        if (!t->retrieve.evidence)
            rc = TG_E_NOMEM;
    }
    for (size_t i = 0; !rc && i < res.n; i++) {
        struct tg_kb_chunk c;
        if (tg_kb_chunk_get(kb, res.hits[i].chunk, &c))
            continue;
        /* How the answer names its source: an article by its title, an FAQ
         * pair by its question, a glossary entry by its term; the citation's
         * source is the document's own id for pairs (file:line). */
        const char *label;
        if (tg_str_has_prefix(c.doc_id, "glossary:"))
            label = tg_arena_printf(&t->arena, "术语表「%s」", c.doc_id + 9);
        else if (c.question)
            label = tg_arena_printf(&t->arena, "常见问题「%s」", c.question);
        else
            label = tg_arena_printf(&t->arena, "《%s》", c.title[0] ? c.title : c.doc_id);
        if (!label) {
            rc = TG_E_NOMEM;
            break;
        }
        struct tg_evidence *e = &t->retrieve.evidence[t->retrieve.n_evidence++];
        *e = (struct tg_evidence){
            .source = c.question || !c.source[0] ? c.doc_id : c.source,
            .title = label,
            .text = c.text,
            .faq_question = c.question,
            .faq_answer = c.answer,
            .score = res.hits[i].score,
            .match = res.hits[i].match,
            .chunk = res.hits[i].chunk,
        };
        rc = features(t, &c, res.hits[0].score > 0 ? res.hits[i].score / res.hits[0].score : 0,
                      res.hits[i].match, e->features);
    }
    if (!rc)
        rerank(t->retrieve.evidence, t->retrieve.n_evidence);
    for (size_t i = 0; !rc && i < t->retrieve.n_evidence; i++) {
        const struct tg_evidence *e = &t->retrieve.evidence[i];
        struct tg_kb_chunk c;
        /* found above in the same turn: citation i stays evidence i */
        rc = tg_kb_chunk_get(kb, e->chunk, &c);
        if (!rc)
            rc = tg_json_push(t->retrieve.citations,
                              json_pack("{s:s, s:s, s:s, s:i, s:f}", "source", e->source, "title",
                                        e->title, "heading", c.heading, "chunk", (int)c.ordinal,
                                        "score", e->score));
    }
    for (size_t i = 0; !rc && i < res.n_glossary; i++) {
        const struct tg_kb_term *g = tg_kb_glossary_get(kb, res.glossary[i]);
        if (g)
            rc = tg_json_push(t->retrieve.citations,
                              json_pack("{s:s, s:s, s:s}", "source", "glossary", "term", g->term,
                                        "definition", g->definition));
    }
    if (!rc && t->retrieve.n_evidence) {
        double s1 = t->retrieve.evidence[0].score,
               s2 = t->retrieve.n_evidence > 1 ? t->retrieve.evidence[1].score : 0;
        t->retrieve.query_coverage = t->retrieve.evidence[0].features[3];
        /* a story around the question lowers the share: the focus's share counts too */
        const char *f = tg_turn_focus(t);
        if (f && f[0])
            t->retrieve.query_coverage = TG_MAX(t->retrieve.query_coverage,
                                                share(t, t->retrieve.evidence[0].text, f, false));
        t->retrieve.retrieval_lead = s1 > 0 ? (s1 - s2) / s1 : 0;
    }
    return rc;
}

enum tg_stage_rc tg_stage_retrieve(struct tg_turn *t)
{
    int rc = TG_OK;
    t->retrieve.citations = json_array();
    if (!t->retrieve.citations)
        rc = TG_E_NOMEM;
    if (!rc && t->a->kb)
        rc = search(t);
    if (rc) {
        tg_turn_fail(t, rc, 500, "internal_error", NULL, "retrieval failed: %s", tg_err_str(rc));
        return TG_DONE;
    }
    return TG_NEXT;
}
