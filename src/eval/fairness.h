/*
 * fairness.h - group fairness of decisions, as Fairlearn defines it.
 */
#ifndef TG_EVAL_FAIRNESS_H
#define TG_EVAL_FAIRNESS_H

#include "core/core.h"

#define TG_FAIR_MAX_GROUPS 64

struct tg_fair_group {
    char name[64];
    size_t n, selected; /* rows, and rows with a positive decision */
    size_t pos, tp;     /* with true outcomes: positives, and those selected */
    size_t neg, fp;     /* negatives, and those selected */
    double rate, tpr, fpr;
};

struct tg_fair_report {
    struct tg_fair_group groups[TG_FAIR_MAX_GROUPS];
    size_t n_groups;
    double dpd, dpr; /* demographic parity difference (max − min) and ratio (min / max) */
    double eod;      /* equalized odds difference (with true outcomes) */
    bool has_truth;
    size_t min_group;       /* rows in the smallest group */
    double ci_low, ci_high; /* 95 % percentile bootstrap interval of dpd */
};

/*
 * Rows i < n: group[i] (the sensitive attribute's value), pred[i] (the
 * decision, nonzero = selected) and truth[i] (the true outcome; truth may be
 * NULL).  bootstrap resamples (0: none) from a seeded generator, so reports
 * repeat.  TG_OK, TG_E_NOMEM, or TG_E_TOOBIG beyond TG_FAIR_MAX_GROUPS.
 */
int tg_fairness_compute(const char *const *group, const int *pred, const int *truth, size_t n,
                        size_t bootstrap, uint64_t seed, struct tg_fair_report *r);

/* The release gate: the parity difference exceeds limit, its bootstrap
 * interval is clear of the limit, and every group has min_group rows. */
bool tg_fairness_gate(const struct tg_fair_report *r, double limit, size_t min_group);

/*
 * The stored form of a sensitive attribute's value (gender, age band,
 * region from a channel's metadata): a keyed pseudonym per attribute of the
 * value trimmed and in ASCII lower case, so equal values group together and
 * the value itself is never kept.  Whoever holds the deployment's key and
 * the list of values can name the groups again (the fairness report).
 */
void tg_fairness_value_pseudonym(const uint8_t *key, size_t keylen, const char *attribute,
                                 const char *value, char out[33]);

/* ------------------------------------------------------------ on live traffic (fairness_live.c) */

struct tg_store;

struct tg_fair_live {
    const json_t *cfg;  /* the config's fairness section: attributes [NAME | {name, values}] */
    const uint8_t *key; /* the deployment's pseudonym key, to name configured values; or NULL */
    size_t keylen;
    int64_t since_ms;    /* turns created from then on */
    const char *release; /* only turns answered by this release ("NAME@VERSION"), or NULL */
    double limit;        /* the gate: parity difference above this ... */
    size_t min_group;    /* ... with every group at least this large */
    size_t bootstrap;    /* resamples for the interval */
};

/*
 * Per configured attribute, from the audit log and the decided reviews:
 * [{attribute, delivered: OUTCOME, review_approved: OUTCOME}] where OUTCOME
 * is {turns, groups: [{group, n, selected, rate}], dpd, dpr, ci_low,
 * ci_high, min_group, gate_closed}.  NULL when the store cannot be read.
 */
json_t *tg_fairness_live(struct tg_store *st, const struct tg_fair_live *in);
/* Does any gate of such a result stand closed?  why names the first. */
bool tg_fairness_live_closed(const json_t *attributes, char *why, size_t whylen);

#endif
