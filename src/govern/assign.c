/*
 * assign.c - which variant of an experiment a customer sees: a
 * deterministic hash of the experiment's salt and the customer id, so a
 * customer stays in one variant across turns, devices and restarts, and
 * different experiments (different salts) split customers independently.
 * See stats.h (tg_experiment_assign).
 */
#include "govern/govern.h"

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

const char *tg_experiment_assign(const json_t *exp, const char *customer)
{
    const char *salt = tg_json_str(exp, "salt", tg_json_str(exp, "name", ""));
    if (!customer || !customer[0])
        return NULL; /* no customer, no stable assignment: not in the experiment */
    double u = tg_experiment_unit(salt, customer);
    const json_t *hold = json_object_get(exp, "holdout");
    double holdout = json_is_number(hold) ? json_number_value(hold) : 0;
    if (u < holdout)
        return "holdout";
    /* the rest of [0, 1) is split by the variants' shares */
    double total = 0, at = holdout;
    size_t i;
    const json_t *v;
    json_array_foreach(json_object_get(exp, "variants"), i, v) total +=
        json_number_value(json_object_get(v, "share"));
    if (total <= 0)
        return NULL;
    json_array_foreach(json_object_get(exp, "variants"), i, v)
    {
        at += (1 - holdout) * json_number_value(json_object_get(v, "share")) / total;
        if (u < at)
            return tg_json_str(v, "name", NULL);
    }
    return tg_json_str(json_array_get(json_object_get(exp, "variants"),
                                      json_array_size(json_object_get(exp, "variants")) - 1),
                       "name", NULL);
}
