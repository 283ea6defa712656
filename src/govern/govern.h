/*
 * govern.h - live governance, on the traffic the gateway serves: which
 * variant of an experiment a customer sees, the release registry and the
 * gates a promotion must pass, the live fairness gate and the FAR monitor's
 * judgements and exit criterion.  Offline measurement (FAR reports,
 * statistics, fairness metrics, experiment analysis) is eval's; govern
 * reads its formulas from there.
 */
#ifndef TG_GOVERN_H
#define TG_GOVERN_H

#include "eval/eval.h"
#include "eval/fairness.h"
#include "eval/stats.h"

struct tg_experiment_conf;
struct tg_fairness_conf;

/* ------------------------------------------------------------ experiment assignment (assign.c) */

/*
 * Experiment assignment (assign.c): u = the first 53 bits of
 * SHA-256(salt ":" customer) as a number in [0, 1); u below the experiment's
 * holdout share gives "holdout", the rest is split by the variants' shares
 * (config.h: struct tg_experiment_conf).  NULL without a customer id or
 * variants.  The returned name is borrowed from exp.
 */
double tg_experiment_unit(const char *salt, const char *customer);
const char *tg_experiment_assign(const struct tg_experiment_conf *exp, const char *customer);

/* ------------------------------------------------------------ the FAR monitor (monitor.c) */

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
int tg_monitor_mann_kendall(const double *x, size_t n, struct tg_mk *out);

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
json_t *tg_monitor_judgements(const json_t *events);

/* One UTC day of judged AI answers, by the day of the turn. */
struct tg_far_day {
    int64_t day_ms; /* 00:00 UTC */
    size_t good, bad;
    double far; /* good / (good + bad); NAN without data: a gap, not 0 */
};

/*
 * Daily FAR over the `days` calendar days ending on the day of now_ms (UTC),
 * from judgements as tg_monitor_judgements returns them, each counted on the
 * day of its turn (turn_ms).  out holds days entries, oldest first.
 */
void tg_monitor_daily_far(const json_t *judgements, int64_t now_ms, size_t days,
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
void tg_monitor_far_criterion(const struct tg_far_day *days, size_t n,
                              const struct tg_far_criterion *c, struct tg_far_verdict *v);

/* ------------------------------------------------------------ releases (release.c) */

struct tg_audit;

/* The release freeze: {frozen, by?, why?, at?} (a new reference; never NULL). */
json_t *tg_release_state(struct tg_store *st);
/* The newest version of the release name (its record, a new reference), or NULL. */
json_t *tg_release_latest(struct tg_store *st, const char *name);
/*
 * Freeze or unfreeze promotions: an audit leaf {kind: release, action:
 * freeze|unfreeze, by, why} and the state, committed together, under the
 * store lock TG_RELEASE_STATE_LOCK (nodes sharing the store change the
 * freeze one at a time).  TG_OK or the store's error.
 */
#define TG_RELEASE_STATE_LOCK "release-state"
/* The same two writes queued, not committed (inside the caller's
 * tg_store_hold, under the caller's lock). */
int tg_release_queue_frozen(struct tg_store *st, struct tg_audit *audit, bool frozen,
                            const char *by, const char *why);
int tg_release_set_frozen(struct tg_store *st, struct tg_audit *audit, bool frozen, const char *by,
                          const char *why);
/* Append a transition to a release record's history: {action, by, why, at}.
 * TG_OK or TG_E_NOMEM (the history then as it was). */
int tg_release_event(json_t *rel, const char *action, const char *by, const char *why);
/* The audit leaf of a transition: {kind: release, action, name, version, hash, by,
 * why, at, evidence?} (rel and evidence may be NULL).  TG_OK or the log's error. */
int tg_release_record(struct tg_audit *audit, const char *action, const json_t *rel, const char *by,
                      const char *why, const json_t *evidence);
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
 *   far         one judgement per turn (tg_monitor_judgements) over at least 30
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
struct tg_config;
struct tg_release_gate_in {
    const struct tg_config *cfg; /* the deployment's config: experiments, eval, fairness */
    const uint8_t *key;          /* the pseudonym key (fairness names configured groups), or NULL */
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
/*
 * The release registry's transitions, each an audit leaf {kind: release,
 * action, ...} and the record saved and committed; *out (may be NULL)
 * receives the release as it now stands.  TG_E_INVAL with a message in err
 * when the release is not in the state the transition starts from.
 *   propose           a new version of name from the files of cfg (kept in
 *                     the store by content): state proposed
 *   start_experiment  proposed -> experiment, share in (0, 1]
 *   rollback          promoted -> rolled_back, and the newest superseded
 *                     release in force again (*restored, may be NULL:
 *                     that release, or NULL when there is none)
 * Promotion is tg_release_promote's, behind its gates.
 */
struct tg_config;
int tg_release_propose(struct tg_store *st, struct tg_audit *audit, const struct tg_config *cfg,
                       const char *name, const char *by, const char *why, json_t **out, char *err,
                       size_t errlen);
int tg_release_start_experiment(struct tg_store *st, struct tg_audit *audit, const char *name,
                                double share, const char *by, const char *why, json_t **out,
                                char *err, size_t errlen);
int tg_release_rollback(struct tg_store *st, struct tg_audit *audit, const char *name,
                        const char *by, const char *why, json_t **out, json_t **restored, char *err,
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

/* ------------------------------------------------------------ on live traffic (fairness_live.c) */

struct tg_store;

struct tg_fair_live {
    const struct tg_fairness_conf *cfg; /* the config's fairness section (its attributes) */
    const uint8_t *key; /* the deployment's pseudonym key, to name configured values; or NULL */
    size_t keylen;
    int64_t since_ms;    /* turns created from then on */
    const char *release; /* only turns answered by this release ("NAME@VERSION"), or NULL */
    double limit;        /* the gate: a true gap proven above this ... */
    size_t min_group;    /* ... among the groups at least this large */
    size_t bootstrap;    /* Monte-Carlo tables for small expected counts (tg_fairness_test) */
    double alpha;        /* the error rate; 0: the section's "alpha", else TG_FAIR_ALPHA */
};

/*
 * Per configured attribute, from the audit log and the decided reviews:
 * [{attribute, delivered: OUTCOME, review_approved: OUTCOME}] where OUTCOME
 * is {turns, groups: [{group, n, selected, rate, tested}], dpd, dpr,
 * min_group, tested_groups, gap, ci_low, ci_high, level, alpha, chi2, df, p,
 * resamples, pairs, gate_closed}: dpd and dpr over every group (Fairlearn),
 * gap and its simultaneous interval [ci_low, ci_high] at level 1 − alpha over
 * the tested groups (null when fewer than two).  NULL when the store cannot
 * be read or out of memory.  The caller owns the result.
 */
json_t *tg_fairness_live(struct tg_store *st, const struct tg_fair_live *in);
/* Does any gate of such a result stand closed?  why names the first. */
bool tg_fairness_live_closed(const json_t *attributes, char *why, size_t whylen);

#endif
