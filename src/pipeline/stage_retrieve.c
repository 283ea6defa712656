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
#include "text/text.h"

#include <string.h>

/* Share of the question's tokens that occur in the passage (both normalized). */
static double coverage(struct tg_turn *t, const char *passage)
{
    struct tg_tokens q;
    struct tg_buf norm;
    size_t hit = 0, n = 0;
    tg_tokens_init(&q);
    tg_buf_init(&norm, 1u << 22);
    /* The question is already Simplified; the passage needs only folding
     * (Traditional-to-Simplified transliteration is the costly part). */
    if (tg_text_normalize(t->p->text, passage, strlen(passage), 0, &norm) == TG_OK &&
        tg_text_tokenize(t->p->text, t->norm_text, t->norm_len, TG_TOKEN_BIGRAMS, &q) == TG_OK) {
        for (size_t i = 0; i < q.n; i++) {
            /* Latin words and CJK bigrams: the units the question is made of. */
            if (q.v[i].kind == TG_TOK_CJK_WORD)
                continue;
            n++;
            hit += norm.data && strstr(norm.data, q.v[i].text) != NULL;
        }
    }
    tg_tokens_free(&q);
    tg_buf_free(&norm);
    return n ? (double)hit / (double)n : 0.0;
}

static int search(struct tg_turn *t)
{
    struct tg_kb *kb = t->a->kb;
    struct tg_kb_result res;
    int rc;
    tg_kb_result_init(&res);
    /* The question normalized by the understand stage is searched as it
     * is when the knowledge base normalizes the same way. */
    if (t->norm_text && t->norm_flags == tg_kb_norm_flags(kb))
        rc = tg_kb_search(kb, t->norm_text, t->norm_len, t->a->cfg->kb_top_k,
                          TG_KB_SEARCH_PER_DOC | TG_KB_SEARCH_NORMALIZED, &res);
    else
        rc = tg_kb_search(kb, t->user_text, strlen(t->user_text), t->a->cfg->kb_top_k,
                          TG_KB_SEARCH_PER_DOC, &res);
    if (!rc && res.n) {
        t->evidence = tg_arena_alloc(&t->arena, res.n * sizeof(*t->evidence));
        if (!t->evidence)
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
        struct tg_evidence *e = &t->evidence[t->n_evidence++];
        *e = (struct tg_evidence){
            .source = c.question || !c.source[0] ? c.doc_id : c.source,
            .title = label,
            .text = c.text,
            .faq_question = c.question,
            .faq_answer = c.answer,
            .score = res.hits[i].score,
            .chunk = res.hits[i].chunk,
        };
        json_array_append_new(t->citations,
                              json_pack("{s:s, s:s, s:s, s:i, s:f}", "source", e->source, "title",
                                        e->title, "heading", c.heading, "chunk", (int)c.ordinal,
                                        "score", e->score));
    }
    for (size_t i = 0; !rc && i < res.n_glossary; i++) {
        const struct tg_kb_term *g = tg_kb_glossary_get(kb, res.glossary[i]);
        if (g)
            json_array_append_new(t->citations,
                                  json_pack("{s:s, s:s, s:s}", "source", "glossary", "term",
                                            g->term, "definition", g->definition));
    }
    if (!rc && t->n_evidence) {
        double s1 = t->evidence[0].score, s2 = t->n_evidence > 1 ? t->evidence[1].score : 0;
        t->query_coverage = coverage(t, t->evidence[0].text);
        t->retrieval_lead = s1 > 0 ? (s1 - s2) / s1 : 0;
    }
    tg_kb_result_free(&res);
    return rc;
}

enum tg_stage_rc tg_stage_retrieve(struct tg_turn *t)
{
    int rc = TG_OK;
    t->citations = json_array();
    if (!t->citations)
        rc = TG_E_NOMEM;
    if (!rc && t->a->kb)
        rc = search(t);
    if (rc) {
        tg_turn_fail(t, rc, 500, "internal_error", NULL, "retrieval failed: %s", tg_err_str(rc));
        return TG_DONE;
    }
    return TG_NEXT;
}
