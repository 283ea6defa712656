/*
 * stage_understand.c - what the customer said: normalized text, language,
 * entities (amounts of money, personal identifiers) and intent with its
 * probability and the tokens that drove it.
 *
 * Entities are read from the customer's own words (offsets point into
 * them); matching and classification use the normalized text.
 */
#include "pipeline/pipeline.h"

#include "backend/embed.h"
#include "metrics/metrics.h"

#include "kb/kb.h"
#include "intent/intent.h"
#include "text/text.h"

#include <math.h>
#include <string.h>

/* "ja" if any kana, else "zh" if any Han, else "en". */
static const char *detect_language(const char *text)
{
    const unsigned char *s = (const unsigned char *)text;
    bool han = false;
    while (*s) {
        uint32_t cp = *s;
        size_t l = 1;
        if ((s[0] & 0xF0) == 0xE0 && s[1] && s[2]) {
            cp = (uint32_t)(s[0] & 0x0F) << 12 | (uint32_t)(s[1] & 0x3F) << 6 | (s[2] & 0x3F);
            l = 3;
        } else if ((s[0] & 0xE0) == 0xC0 && s[1]) {
            l = 2;
        } else if ((s[0] & 0xF8) == 0xF0 && s[1] && s[2] && s[3]) {
            l = 4;
        }
        if ((cp >= 0x3040 && cp <= 0x30FF) || (cp >= 0x31F0 && cp <= 0x31FF))
            return "ja";
        if ((cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF))
            han = true;
        s += l;
    }
    return han ? "zh" : "en";
}

static int extract_entities(struct tg_turn *t)
{
    struct tg_entity_opts opts = {.policy_pattern = t->a->cfg->policy_pattern};
    t->understand.ents = tg_calloc(1, sizeof(*t->understand.ents));
    if (!t->understand.ents)
        return TG_E_NOMEM;
    tg_entities_init(t->understand.ents);
    int rc = tg_entities_extract(t->admit.user_text, strlen(t->admit.user_text), &opts,
                                 t->understand.ents);
    if (!rc) {
        t->understand.entities = tg_entities_to_json(t->understand.ents, t->admit.user_text);
        t->understand.money_max = tg_entities_money_max(t->understand.ents);
        if (!t->understand.entities)
            rc = TG_E_NOMEM;
    }
    return rc;
}

/* Nearest known questions: how many passages vote, how sharply the vote
 * follows their scores, and the vote's share of the intent. */
#define KNN_K 8
#define KNN_POWER 2.0
#define KNN_SHARE 0.5
#define KNN_TIE 0.5

/* What a passage's document is about, as a question would say it: an FAQ
 * pair's question, else the document's title and all its headings (the
 * whole document votes, not the one section: a customer's question names
 * the document's subject more often than the section's).  NULL when out
 * of memory. */
static const char *passage_topic(struct tg_turn *t, uint32_t id, const struct tg_kb_chunk *c)
{
    struct tg_kb *kb = t->a->kb;
    struct tg_kb_chunk o;
    struct tg_buf b;
    uint32_t lo = id, hi = id;
    if (c->question)
        return c->question;
    /* a document's chunks are numbered consecutively */
    while (lo > 0 && !tg_kb_chunk_get(kb, lo - 1, &o) && o.doc_id == c->doc_id)
        lo--;
    while (!tg_kb_chunk_get(kb, hi + 1, &o) && o.doc_id == c->doc_id)
        hi++;
    tg_buf_init(&b, 1u << 16);
    int rc = tg_buf_puts(&b, c->title);
    for (uint32_t k = lo; !rc && k <= hi; k++) {
        if (tg_kb_chunk_get(kb, k, &o))
            continue;
        const char *h = o.heading;
        if (tg_str_has_prefix(h, c->title))
            h += strlen(c->title);
        rc = tg_buf_printf(&b, " %s", h);
    }
    const char *r = rc ? NULL : tg_arena_strndup(&t->arena, b.data ? b.data : "", b.len);
    tg_buf_free(&b);
    return r;
}

/* The index of label among the model's, or the number of labels. */
static size_t label_index(const struct tg_intent_model *m, const char *label)
{
    size_t n = tg_intent_n_labels(m);
    for (size_t j = 0; j < n; j++)
        if (strcmp(tg_intent_label(m, j), label) == 0)
            return j;
    return n;
}

/*
 * The knowledge base's vote on the intent: the passages nearest the
 * question (BM25 with the key field, one per document: the retrieve
 * stage's search, made once here and kept for it)
 * each carry their intent: the deployment's label when it gave one
 * (src/kb/front.c), else the label distribution the classifier gives
 * their own topic (an FAQ question or a heading; remembered per text),
 * weighted by
 * (score / best score)^KNN_POWER.  vote (n labels) receives the weighted
 * mean; *found is false when nothing matched.
 */
static int kb_vote(struct tg_turn *t, double *vote, size_t n, bool *found)
{
    struct tg_kb *kb = t->a->kb;
    const struct tg_kb_result *res;
    double wsum = 0;
    int rc = tg_turn_kb_search(t, TG_MAX((size_t)KNN_K, t->a->cfg->kb_top_k), &res);
    *found = false;
    for (size_t i = 0; !rc && i < res->n && i < KNN_K; i++) {
        struct tg_kb_chunk c;
        const double *p;
        if (tg_kb_chunk_get(kb, res->hits[i].chunk, &c))
            continue;
        double w = pow(res->hits[i].score / res->hits[0].score, KNN_POWER);
        size_t label = c.intent ? label_index(t->a->intents, c.intent) : n;
        if (label < n) {
            vote[label] += w;
            wsum += w;
            continue;
        }
        const char *topic = passage_topic(t, res->hits[i].chunk, &c);
        if (!topic) {
            rc = TG_E_NOMEM;
            break;
        }
        if (!topic[0])
            continue;
        rc = tg_intent_probabilities_of(t->a->intents, t->p->text, topic, strlen(topic), &p);
        for (size_t j = 0; !rc && j < n; j++)
            vote[j] += w * p[j];
        wsum += w;
    }
    if (!rc && wsum > 0) {
        for (size_t j = 0; j < n; j++)
            vote[j] /= wsum;
        *found = true;
    }
    return rc;
}

/*
 * The intent: the linear classifier's, unless the knowledge base's vote
 * decides between near-ties.  Among the labels the classifier gives at
 * least KNN_TIE of its top probability, the one with the highest mix
 * (1 - KNN_SHARE) classifier + KNN_SHARE vote wins.  The knowledge base
 * knows topics, not what the customer asks us to do (information or a
 * decision): so it never overrides a clear classifier, and the
 * confidence stays the classifier's own probability of the label, the
 * scale the policies' thresholds are written in.  The explanation stays
 * the classifier's exact contributions to its own winner.
 */
/* The label among the classifier's near-ties (cls, n probabilities) with
 * the highest mix of classifier and vote. */
static size_t near_tie_winner(const double *cls, const double *vote, size_t n)
{
    size_t best = 0, top = 0;
    for (size_t j = 1; j < n; j++)
        if (cls[j] > cls[top])
            top = j;
    double floor = KNN_TIE * cls[top], best_mix = -1;
    for (size_t j = 0; j < n; j++) {
        double v = (1 - KNN_SHARE) * cls[j] + KNN_SHARE * vote[j];
        if (cls[j] >= floor && v > best_mix) {
            best_mix = v;
            best = j;
        }
    }
    return best;
}

static int classify(struct tg_turn *t)
{
    struct tg_intent_result r;
    struct tg_intent_model *m = t->a->intents;
    int rc = tg_intent_predict(m, t->p->text, t->admit.user_text, strlen(t->admit.user_text), &r);
    if (rc)
        return rc;
    t->understand.intent = r.label;
    t->understand.intent_confidence = r.probability;
    if (t->a->kb) {
        size_t n = tg_intent_n_labels(m);
        double *cls = tg_arena_alloc(&t->arena, 2 * n * sizeof(double));
        bool found = false;
        if (!cls)
            return TG_E_NOMEM;
        memcpy(cls, tg_intent_probabilities(m), n * sizeof(double));
        memset(cls + n, 0, n * sizeof(double));
        rc = kb_vote(t, cls + n, n, &found);
        if (rc)
            return rc;
        size_t best = found ? near_tie_winner(cls, cls + n, n) : 0;
        if (found) {
            t->understand.intent = tg_intent_label(m, best);
            t->understand.intent_confidence = cls[best];
        }
    }
    t->understand.intent_explain = json_array();
    rc = t->understand.intent_explain ? TG_OK : TG_E_NOMEM;
    for (size_t i = 0; !rc && i < r.n_top; i++)
        rc = tg_json_push(
            t->understand.intent_explain,
            json_pack("{s:s, s:f}", "feature", r.top[i].feature, "weight", r.top[i].weight));
    return rc;
}

/* Intent, after the question's vector (if any) has come: the classifier
 * and the knowledge base's vote, which the vector's search serves. */
static enum tg_stage_rc understand_finish(struct tg_turn *t, int rc)
{
    t->understand.intent = "unclassified";
    t->understand.intent_confidence = 0.0;
    if (!rc && t->a->intents)
        rc = classify(t);
    if (rc) {
        tg_turn_fail(t, rc, 500, "internal_error", NULL, "understanding failed: %s",
                     tg_err_str(rc));
        return TG_DONE;
    }
    return TG_NEXT;
}

/* The question's vector came (or the embeddings server failed: the turn's
 * search is then BM25 alone). */
static void embedded_cb(int err, const float *vec, size_t dim, void *arg)
{
    struct tg_turn *t = arg;
    int rc = TG_OK;
    t->understand.embed_call = NULL;
    if (err) {
        tg_metrics_backend_error(t->p->metrics, "embeddings",
                                 err == TG_E_TIMEOUT ? "timeout" : "error");
    } else {
        float *v = tg_arena_alloc(&t->arena, dim * sizeof(*v));
        if (v) {
            memcpy(v, vec, dim * sizeof(*v));
            t->understand.qvec = v;
            t->understand.qdim = dim;
        } else {
            rc = TG_E_NOMEM;
        }
    }
    int64_t t0 = tg_clock_mono_ns();
    enum tg_stage_rc next = understand_finish(t, rc);
    t->run.stage_ns[TG_STAGE_UNDERSTAND] += tg_clock_mono_ns() - t0;
    tg_pipeline_resume_with(t, next);
}

enum tg_stage_rc tg_stage_understand(struct tg_turn *t)
{
    struct tg_buf norm;
    int rc;
    tg_buf_init(&norm, 1u << 22);
    t->understand.language = detect_language(t->admit.user_text);
    /* Japanese kanji must not be turned into Simplified Chinese. */
    t->understand.norm_flags = strcmp(t->understand.language, "ja") == 0 ? 0 : TG_NORM_T2S;
    rc = tg_text_normalize(t->p->text, t->admit.user_text, strlen(t->admit.user_text),
                           t->understand.norm_flags, &norm);
    if (!rc) {
        t->understand.norm_len = norm.len;
        t->understand.norm_text = tg_arena_strndup(&t->arena, norm.data ? norm.data : "", norm.len);
        if (!t->understand.norm_text)
            rc = TG_E_NOMEM;
    }
    tg_buf_free(&norm);
    t->understand.money_max = -1;
    if (!rc)
        rc = extract_entities(t);
    /* With kb.embeddings the question's vector is asked for first: the
     * intent vote and retrieval share the search it takes part in. */
    if (!rc && t->a->embedder && t->a->kb && t->admit.user_text[0] &&
        tg_embed_start(t->a->embedder, t->admit.user_text, strlen(t->admit.user_text),
                       embedded_cb, t, &t->understand.embed_call) == TG_OK)
        return TG_WAIT;
    return understand_finish(t, rc);
}
