/*
 * assign.c - which variant of an experiment a customer sees: a
 * deterministic hash of the experiment's salt and the customer id, so a
 * customer stays in one variant across turns, devices and restarts, and
 * different experiments (different salts) split customers independently.
 * See stats.h (tg_experiment_assign).
 */
#include "govern/govern.h"

#include "config/config.h"

#include <stdio.h>
#include <string.h>

double tg_experiment_unit(const char *salt, const char *customer)
{
    const void *parts[3] = {salt, ":", customer};
    const size_t lens[3] = {strlen(salt), 1, strlen(customer)};
    uint8_t h[TG_SHA256_LEN];
    if (!tg_sha256_parts(parts, lens, 3, h))
        return 0;
    uint64_t x = 0;
    for (int i = 0; i < 8; i++)
        x = x << 8 | h[i];
    return (double)(x >> 11) / 9007199254740992.0; /* 53 bits: [0, 1) */
}

const char *tg_experiment_assign(const struct tg_experiment_conf *exp, const char *customer)
{
    if (!customer || !customer[0])
        return NULL; /* no customer, no stable assignment: not in the experiment */
    double u = tg_experiment_unit(exp->salt ? exp->salt : exp->name, customer);
    if (u < exp->holdout)
        return "holdout";
    /* the rest of [0, 1) is split by the variants' shares */
    double total = 0, at = exp->holdout;
    for (size_t i = 0; i < exp->n_variants; i++)
        total += exp->variants[i].share;
    if (total <= 0)
        return NULL;
    for (size_t i = 0; i < exp->n_variants; i++) {
        at += (1 - exp->holdout) * exp->variants[i].share / total;
        if (u < at)
            return exp->variants[i].name;
    }
    return exp->variants[exp->n_variants - 1].name;
}
