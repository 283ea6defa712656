/*
 * intent.c - training and prediction: a one-vs-rest L2-regularized
 * logistic regression (liblinear's L2R_LR) over the features of
 * features.c, probabilities from liblinear's predict_probability, and the
 * exact contribution (weight x value) of each feature to the winner.
 */
#include "intent/intent_int.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

struct tg_intent_model *tg_intent_model_new(size_t n_labels, size_t n_features)
{
    struct tg_intent_model *m = tg_calloc(1, sizeof(*m));
    if (!m)
        return NULL;
    tg_vocab_init(&m->vocab);
    tg_feat_scratch_init(&m->fs);
    m->n_labels = n_labels;
    m->nr_w = n_labels == 2 ? 1 : n_labels;
    m->labels = tg_calloc(n_labels, sizeof(*m->labels));
    m->idf = tg_calloc(n_features ? n_features : 1, sizeof(*m->idf));
    m->lin.w = tg_calloc((n_features + 1) * m->nr_w, sizeof(*m->lin.w));
    m->lin.label = tg_calloc(n_labels, sizeof(*m->lin.label));
    m->prob = tg_calloc(n_labels, sizeof(*m->prob));
    m->pos = tg_calloc(n_features ? n_features : 1, sizeof(*m->pos));
    if (!m->labels || !m->idf || !m->lin.w || !m->lin.label || !m->prob || !m->pos) {
        tg_intent_free(m);
        return NULL;
    }
    m->lin.param.solver_type = L2R_LR;
    m->lin.nr_class = (int)n_labels;
    m->lin.nr_feature = (int)n_features;
    m->lin.bias = 1;
    for (size_t i = 0; i < n_labels; i++)
        m->lin.label[i] = (int)i;
    return m;
}

void tg_intent_free(struct tg_intent_model *m)
{
    if (!m)
        return;
    if (m->labels)
        for (size_t i = 0; i < m->n_labels; i++)
            tg_free(m->labels[i]);
    tg_free(m->labels);
    tg_vocab_free(&m->vocab);
    tg_feat_scratch_free(&m->fs);
    tg_free(m->idf);
    tg_free(m->lin.w);
    tg_free(m->lin.label);
    tg_free(m->prob);
    tg_free(m->x);
    tg_free(m->pos);
    tg_free(m->memo_key);
    tg_free(m->memo_row);
    tg_free(m->memo_prob);
    tg_free(m->cache_path);
    tg_free(m);
}

size_t tg_intent_n_labels(const struct tg_intent_model *m)
{
    return m->n_labels;
}

const char *tg_intent_label(const struct tg_intent_model *m, size_t i)
{
    return i < m->n_labels ? m->labels[i] : NULL;
}

size_t tg_intent_n_examples(const struct tg_intent_model *m)
{
    return m->n_examples;
}

size_t tg_intent_n_features(const struct tg_intent_model *m)
{
    return m->vocab.n;
}

const char *tg_intent_cache_path(const struct tg_intent_model *m)
{
    return m->cache_path;
}

bool tg_intent_from_cache(const struct tg_intent_model *m)
{
    return m->from_cache;
}

const double *tg_intent_probabilities(const struct tg_intent_model *m)
{
    return m->prob;
}

/* ------------------------------------------------------------ training */

static void quiet(const char *s)
{
    (void)s;
}

/*
 * Rare features: with thousands of utterances a feature seen once is
 * mostly noise and costs a row of weights per intent; a small hand-written
 * intent file needs every feature it has.
 */
static uint32_t min_df_for(size_t n_examples)
{
    return n_examples >= 1000 ? TG_INTENT_MIN_DF : 1;
}

struct trainer {
    struct tg_vocab labels, all, kept;
    struct tg_feat_scratch fs;
    struct feature_node *nodes; /* (temporary id + 1, count) of every utterance */
    size_t n_nodes, cap_nodes;
    size_t *start;   /* utterance i's nodes: start[i] .. start[i + 1] */
    uint32_t *df;    /* by temporary id */
    uint32_t *remap; /* temporary id -> kept id, or UINT32_MAX */
    double *y;
    double *idf;
    struct feature_node *xs;
    struct feature_node **xp;
};

static int collect(struct trainer *t, struct tg_text *tx, const struct tg_dataset *ds,
                   const struct tg_intent_opts *o, char *err, size_t errlen)
{
    int rc = TG_OK;
    for (size_t i = 0; i < ds->n; i++) {
        uint32_t id;
        rc = tg_vocab_add(&t->labels, ds->v[i].label, strlen(ds->v[i].label), &id);
        if (!rc)
            rc =
                tg_feat_extract(tx, o, &t->all, true, ds->v[i].text, strlen(ds->v[i].text), &t->fs);
        if (!rc && t->n_nodes + t->fs.n_ids > t->cap_nodes) {
            size_t cap = t->cap_nodes ? t->cap_nodes : 65536;
            while (cap < t->n_nodes + t->fs.n_ids)
                cap *= 2;
            struct feature_node *p = tg_realloc(t->nodes, cap * sizeof(*p));
            if (p) {
                t->nodes = p;
                t->cap_nodes = cap;
            } else {
                rc = TG_E_NOMEM;
            }
        }
        if (rc) {
            snprintf(err, errlen, "training example %zu: %s", i + 1, tg_err_str(rc));
            return rc;
        }
        t->y[i] = id;
        t->start[i] = t->n_nodes;
        t->n_nodes += tg_feat_count(t->fs.ids, t->fs.n_ids, t->nodes + t->n_nodes);
    }
    t->start[ds->n] = t->n_nodes;
    return rc;
}

/* Keep the features frequent enough, give them ids in first-seen order
 * (so each utterance's nodes stay sorted) and their idf. */
static int select_features(struct trainer *t, size_t n_docs)
{
    size_t n = t->all.n;
    t->df = tg_calloc(n ? n : 1, sizeof(*t->df));
    t->remap = tg_malloc((n ? n : 1) * sizeof(*t->remap));
    t->idf = tg_malloc((n ? n : 1) * sizeof(*t->idf));
    if (!t->df || !t->remap || !t->idf)
        return TG_E_NOMEM;
    for (size_t i = 0; i < t->n_nodes; i++)
        t->df[t->nodes[i].index - 1]++;
    uint32_t min_df = min_df_for(n_docs);
    for (size_t id = 0; id < n; id++) {
        t->remap[id] = UINT32_MAX;
        if (t->df[id] < min_df)
            continue;
        uint32_t k;
        int rc = tg_vocab_add(&t->kept, tg_vocab_key(&t->all, (uint32_t)id),
                              tg_vocab_len(&t->all, (uint32_t)id), &k);
        if (rc)
            return rc;
        t->remap[id] = k;
        /* smoothed idf, as if one more utterance held every feature */
        t->idf[k] = log((1.0 + (double)n_docs) / (1.0 + t->df[id])) + 1.0;
    }
    return TG_OK;
}

static int build_problem(struct trainer *t, size_t n_docs, struct problem *prob)
{
    size_t nf = t->kept.n;
    t->xs = tg_malloc((t->n_nodes + 2 * n_docs) * sizeof(*t->xs));
    t->xp = tg_malloc(n_docs * sizeof(*t->xp));
    if (!t->xs || !t->xp)
        return TG_E_NOMEM;
    size_t k = 0;
    for (size_t i = 0; i < n_docs; i++) {
        size_t s = k;
        t->xp[i] = t->xs + s;
        for (size_t j = t->start[i]; j < t->start[i + 1]; j++) {
            uint32_t r = t->remap[t->nodes[j].index - 1];
            if (r == UINT32_MAX)
                continue;
            t->xs[k].index = (int)r + 1;
            t->xs[k].value = t->nodes[j].value;
            k++;
        }
        tg_feat_weigh(t->xs + s, k - s, t->idf);
        t->xs[k].index = (int)nf + 1;
        t->xs[k++].value = 1;
        t->xs[k].index = -1;
        t->xs[k++].value = 0;
    }
    prob->l = (int)n_docs;
    prob->n = (int)nf + 1;
    prob->y = t->y;
    prob->x = t->xp;
    prob->bias = 1;
    return TG_OK;
}

/* Copy liblinear's weights so that column j belongs to label j, rounded to
 * float precision: a saved model then predicts bit for bit the same. */
static void adopt_weights(struct tg_intent_model *m, const struct model *lm)
{
    size_t nf = m->vocab.n + 1, nr_w = m->nr_w;
    for (size_t c = 0; c < nr_w; c++) {
        size_t j = (size_t)lm->label[c];
        double sign = 1;
        if (nr_w == 1 && j != 0) {
            j = 0;
            sign = -1;
        }
        for (size_t f = 0; f < nf; f++)
            m->lin.w[f * nr_w + j] = (double)(float)(sign * lm->w[f * nr_w + c]);
    }
}

static void trainer_free(struct trainer *t)
{
    tg_vocab_free(&t->labels);
    tg_vocab_free(&t->all);
    tg_vocab_free(&t->kept);
    tg_feat_scratch_free(&t->fs);
    tg_free(t->nodes);
    tg_free(t->start);
    tg_free(t->df);
    tg_free(t->remap);
    tg_free(t->y);
    tg_free(t->idf);
    tg_free(t->xs);
    tg_free(t->xp);
}

/* The model from liblinear's result and the trainer's vocabularies (the
 * kept features move into the model).  NULL when out of memory. */
static struct tg_intent_model *make_model(struct trainer *t, const struct model *lm,
                                          const struct tg_intent_opts *o, size_t n_examples)
{
    struct tg_intent_model *m = tg_intent_model_new(t->labels.n, t->kept.n);
    for (size_t i = 0; m && i < t->labels.n; i++) {
        m->labels[i] = tg_strndup(tg_vocab_key(&t->labels, (uint32_t)i),
                                  tg_vocab_len(&t->labels, (uint32_t)i));
        if (!m->labels[i]) {
            tg_intent_free(m);
            m = NULL;
        }
    }
    if (!m)
        return NULL;
    m->opts = *o;
    m->n_examples = n_examples;
    m->vocab = t->kept;
    tg_vocab_init(&t->kept);
    memcpy(m->idf, t->idf, m->vocab.n * sizeof(*m->idf));
    adopt_weights(m, lm);
    return m;
}

/* Everything before the solver: the problem in prob, or an error in err. */
static int prepare(struct trainer *t, struct tg_text *tx, const struct tg_dataset *ds,
                   const struct tg_intent_opts *o, struct problem *prob, char *err, size_t errlen)
{
    t->y = tg_malloc(ds->n * sizeof(*t->y));
    t->start = tg_malloc((ds->n + 1) * sizeof(*t->start));
    int rc = t->y && t->start ? collect(t, tx, ds, o, err, errlen) : TG_E_NOMEM;
    if (rc)
        return rc;
    if (t->labels.n < 2) {
        snprintf(err, errlen, "training needs at least two intents, found %zu", t->labels.n);
        return TG_E_INVAL;
    }
    rc = select_features(t, ds->n);
    if (!rc && t->kept.n == 0) {
        snprintf(err, errlen, "the training examples give no features");
        return TG_E_INVAL;
    }
    if (!rc && t->kept.n >= INT_MAX / 2)
        rc = TG_E_TOOBIG;
    if (!rc)
        rc = build_problem(t, ds->n, prob);
    if (rc)
        snprintf(err, errlen, "training: %s", tg_err_str(rc));
    return rc;
}

int tg_intent_train(struct tg_text *tx, const struct tg_dataset *ds,
                    const struct tg_intent_opts *opts, struct tg_intent_model **out, char *err,
                    size_t errlen)
{
    struct trainer t;
    struct tg_intent_opts o;
    struct problem prob = {0};
    struct model *lm = NULL;
    memset(&t, 0, sizeof(t));
    tg_feat_scratch_init(&t.fs);
    int rc = tg_intent_resolve_opts(opts, &o, err, errlen);
    if (rc)
        goto out;
    if (!ds || ds->n == 0 || ds->n > INT_MAX / 2) {
        snprintf(err, errlen, "%s",
                 ds && ds->n ? "too many training examples" : "no training examples");
        rc = TG_E_INVAL;
        goto out;
    }
    rc = prepare(&t, tx, ds, &o, &prob, err, errlen);
    if (rc)
        goto out;
    struct parameter param = {.solver_type = L2R_LR, .eps = 0.01, .C = o.c, .p = 0.1};
    const char *bad = check_parameter(&prob, &param);
    if (bad) {
        snprintf(err, errlen, "liblinear: %s", bad);
        rc = TG_E_INVAL;
        goto out;
    }
    set_print_string_function(quiet);
    lm = train(&prob, &param);
    /* liblinear drops no class: every label has an example */
    TG_ASSERT(!lm || lm->nr_class == (int)t.labels.n);
    struct tg_intent_model *m = lm ? make_model(&t, lm, &o, ds->n) : NULL;
    if (!m) {
        snprintf(err, errlen, "training: %s", tg_err_str(TG_E_NOMEM));
        rc = TG_E_NOMEM;
        goto out;
    }
    *out = m;
out:
    if (lm)
        free_and_destroy_model(&lm);
    trainer_free(&t);
    return rc;
}

/* ------------------------------------------------------------ prediction */

static int vectorize(struct tg_intent_model *m, struct tg_text *tx, const char *text, size_t len,
                     size_t *n)
{
    int rc = tg_feat_extract(tx, &m->opts, &m->vocab, false, text, len, &m->fs);
    if (rc)
        return rc;
    size_t need = m->fs.n_ids + 2;
    if (need > m->cap_x) {
        size_t cap = TG_MAX(need, 2 * m->cap_x);
        struct feature_node *x = tg_realloc(m->x, cap * sizeof(*x));
        if (!x)
            return TG_E_NOMEM;
        m->x = x;
        m->cap_x = cap;
    }
    /* count repeats through pos[] rather than sorting: liblinear's
     * prediction takes the nodes in any order */
    size_t k = 0;
    for (size_t i = 0; i < m->fs.n_ids; i++) {
        uint32_t id = m->fs.ids[i];
        if (m->pos[id]) {
            m->x[m->pos[id] - 1].value += 1;
        } else {
            m->x[k].index = (int)id + 1;
            m->x[k].value = 1;
            m->pos[id] = (uint32_t)++k;
        }
    }
    for (size_t i = 0; i < k; i++)
        m->pos[m->x[i].index - 1] = 0;
    tg_feat_weigh(m->x, k, m->idf);
    m->x[k].index = (int)m->vocab.n + 1;
    m->x[k].value = 1;
    m->x[k + 1].index = -1;
    m->x[k + 1].value = 0;
    *n = k;
    return TG_OK;
}

/* Weight of feature f (0-based) for label j. */
static double coef(const struct tg_intent_model *m, size_t f, size_t j)
{
    if (m->nr_w == 1)
        return j == 0 ? m->lin.w[f] : -m->lin.w[f];
    return m->lin.w[f * m->nr_w + j];
}

/* Copy at most outlen-1 bytes of s, not cutting a UTF-8 sequence. */
static void copy_utf8(char *out, size_t outlen, const char *s, size_t len)
{
    if (len >= outlen) {
        len = outlen - 1;
        while (len > 0 && ((unsigned char)s[len] & 0xC0) == 0x80)
            len--;
    }
    memcpy(out, s, len);
    out[len] = '\0';
}

static void explain(const struct tg_intent_model *m, size_t n, size_t best,
                    struct tg_intent_result *res)
{
    double val[TG_ARRAY_LEN(res->top)];
    uint32_t id[TG_ARRAY_LEN(res->top)];
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        size_t f = (size_t)m->x[i].index - 1;
        double c = coef(m, f, best) * m->x[i].value;
        if (!(c > 0) || (k == TG_ARRAY_LEN(val) && c <= val[k - 1]))
            continue;
        size_t p = k < TG_ARRAY_LEN(val) ? k++ : k - 1;
        for (; p > 0 && val[p - 1] < c; p--) {
            val[p] = val[p - 1];
            id[p] = id[p - 1];
        }
        val[p] = c;
        id[p] = (uint32_t)f;
    }
    for (size_t i = 0; i < k; i++) {
        copy_utf8(res->top[i].feature, sizeof(res->top[i].feature), tg_vocab_key(&m->vocab, id[i]),
                  tg_vocab_len(&m->vocab, id[i]));
        res->top[i].weight = val[i];
    }
    res->n_top = k;
}

int tg_intent_predict(struct tg_intent_model *m, struct tg_text *tx, const char *text, size_t len,
                      struct tg_intent_result *res)
{
    size_t n;
    int rc = vectorize(m, tx, text, len, &n);
    if (rc)
        return rc;
    predict_probability(&m->lin, m->x, m->prob);
    size_t best = 0, second = 1;
    if (m->prob[1] > m->prob[0]) {
        best = 1;
        second = 0;
    }
    for (size_t j = 2; j < m->n_labels; j++) {
        if (m->prob[j] > m->prob[best]) {
            second = best;
            best = j;
        } else if (m->prob[j] > m->prob[second]) {
            second = j;
        }
    }
    res->label = m->labels[best];
    res->probability = m->prob[best];
    res->second = m->labels[second];
    res->second_probability = m->prob[second];
    explain(m, n, best, res);
    return TG_OK;
}

static uint64_t text_hash(const char *s, size_t n)
{
    uint64_t h = tg_fnv1a64(s, n, TG_FNV64_INIT);
    return h ? h : 1; /* 0 marks an empty slot */
}

/* Double the memo table (and its rows) when it is half full. */
static int memo_grow(struct tg_intent_model *m)
{
    size_t ns = m->memo_slots ? m->memo_slots * 2 : 256;
    uint64_t *key = tg_calloc(ns, sizeof(*key));
    uint32_t *row = tg_malloc(ns * sizeof(*row));
    double *prob = tg_realloc(m->memo_prob, ns / 2 * m->n_labels * sizeof(*prob));
    if (!key || !row || !prob) {
        tg_free(key);
        tg_free(row);
        if (prob)
            m->memo_prob = prob;
        return TG_E_NOMEM;
    }
    m->memo_prob = prob;
    for (size_t i = 0; i < m->memo_slots; i++) {
        if (!m->memo_key[i])
            continue;
        size_t j = m->memo_key[i] & (ns - 1);
        while (key[j])
            j = (j + 1) & (ns - 1);
        key[j] = m->memo_key[i];
        row[j] = m->memo_row[i];
    }
    tg_free(m->memo_key);
    tg_free(m->memo_row);
    m->memo_key = key;
    m->memo_row = row;
    m->memo_slots = ns;
    return TG_OK;
}

int tg_intent_probabilities_of(struct tg_intent_model *m, struct tg_text *tx, const char *text,
                               size_t len, const double **out)
{
    uint64_t h = text_hash(text, len);
    size_t j;
    int rc = TG_OK;
    if ((m->memo_n + 1) * 2 > m->memo_slots)
        rc = memo_grow(m);
    if (rc)
        return rc;
    for (j = h & (m->memo_slots - 1); m->memo_key[j]; j = (j + 1) & (m->memo_slots - 1)) {
        if (m->memo_key[j] == h) {
            *out = m->memo_prob + (size_t)m->memo_row[j] * m->n_labels;
            return TG_OK;
        }
    }
    size_t n;
    rc = vectorize(m, tx, text, len, &n);
    if (rc)
        return rc;
    predict_probability(&m->lin, m->x, m->prob);
    double *dst = m->memo_prob + m->memo_n * m->n_labels;
    memcpy(dst, m->prob, m->n_labels * sizeof(*dst));
    m->memo_key[j] = h;
    m->memo_row[j] = (uint32_t)m->memo_n++;
    *out = dst;
    return TG_OK;
}
