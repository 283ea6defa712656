/*
 * intent.h - the intent classifier: multinomial logistic regression
 * (liblinear) over features from the shared tokenizer (word and
 * character n-grams), with probabilities, exact per-token contributions,
 * and a cache keyed by the training file's hash.
 *
 * Training data is TSV: one example per line, `text<TAB>intent`.  A first
 * line `text<TAB>label` (or any line whose second field is "label" or
 * "intent") is a header and is skipped.  Lines without a tab are errors
 * reported with file:line.
 *
 * Threading: prediction uses the struct tg_text it is given and scratch
 * space inside the model, so a model is used from one thread at a time.
 */
#ifndef TG_INTENT_H
#define TG_INTENT_H

#include "core/core.h"

struct tg_text;
struct tg_intent_model;

struct tg_intent_opts {
    double c;          /* liblinear's C (inverse regularization); 0 = default chosen by tuning */
    int max_ngram;     /* word n-grams up to this length; 0 = default (2) */
    int char_ngram_min; /* character n-grams over the normalized text; 0 = default */
    int char_ngram_max;
};

/* One labelled example. */
struct tg_labelled {
    char *text;
    char *label;
};

struct tg_dataset {
    struct tg_labelled *v;
    size_t n, cap;
};

/*
 * Read a TSV file into ds (appending).  Errors (unreadable file, a line
 * without a tab, an empty field) return TG_E_PARSE / TG_E_IO with
 * "FILE:LINE: message" in err.
 */
int tg_dataset_load_tsv(const char *path, struct tg_dataset *ds, char *err, size_t errlen);
void tg_dataset_free(struct tg_dataset *ds);

/* Train a model on ds.  Returns TG_OK or an error with a message in err. */
int tg_intent_train(struct tg_text *tx, const struct tg_dataset *ds,
                    const struct tg_intent_opts *opts, struct tg_intent_model **out, char *err,
                    size_t errlen);

/*
 * Train from a TSV file, or load the model cached in cache_dir under a
 * name derived from the SHA-256 of the file's bytes and the options; a
 * freshly trained model is saved there.  cache_dir NULL disables the cache.
 */
int tg_intent_load_or_train(struct tg_text *tx, const char *tsv_path, const char *cache_dir,
                            const struct tg_intent_opts *opts, struct tg_intent_model **out,
                            char *err, size_t errlen);

/*
 * The same, trained on the file's examples and extra (extra_len bytes of
 * TSV lines, e.g. from tg_intent_kb_examples; part of the cache key).
 * TG_E_CONFIG when extra names an intent the file has no example of.
 */
int tg_intent_load_or_train_with(struct tg_text *tx, const char *tsv_path, const char *extra,
                                 size_t extra_len, const char *cache_dir,
                                 const struct tg_intent_opts *opts, struct tg_intent_model **out,
                                 char *err, size_t errlen);

struct tg_kb;
struct tg_buf;
/*
 * The knowledge base's labelled texts as TSV lines "text<TAB>intent"
 * appended to out: every labelled FAQ question, each labelled article's
 * title and "title heading" for each of its sections (src/kb/front.c).
 * TG_OK, TG_E_NOMEM or TG_E_TOOBIG (out's maximum).
 */
int tg_intent_kb_examples(struct tg_kb *kb, struct tg_buf *out);

int tg_intent_save(const struct tg_intent_model *m, const char *path);
int tg_intent_load(const char *path, struct tg_intent_model **out, char *err, size_t errlen);
void tg_intent_free(struct tg_intent_model *m);

size_t tg_intent_n_labels(const struct tg_intent_model *m);
const char *tg_intent_label(const struct tg_intent_model *m, size_t i);

/* A token's share of the decision for the predicted intent. */
struct tg_contribution {
    char feature[64]; /* the feature as text, e.g. "w:理赔" or "c:意外险" */
    double weight;    /* its contribution (weight x value) to the predicted class's score */
};

struct tg_intent_result {
    const char *label;     /* the most probable intent (owned by the model) */
    double probability;    /* its probability */
    const char *second;    /* the runner-up, and its probability */
    double second_probability;
    struct tg_contribution top[8]; /* the strongest contributions, largest first */
    size_t n_top;
};

/* Classify text (raw customer words; normalized inside).  TG_OK or TG_E_NOMEM. */
int tg_intent_predict(struct tg_intent_model *m, struct tg_text *tx, const char *text,
                      size_t len, struct tg_intent_result *res);

/* Accuracy and macro-F1 of a model on a labelled set; labels unknown to the model count as errors. */
struct tg_intent_eval {
    size_t n;
    double accuracy;
    double macro_f1;
};
int tg_intent_evaluate(struct tg_intent_model *m, struct tg_text *tx,
                       const struct tg_dataset *test, struct tg_intent_eval *out, json_t **confusion);

/* ------------------------------------------------------------------------
 * Additions to the contract above (model module, for the CLI and tests).
 * ---------------------------------------------------------------------- */

/* Utterances the model was trained on, and the features it kept. */
size_t tg_intent_n_examples(const struct tg_intent_model *m);
size_t tg_intent_n_features(const struct tg_intent_model *m);

/*
 * For a model from tg_intent_load_or_train with a cache directory: the
 * cache file's path (owned by the model), and whether the model was read
 * from it (true) or trained now (false).  NULL / false otherwise.
 */
const char *tg_intent_cache_path(const struct tg_intent_model *m);
bool tg_intent_from_cache(const struct tg_intent_model *m);

/*
 * The probability of every label (index i as in tg_intent_label) from the
 * last tg_intent_predict on m; they sum to 1.  Owned by the model and
 * overwritten by the next prediction.
 */
const double *tg_intent_probabilities(const struct tg_intent_model *m);

/*
 * The probability of every label for text (as tg_intent_predict computes
 * them, without the explanation), remembered by the text's 64-bit hash so
 * that the same text is classified only once per model: for texts the
 * deployment knows in advance, such as the knowledge base's questions and
 * headings.  *out points into the model and stays valid until the next
 * call of this function or tg_intent_free; like any prediction it
 * overwrites tg_intent_probabilities().  TG_OK or TG_E_NOMEM.
 */
int tg_intent_probabilities_of(struct tg_intent_model *m, struct tg_text *tx, const char *text,
                               size_t len, const double **out);

/*
 * Out-of-scope detection on a test set whose out-of-scope utterances carry
 * the label oos_label: a prediction counts as out of scope when its
 * probability is below threshold or its label is oos_label.  In-scope
 * accuracy: in-scope utterances predicted in scope with the right label,
 * over all in-scope ones; out-of-scope recall: out-of-scope utterances
 * predicted out of scope, over all of them (0 when there are none).
 */
struct tg_intent_oos_eval {
    size_t n_in, n_oos;
    double in_scope_accuracy;
    double oos_recall;
    double oos_precision; /* of the out-of-scope predictions, how many were right */
};
int tg_intent_evaluate_oos(struct tg_intent_model *m, struct tg_text *tx,
                           const struct tg_dataset *test, const char *oos_label, double threshold,
                           struct tg_intent_oos_eval *out);

#endif
