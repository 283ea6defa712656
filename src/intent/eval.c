/*
 * eval.c - how well an intent model does on a labelled set: accuracy,
 * macro-F1, the most confused pairs, and out-of-scope detection at a
 * probability threshold.
 *
 * Macro-F1 averages the per-label F1 over every label that occurs in the
 * test set or among the predictions (a label with neither precision nor
 * recall counts 0), as scikit-learn's f1_score(average="macro") does.
 */
#include "intent/intent_int.h"

#include <stdlib.h>
#include <string.h>

/* The pairs reported by tg_intent_evaluate. */
#define TOP_PAIRS 10

/* Counts by label id (the model's labels first, then unknown gold labels)
 * and by mistake ("gold\tpredicted"); sized for the worst case up front. */
struct tally {
    struct tg_vocab labels;
    struct tg_vocab pairs;
    size_t *tp, *fp, *fn, *pair_n;
};

struct rank {
    size_t n;
    uint32_t id;
};

static int cmp_rank(const void *a, const void *b)
{
    const struct rank *x = a, *y = b;
    if (x->n != y->n)
        return x->n > y->n ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

/* The most frequent mistakes as [{"gold", "predicted", "count"}], most first. */
static json_t *top_pairs(const struct tally *t)
{
    json_t *arr = json_array();
    struct rank *r = tg_malloc((t->pairs.n ? t->pairs.n : 1) * sizeof(*r));
    if (!arr || !r)
        goto fail;
    for (uint32_t i = 0; i < t->pairs.n; i++) {
        r[i].n = t->pair_n[i];
        r[i].id = i;
    }
    qsort(r, t->pairs.n, sizeof(*r), cmp_rank);
    for (size_t i = 0; i < t->pairs.n && i < TOP_PAIRS; i++) {
        const char *k = tg_vocab_key(&t->pairs, r[i].id);
        size_t len = tg_vocab_len(&t->pairs, r[i].id);
        const char *tab = memchr(k, '\t', len);
        size_t glen = (size_t)(tab - k);
        json_t *o = json_pack("{s:s%, s:s%, s:I}", "gold", k, glen, "predicted", tab + 1,
                              len - glen - 1, "count", (json_int_t)r[i].n);
        if (tg_json_push(arr, o))
            goto fail;
    }
    tg_free(r);
    return arr;
fail:
    tg_free(r);
    json_decref(arr);
    return NULL;
}

static int tally_one(struct tally *t, const char *gold, const char *pred, struct tg_buf *key,
                     bool *hit)
{
    uint32_t g, p, pair;
    int rc = tg_vocab_add(&t->labels, gold, strlen(gold), &g);
    if (!rc)
        rc = tg_vocab_add(&t->labels, pred, strlen(pred), &p);
    if (rc)
        return rc;
    *hit = g == p;
    if (g == p) {
        t->tp[g]++;
        return TG_OK;
    }
    t->fn[g]++;
    t->fp[p]++;
    tg_buf_reset(key);
    rc = tg_buf_printf(key, "%s\t%s", gold, pred);
    if (!rc)
        rc = tg_vocab_add(&t->pairs, key->data, key->len, &pair);
    if (!rc)
        t->pair_n[pair]++;
    return rc;
}

int tg_intent_evaluate(struct tg_intent_model *m, struct tg_text *tx, const struct tg_dataset *test,
                       struct tg_intent_eval *out, json_t **confusion)
{
    struct tally t;
    struct tg_buf key;
    memset(&t, 0, sizeof(t));
    tg_buf_init(&key, TG_BUF_UNLIMITED);
    size_t correct = 0;
    int rc = test && test->n ? TG_OK : TG_E_INVAL;
    if (rc)
        goto out;
    size_t most = m->n_labels + test->n;
    t.tp = tg_calloc(most, sizeof(*t.tp));
    t.fp = tg_calloc(most, sizeof(*t.fp));
    t.fn = tg_calloc(most, sizeof(*t.fn));
    t.pair_n = tg_calloc(test->n, sizeof(*t.pair_n));
    if (!t.tp || !t.fp || !t.fn || !t.pair_n)
        rc = TG_E_NOMEM;
    for (size_t i = 0; i < m->n_labels && !rc; i++) {
        uint32_t id;
        rc = tg_vocab_add(&t.labels, m->labels[i], strlen(m->labels[i]), &id);
    }
    for (size_t i = 0; !rc && i < test->n; i++) {
        struct tg_intent_result r;
        bool hit = false;
        rc = tg_intent_predict(m, tx, test->v[i].text, strlen(test->v[i].text), &r);
        if (!rc)
            rc = tally_one(&t, test->v[i].label, r.label, &key, &hit);
        correct += hit;
    }
    if (rc)
        goto out;
    double f1_sum = 0;
    size_t n_f1 = 0;
    for (size_t l = 0; l < t.labels.n; l++) {
        if (t.tp[l] + t.fp[l] + t.fn[l] == 0)
            continue;
        n_f1++;
        /* F1 = 2TP / (2TP + FP + FN), 0 when there is no true positive */
        f1_sum += 2.0 * (double)t.tp[l] / (double)(2 * t.tp[l] + t.fp[l] + t.fn[l]);
    }
    if (confusion) {
        *confusion = top_pairs(&t);
        if (!*confusion) {
            rc = TG_E_NOMEM;
            goto out;
        }
    }
    out->n = test->n;
    out->accuracy = (double)correct / (double)test->n;
    out->macro_f1 = n_f1 ? f1_sum / (double)n_f1 : 0;
out:
    tg_vocab_free(&t.labels);
    tg_vocab_free(&t.pairs);
    tg_free(t.tp);
    tg_free(t.fp);
    tg_free(t.fn);
    tg_free(t.pair_n);
    tg_buf_free(&key);
    return rc;
}

int tg_intent_evaluate_oos(struct tg_intent_model *m, struct tg_text *tx,
                           const struct tg_dataset *test, const char *oos_label, double threshold,
                           struct tg_intent_oos_eval *out)
{
    size_t n_in = 0, n_oos = 0, in_ok = 0, oos_ok = 0, said_oos = 0;
    int rc = test && test->n && oos_label ? TG_OK : TG_E_INVAL;
    for (size_t i = 0; !rc && i < test->n; i++) {
        struct tg_intent_result r;
        rc = tg_intent_predict(m, tx, test->v[i].text, strlen(test->v[i].text), &r);
        if (rc)
            break;
        bool pred_oos = r.probability < threshold || strcmp(r.label, oos_label) == 0;
        bool gold_oos = strcmp(test->v[i].label, oos_label) == 0;
        said_oos += pred_oos;
        if (gold_oos) {
            n_oos++;
            oos_ok += pred_oos;
        } else {
            n_in++;
            in_ok += !pred_oos && strcmp(r.label, test->v[i].label) == 0;
        }
    }
    if (rc)
        return rc;
    out->n_in = n_in;
    out->n_oos = n_oos;
    out->in_scope_accuracy = n_in ? (double)in_ok / (double)n_in : 0;
    out->oos_recall = n_oos ? (double)oos_ok / (double)n_oos : 0;
    out->oos_precision = said_oos ? (double)oos_ok / (double)said_oos : 0;
    return TG_OK;
}
