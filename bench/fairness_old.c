/*
 * fairness_old.c - the baseline of bench/fairness.sh: the release gate as it
 * was before issue 17 (a percentile bootstrap interval of max − min over all
 * groups, every group at least min_group rows), called through the old
 * fairness.c of an earlier commit.  bench/fairness.sh compiles this file and
 * that fairness.c against the old fairness.h, with the old functions renamed
 * (old_tg_*), so both gates run in one process on the same simulated data.
 */
#include "eval/fairness.h"

#include <stdio.h>
#include <stdlib.h>

int old_gate_closes(const size_t *n, const size_t *x, size_t k, double limit, size_t min_group,
                    size_t bootstrap, uint64_t seed);

/* Rows from per-group counts (group g: n[g] rows, the first x[g] selected), then the old gate. */
int old_gate_closes(const size_t *n, const size_t *x, size_t k, double limit, size_t min_group,
                    size_t bootstrap, uint64_t seed)
{
    static char names[TG_FAIR_MAX_GROUPS][24];
    size_t all = 0, at = 0;
    for (size_t g = 0; g < k; g++)
        all += n[g];
    const char **group = malloc(all * sizeof(*group));
    int *pred = malloc(all * sizeof(*pred));
    struct tg_fair_report *r = malloc(sizeof(*r));
    int closed = -1;
    if (!group || !pred || !r)
        goto out;
    for (size_t g = 0; g < k; g++) {
        snprintf(names[g], sizeof(names[g]), "g%zu", g);
        for (size_t i = 0; i < n[g]; i++, at++) {
            group[at] = names[g];
            pred[at] = i < x[g];
        }
    }
    if (tg_fairness_compute(group, pred, NULL, all, bootstrap, seed, r) == TG_OK)
        closed = tg_fairness_gate(r, limit, min_group);
out:
    free(group);
    free(pred);
    free(r);
    return closed;
}
