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

/* The report as JSON (new reference) and as a self-contained HTML page. */
json_t *tg_far_json(const struct tg_far_item *items, size_t n, const struct tg_far_summary *s,
                    const char *target);
int tg_far_html(const struct tg_far_item *items, size_t n, const struct tg_far_summary *s,
                const char *target, struct tg_buf *out);

/* ------------------------------------------------------------ monitor */

/*
 * The Mann–Kendall trend test (Mann 1945, Kendall 1975) on a series in time
 * order: S = sum over i<j of sign(x_j - x_i); Var(S) = [n(n-1)(2n+5) -
 * sum over tie groups t(t-1)(2t+5)] / 18; z = (S - sign(S)) / sqrt(Var(S))
 * (continuity correction); two-sided p = erfc(|z| / sqrt 2).  Sen's slope is
 * the median of (x_j - x_i) / (j - i).  n >= 3, else TG_E_INVAL.
 */
struct tg_mk {
    size_t n;
    double s, var, z, p, slope;
};
int tg_eval_mann_kendall(const double *x, size_t n, struct tg_mk *out);

/*
 * One judgement per turn.  events is an array of what people said about
 * turns' answers, in any order:
 *   {turn_id, turn_ms, at_ms, source: "review", good}  a reviewer's decision
 *       on an AI draft: good when approved as written; an edit or a
 *       rejection is not, and the customer then got a person's answer;
 *   {turn_id, turn_ms, at_ms, source: "rating", good, ai}  a customer's
 *       rating; ai when the turn's answer went out as the AI wrote it at
 *       once (decision deliver).
 * A rating counts only when the answer it rates is the AI's: ai, or the
 * turn's draft approved by a reviewer; a rating of a person's answer (an
 * edit, a rejection, a hand-off, a held turn never approved) is ignored.
 * Of what counts, the latest (at_ms; on a tie the later in the array)
 * is the turn's judgement.  Returns a new array [{turn_id, turn_ms, at_ms,
 * good}], one per turn judged, or NULL when out of memory.
 */
json_t *tg_eval_judgements(const json_t *events);

/* One UTC day of judged AI answers, by the day of the turn. */
struct tg_far_day {
    int64_t day_ms; /* 00:00 UTC */
    size_t good, bad;
    double far; /* good / (good + bad); NAN without data: a gap, not 0 */
};

/*
 * Daily FAR over the `days` calendar days ending on the day of now_ms (UTC),
 * from judgements as tg_eval_judgements returns them, each counted on the
 * day of its turn (turn_ms).  out holds days entries, oldest first.
 */
void tg_eval_daily_far(const json_t *judgements, int64_t now_ms, size_t days,
                       struct tg_far_day *out);

/* A product owner's exit criterion: FAR below min_far on each of the last
 * days days (every one with data), with no significantly improving trend
 * (Mann–Kendall S > 0 at p < alpha). */
struct tg_far_criterion {
    double min_far, alpha;
    size_t days;
};
struct tg_far_verdict {
    bool met;           /* the criterion holds: raise the alert */
    bool all_below;     /* every day below min_far (and every day with data) */
    bool improving;     /* a significant upward trend */
    struct tg_mk trend; /* n 0 when fewer than 3 days had data */
};
void tg_eval_far_criterion(const struct tg_far_day *days, size_t n,
                           const struct tg_far_criterion *c, struct tg_far_verdict *v);

/* ------------------------------------------------------------ experiments (experiment.c) */

struct tg_store;

/* The price of a call: eval.prices[model] {prompt, completion} per 1,000 tokens. */
double tg_eval_price(const json_t *prices, const char *model, int64_t prompt, int64_t completion);

/*
 * One row per turn of experiment exp in the audit log, with the outcomes
 * people recorded: {variant, day, resolved (answered by AI, neither edited,
 * rejected, handed off nor rated bad), handed_off, reviewed, bad_rating,
 * latency_ms (time in the stages), cost (eval.prices)}; day numbers the
 * looks of the sequential test: periods of period_ms (default a day) from
 * the experiment's first turn, or, when look_turns > 0, every look_turns
 * turns in the order recorded.  NULL when the store cannot be read.
 */
json_t *tg_experiment_rows(struct tg_store *st, const char *exp, const json_t *prices,
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

/* ------------------------------------------------------------ releases (release.c) */

struct tg_audit;

/* The release freeze: {frozen, by?, why?, at?} (a new reference; never NULL). */
json_t *tg_release_state(struct tg_store *st);
/* The newest version of the release name (its record, a new reference), or NULL. */
json_t *tg_release_latest(struct tg_store *st, const char *name);
/* Freeze or unfreeze promotions: an audit leaf {kind: release, action: freeze|unfreeze,
 * by, why}, then the state, flushed.  TG_OK or the store's error. */
int tg_release_set_frozen(struct tg_store *st, struct tg_audit *audit, bool frozen, const char *by,
                          const char *why);
/* Append a transition to a release record's history: {action, by, why, at}. */
void tg_release_event(json_t *rel, const char *action, const char *by, const char *why);
/* The audit leaf of a transition: {kind: release, action, name, version, hash, by,
 * why, at, evidence?} (rel and evidence may be NULL).  TG_OK or the log's error. */
int tg_release_record(struct tg_audit *audit, const char *action, const json_t *rel,
                      const char *by, const char *why, const json_t *evidence);
/* Queue a release record as blob release/NAME/VERSION (not flushed). */
int tg_release_save(struct tg_store *st, const json_t *rel);

/*
 * The gates a promotion of release name's latest version must pass, computed
 * from the store, never from anything the person asking supplies:
 *   candidate   it is under experiment (or proposed, with override: a
 *               supervisor promotes a release that never ran, with a reason);
 *   frozen      releases are not frozen;
 * and on the turns it answered as a variant (since it was proposed) — not
 * measured when it answered none because of an override:
 *   experiment  a configured experiment has a variant answered by it, and it
 *               answered turns;
 *   far         one judgement per turn (tg_eval_judgements) over at least 30
 *               judged turns, FAR at least eval.far.min (closed when the
 *               config sets none);
 *   monitor     eval.monitor's exit criterion (FAR below min_far on each of
 *               the last `days` days, no improving trend) does not hold;
 *   srm         per experiment, customers per arm against the configured
 *               shares: chi-square p at least 0.001;
 *   fairness    the live fairness gate (config fairness) open on its turns.
 * Returns {name, version, release: "NAME@VERSION", hash, state, open,
 * refused: the closed gates' reasons joined by "; ", gates: [{gate, open,
 * detail}]}, a new reference; NULL with a message in err when the release
 * does not exist or the store cannot be read.  The cost grows with the audit
 * log: a server calls it on its background worker.
 */
struct tg_release_gate_in {
    const json_t *root; /* the deployment's config: experiments, eval, fairness */
    const uint8_t *key; /* the pseudonym key (fairness names configured groups), or NULL */
    size_t keylen;
    const char *name;
    bool override; /* a supervisor stands in for the experiment the release did not run */
    int64_t now_ms;
};
json_t *tg_release_gates(struct tg_store *st, const struct tg_release_gate_in *in, char *err,
                         size_t errlen);
/*
 * Promote the release tg_release_gates measured (evidence), on the thread
 * that owns st and audit: refused with TG_E_CONFLICT when the release
 * changed since (another version, another state) or releases are frozen
 * now, and with TG_E_FORBIDDEN when a gate was closed (a promote_refused
 * leaf with the evidence); otherwise an override leaf (with override_why)
 * when the release never ran as an experiment, the release in force
 * superseded, and a promote leaf carrying the evidence.  It first waits for
 * the store to commit what was queued (so it reads the latest transition);
 * its own writes are queued, not flushed.  The reason of a refusal is in err.
 */
int tg_release_promote(struct tg_store *st, struct tg_audit *audit, const json_t *evidence,
                       const char *by, const char *why, const char *override_why, char *err,
                       size_t errlen);
/* Keep one of a release's files in the store by its SHA-256 (hex). */
int tg_release_keep_file(struct tg_store *st, const char *sha256_hex, const void *data, size_t len);
/*
 * Write a release record's files ({files: {name: sha256}, config_file})
 * under dir, each read back from the store and checked against its hash;
 * config gets the path of the release's config there.  Names must be
 * relative without ".." (files outside the config's folder cannot be
 * written out).  TG_OK, or an error with a message in err.
 */
int tg_release_materialize(struct tg_store *st, const json_t *record, const char *dir, char *config,
                           size_t config_len, char *err, size_t errlen);

#endif
