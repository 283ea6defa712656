/*
 * admit_auth.c - admit's first concern, authentication: which configured
 * API key the request presents, and the traffic class that key gives.
 *
 * Keys are compared as SHA-256 hashes in constant time against every
 * configured key (tg_config_api_key), so neither the key nor its position
 * leaks through timing.  An in-process caller (trusted) needs no key.
 */
#include "pipeline/admit.h"

bool tg_admit_auth(struct tg_turn *t)
{
    t->admit.klass = TG_CLASS_CUSTOMER;
    if (t->trusted) {
        t->admit.key_name = "local";
        t->admit.class_from_metadata = true;
        return true;
    }
    const struct tg_api_key *k = tg_config_api_key(t->p->cfg, t->api_key);
    if (k) {
        t->admit.key_name = k->name;
        t->admit.klass = (int)k->klass;
        t->admit.class_from_metadata = k->class_from_metadata;
    }
    if (!k)
        tg_turn_fail(t, TG_E_AUTH, 401, "invalid_api_key", NULL,
                     t->api_key ? "Incorrect API key provided."
                                : "Missing API key: send it as 'Authorization: Bearer <key>'.");
    return k != NULL;
}
