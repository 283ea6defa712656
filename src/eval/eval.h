/*
 * eval.h - trustgate measuring its own answers: first-response accuracy
 * (FAR) decomposed into its factors, and the metrics behind it.
 *
 * A labelled turn (eval/far.jsonl) names the intent, the source document and
 * the key facts a correct first response has.  A turn counts toward FAR when
 * the gate decided what the label expects and, for an answer delivered, the
 * intent was right, the expected source was among the citations (top k) and
 * the answer is consistent with its evidence (tg_eval_consistency).  The
 * report also shows each factor, their product, and the first stage that
 * failed for every failing turn: understand (intent), retrieve (source),
 * generate (consistency), gate (decision).
 */
#ifndef TG_EVAL_H
#define TG_EVAL_H

#include "core/core.h"

struct tg_text;

/* ------------------------------------------------------------ consistency */

/*
 * Is an answer consistent with the evidence it was drawn from?  Two tests,
 * both lexical:
 *  - every quantity the answer states (amounts, percentages, dates, numbers,
 *    codes) is found in the evidence, compared by value (tg_grounding_check);
 *  - the answer is split into sentences (。！？；!?; and line ends); a
 *    sentence is supported when at least min_overlap of its tokens (CJK
 *    words and bigrams, Latin words, numbers) occur in the evidence.
 * Sentences equal to one of the skip texts (disclaimers the policies add)
 * and citation notes "（来源：…）" are not claims.  A paraphrase with other
 * words fails the overlap test and a false statement made of the evidence's
 * own words passes it: the method finds invented content, not every error.
 */
struct tg_eval_consistency {
    size_t claims, supported;    /* sentences that are claims, and those supported */
    size_t quantities, grounded; /* quantities stated, and those found in the evidence */
    bool consistent;             /* every claim supported and every quantity grounded */
};

int tg_eval_consistency(struct tg_text *tx, const char *answer, const char *const *evidence,
                        size_t n_evidence, const char *const *skip, size_t n_skip,
                        double min_overlap, struct tg_eval_consistency *out);

/* Does text contain fact, both normalized (NFKC, folded, Simplified)? */
bool tg_eval_contains(struct tg_text *tx, const char *text, const char *fact);

/* The q-quantile (0..1) of n values by nearest rank; sorts v.  0 when n is 0. */
double tg_eval_quantile(double *v, size_t n, double q);

/* ------------------------------------------------------------ HTML reports */

/* The page's head and style (the caller ends it with "</body></html>"). */
void tg_eval_html_head(struct tg_buf *out, const char *title);
/* Text with <, >, & and " escaped. */
void tg_eval_html_esc(struct tg_buf *out, const char *s);
/* A horizontal bar chart as inline SVG (class "chart"): values 0..max,
 * shown as percentages or as counts. */
void tg_eval_html_bars(struct tg_buf *out, const char *title, const char *const *labels,
                       const double *values, size_t n, double max, bool percent);

/* ------------------------------------------------------------ robustness */

/* How a customer may write the same question. */
enum tg_eval_variant {
    TG_VARIANT_ORIGINAL,
    TG_VARIANT_TYPO,        /* two adjacent Chinese characters swapped near the middle */
    TG_VARIANT_TRADITIONAL, /* Simplified -> Traditional (ICU Hans-Hant) */
    TG_VARIANT_FULLWIDTH,   /* ASCII letters, digits and punctuation full-width */
    TG_VARIANT_SPACES,      /* a space after every second character */
    TG_VARIANT_MIXED,       /* a common term in English (保险 -> insurance ...) */
    TG_VARIANT__COUNT
};
extern const char *const tg_eval_variant_names[TG_VARIANT__COUNT];
/* Append the variant of question q to out.  TG_OK, TG_E_NOMEM or TG_E_INTERNAL (ICU). */
int tg_eval_variant(enum tg_eval_variant v, const char *q, struct tg_buf *out);

/* ------------------------------------------------------------ FAR */

/* One labelled turn and what happened to it. */
struct tg_far_item {
    /* the label */
    char *id, *question, *intent, *source, *decision; /* decision: "deliver" by default */
    json_t *facts;                                    /* array of strings */
    /* the outcome */
    bool ran;
    bool low_confidence; /* the answer was the holding reply of a weak match */
    char *got_decision, *got_intent, *answer;
    json_t *cited;         /* citation sources, best first */
    json_t *hits;          /* the policy rules that fired, as the turn reports them
                              ({rule, description, actions, trigger}), or NULL */
    double got_confidence; /* the classifier's probability for got_intent */
    bool intent_ok, top1, topk, consistent, decision_ok, correct;
    size_t facts_found;
    struct tg_eval_consistency cons;
    const char
        *failed_stage; /* NULL when correct; understand | retrieve | generate | gate | error */
    double ms;         /* turn latency */
    int64_t prompt_tokens, completion_tokens;
    double cost; /* from the config's price table */
};

struct tg_far_summary {
    size_t n, correct, delivered_expected;
    double far;                      /* correct / n */
    double intent_acc;               /* over all turns */
    double source_top1, source_topk; /* over turns expected to be delivered */
    double consistency;              /* over answers delivered */
    double product;                  /* intent_acc * source_topk * consistency */
    double facts_recall;             /* key facts found in delivered answers */
    /* answers delivered where the label expects one, and those right: the
     * first citation is the labelled source or the answer holds every key
     * fact (what a customer got, whatever the intent) */
    size_t answered, answered_right;
    size_t failed[5];                /* by stage: understand, retrieve, generate, gate, error */
    double p50_ms, p95_ms;
    int64_t prompt_tokens, completion_tokens;
    double cost, cost_per_turn;
};

extern const char *const tg_far_stages[5];

/* Read a far.jsonl file.  TG_OK, or an error with "FILE:LINE: message" in err. */
int tg_far_load(const char *path, struct tg_far_item **items, size_t *n, char *err, size_t errlen);
void tg_far_free(struct tg_far_item *items, size_t n);

/* Score one item whose outcome fields are filled (decision, intent, cited, answer). */
void tg_far_score(struct tg_far_item *it, size_t k);
/* Aggregate scored items. */
void tg_far_summarize(struct tg_far_item *items, size_t n, struct tg_far_summary *s);

/* The report as JSON (new reference; NULL when out of memory) and as a
 * self-contained HTML page. */
json_t *tg_far_json(const struct tg_far_item *items, size_t n, const struct tg_far_summary *s,
                    const char *target);
int tg_far_html(const struct tg_far_item *items, size_t n, const struct tg_far_summary *s,
                const char *target, struct tg_buf *out);

/* ------------------------------------------------------------ experiments (experiment.c) */

struct tg_store;

struct tg_eval_conf;
/* The price of a call: eval.prices[model] {prompt, completion} per 1,000
 * tokens (config.h); 0 for a model without a price or e NULL. */
double tg_eval_price(const struct tg_eval_conf *e, const char *model, int64_t prompt,
                     int64_t completion);

/*
 * One row per turn of experiment exp in the audit log, with the outcomes
 * people recorded: {variant, day, resolved (answered by AI, neither edited,
 * rejected, handed off nor rated bad), handed_off, reviewed, bad_rating,
 * latency_ms (time in the stages), cost (eval.prices)}; day numbers the
 * looks of the sequential test: periods of period_ms (default a day) from
 * the experiment's first turn, or, when look_turns > 0, every look_turns
 * turns in the order recorded.  NULL when the store cannot be read or out
 * of memory.
 */
json_t *tg_experiment_rows(struct tg_store *st, const char *exp, const struct tg_eval_conf *prices,
                           int64_t period_ms, size_t look_turns);

/*
 * The statistics of such rows for one metric (0/1 or a number), each
 * variant against control: counts and means, the fixed-horizon test (two
 * proportions, else Welch) and CI, the always-valid mSPRT p-value look by
 * look (mixture scale tau) and the asymptotic confidence sequence, the
 * first look significant at alpha, sample-ratio mismatch against shares
 * ({name: share}, NULL: equal) and Benjamini-Hochberg across variants.
 * NULL with a message in err on bad rows or no control.
 */
json_t *tg_experiment_analyze(const json_t *rows, const char *control, const char *metric,
                              double alpha, double tau, const json_t *shares, char *err,
                              size_t errlen);

/* An SVG line of the difference look by look (a variant's "days" from
 * tg_experiment_analyze) inside the band of its confidence sequence, in points. */
void tg_experiment_html_sequence(struct tg_buf *b, const char *title, const json_t *series);

#endif
