/*
 * fairness_bench.c - the fairness gate's error rate and power by simulation
 * (bench/fairness.sh, bench/FAIRNESS.md).  For each group layout and each
 * true gap (one group's rate above the others' by 0, 2, 5, 8 or 12 points),
 * seeded experiments are drawn and both gates judge the same tables: the
 * gate of src/eval/fairness.c (χ² homogeneity and Newcombe-Bonferroni
 * simultaneous interval) and, as the baseline, the gate before issue 17
 * (bench/fairness_old.c).  Prints one table: closure rates at the limit 0.05
 * (the deployed setting) and, for the new gate, at limit 0 (detection).
 *
 *   fairness_bench [SIMS] [OLD_SIMS]   (defaults 1000 and 200)
 */
#include "eval/fairness.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int old_gate_closes(const size_t *n, const size_t *x, size_t k, double limit, size_t min_group,
                    size_t bootstrap, uint64_t seed);

struct layout {
    const char *name;
    size_t k;
    size_t n[10];
};

static uint64_t next(uint64_t *s)
{
    *s ^= *s << 13; /* xorshift64 (Marsaglia 2003) */
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* One table: group 0 at base + gap, the others at base. */
static void draw(const struct layout *L, double base, double gap, uint64_t *s, size_t *x)
{
    for (size_t g = 0; g < L->k; g++) {
        double p = g == 0 ? base + gap : base;
        x[g] = 0;
        for (size_t i = 0; i < L->n[g]; i++)
            x[g] += (double)(next(s) >> 11) / 9007199254740992.0 < p;
    }
}

int main(int argc, char **argv)
{
    static const struct layout layouts[] = {
        {"4 x 30", 4, {30, 30, 30, 30}},
        {"10 x 50", 10, {50, 50, 50, 50, 50, 50, 50, 50, 50, 50}},
        {"4 x 100", 4, {100, 100, 100, 100}},
        {"8 x 200", 8, {200, 200, 200, 200, 200, 200, 200, 200}},
        {"10 x 300", 10, {300, 300, 300, 300, 300, 300, 300, 300, 300, 300}},
        {"2 x 1000", 2, {1000, 1000}},
        {"4 x 1000", 4, {1000, 1000, 1000, 1000}},
        {"30+50+300+1000", 4, {1000, 300, 50, 30}}, /* the gap in the largest group */
        {"40+40+40+40+500", 5, {40, 40, 40, 40, 500}},
    };
    static const double gaps[] = {0, 0.02, 0.05, 0.08, 0.12};
    const double base = 0.60, alpha = 0.05, limit = 0.05;
    int sims = argc > 1 ? (int)strtol(argv[1], NULL, 10) : 1000;
    int old_sims = argc > 2 ? (int)strtol(argv[2], NULL, 10) : 200;
    printf("closure rate over %d experiments (old gate: %d, bootstrap 1000), alpha %.2f,\n"
           "min_group 30; base rate %.2f, group 0 higher by the gap\n\n",
           sims, old_sims, alpha, base);
    printf("%-16s %5s | %-10s %-10s | %-10s\n", "layout", "gap", "old @0.05", "new @0.05",
           "new @0");
    for (size_t li = 0; li < sizeof(layouts) / sizeof(layouts[0]); li++) {
        const struct layout *L = &layouts[li];
        for (size_t gi = 0; gi < sizeof(gaps) / sizeof(gaps[0]); gi++) {
            uint64_t s = 0x9E3779B97F4A7C15ULL ^ (li * 1000 + gi + 1);
            int new5 = 0, new0 = 0, old5 = 0;
            for (int sim = 0; sim < sims; sim++) {
                size_t x[10];
                struct tg_fair_report r;
                draw(L, base, gaps[gi], &s, x);
                memset(&r, 0, sizeof(r));
                r.n_groups = L->k;
                for (size_t g = 0; g < L->k; g++) {
                    snprintf(r.groups[g].name, sizeof(r.groups[g].name), "g%zu", g);
                    r.groups[g].n = L->n[g];
                    r.groups[g].selected = x[g];
                    r.groups[g].rate = (double)x[g] / (double)L->n[g];
                }
                tg_fairness_test(&r, 30, alpha, 1000, (uint64_t)sim + 1);
                new5 += tg_fairness_gate(&r, limit);
                new0 += tg_fairness_gate(&r, 0);
                if (sim < old_sims)
                    old5 += old_gate_closes(L->n, x, L->k, limit, 30, 1000, 1) == 1;
            }
            printf("%-16s %4.0f%% | %9.3f  %9.3f  | %9.3f\n", L->name, gaps[gi] * 100,
                   (double)old5 / old_sims, (double)new5 / sims, (double)new0 / sims);
            fflush(stdout);
        }
    }
    return 0;
}
