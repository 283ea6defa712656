/*
 * admit_conversation.c - admit's conversation: which conversation of the
 * customer this message continues, or a new one.
 *
 * Conversations are keyed by the customer (the request's `user`, else the
 * configured customer header), so a conversation follows the customer
 * across devices and channels; after the idle timeout a new one starts.
 */
#include "pipeline/admit.h"

#include <string.h>

int tg_admit_conversation(struct tg_turn *t)
{
    struct tg_pipeline *p = t->p;
    const char *customer = tg_json_str(t->admit.request, "user", NULL);
    if (!customer || !customer[0])
        customer = t->customer_hint;
    memset(&t->conv, 0, sizeof(t->conv));
    if (customer && customer[0]) {
        tg_strlcpy(t->conv.customer_id, customer, sizeof(t->conv.customer_id));
        struct tg_conversation c, sc;
        /* What this process recorded last wins over the store, which may not
         * have committed it yet (and costs no read).  On a store other nodes
         * write too, the customer's last message may have gone to one of
         * them: the later of the two wins. */
        const struct tg_conversation *mem = tg_pipeline_recent(p, t->conv.customer_id);
        bool found = mem != NULL;
        if (mem)
            c = *mem;
        /* the store finds the customer by the pseudonym it keeps and hands that
         * back: the turn goes on with the id as the channel sent it */
        if ((!mem || tg_store_shared(p->store)) &&
            tg_store_conversation_latest(p->store, t->conv.customer_id, &sc) == TG_OK &&
            (!found || sc.updated_ms > c.updated_ms ||
             (sc.updated_ms == c.updated_ms && sc.turns > c.turns))) {
            c = sc;
            found = true;
        }
        if (found && t->run.created_ms - c.updated_ms <= p->cfg->idle_timeout_ms) {
            t->conv = c;
            tg_strlcpy(t->conv.customer_id, customer, sizeof(t->conv.customer_id));
            return TG_OK;
        }
    }
    t->admit.new_conversation = true;
    t->conv.created_ms = t->run.created_ms;
    return tg_id_new("conv", t->conv.id);
}
