/*
 * stream_through.c - releasing an answer sentence by sentence while the
 * model writes it (ladder.stream_through).  See pipeline.h.
 *
 * Each time the draft so far ends a sentence, the output rules run on it
 * (the post stage, with the quantities checked against the evidence as the
 * postcheck does).  The new sentence goes out, personal data masked, when
 * no rule holds, refuses or scripts the answer and no disclaimer would have
 * to stand in front of text already sent; the disclaimers due at the first
 * release go out first.  Otherwise release stops for good and the turn is
 * decided on the whole draft by the usual stages; the reply stage then
 * sends the rest, or the holding reply, after what was released.
 */
#include "pipeline/pipeline.h"

#include "backend/backend.h"
#include "ladder/ladder.h"
#include "pipeline/rules.h"
#include "policy/policy.h"

#include <string.h>

bool tg_stream_through_applies(const struct tg_turn *t)
{
    return t->release_cb && t->admit.stream && t->a->cfg->ladder.stream_through &&
           !t->check.rules.review && !t->check.rules.human_decision && !t->check.rules.refuse &&
           !t->check.rules.script;
}

/* Bytes up to and including the last sentence end in s[0..len), 0 when none. */
static size_t last_sentence_end(const char *s, size_t len)
{
    static const char *const ends[] = {"。", "！", "？", "；", "\n"};
    size_t best = 0;
    for (size_t i = 0; i < len; i++) {
        for (size_t k = 0; k < TG_ARRAY_LEN(ends); k++) {
            size_t n = strlen(ends[k]);
            if (i + n <= len && memcmp(s + i, ends[k], n) == 0)
                best = i + n;
        }
        /* ". ", "! ", "? " end an English sentence */
        if (i + 1 < len && (s[i] == '.' || s[i] == '!' || s[i] == '?') && s[i + 1] == ' ')
            best = i + 2;
    }
    return best;
}

/*
 * May the draft so far go out?  Fills prefixes (to send first) when release
 * has not begun.  False when a rule holds, refuses or scripts it, or asks
 * for a disclaimer in front of text already sent.
 */
static bool passes(struct tg_turn *t, const char *draft, size_t len, struct tg_buf *prefixes)
{
    if (!t->a->policy)
        return true;
    const char *ev[33];
    size_t nev = 0, bad = 0;
    ev[nev++] = t->admit.user_text;
    for (size_t i = 0; i < t->retrieve.n_evidence && nev < TG_ARRAY_LEN(ev); i++)
        ev[nev++] = t->retrieve.evidence[i].text;
    if (t->retrieve.n_evidence && tg_grounding_check(draft, len, ev, nev, NULL, 0, &bad))
        return false;
    /* the facts of the whole turn, with this partial draft as its draft (nothing
     * else runs on the turn meanwhile: the generate stage is waiting) */
    struct tg_policy_facts f;
    struct tg_policy_hits hits;
    tg_policy_hits_init(&hits);
    char *saved = t->draft;
    size_t saved_len = t->draft_len, saved_bad = t->check.ungrounded;
    t->draft = (char *)draft;
    t->draft_len = len;
    t->check.ungrounded = bad;
    tg_rules_facts(t, &f);
    t->draft = saved;
    t->draft_len = saved_len;
    t->check.ungrounded = saved_bad;
    bool ok = tg_policy_eval(t->a->policy, TG_POLICY_POST, &f, &hits) == TG_OK;
    for (size_t i = 0; ok && i < hits.n; i++) {
        for (size_t a = 0; ok && a < hits.v[i].n_actions; a++) {
            const struct tg_policy_action *act = &hits.v[i].actions[a];
            switch (act->kind) {
            case TG_ACT_REVIEW:
            case TG_ACT_HUMAN_DECISION:
            case TG_ACT_REFUSE:
            case TG_ACT_SCRIPT:
                ok = false;
                break;
            case TG_ACT_PREFIX:
                if (t->generate.released.len)
                    ok = strncmp(t->generate.released.data, act->text, strlen(act->text)) == 0;
                else
                    tg_buf_puts(prefixes, act->text);
                break;
            default:
                break;
            }
        }
    }
    tg_policy_hits_free(&hits);
    return ok;
}

static void release(struct tg_turn *t, const char *text, size_t len)
{
    if (!len)
        return;
    t->generate.committed = true;
    tg_buf_append(&t->generate.released, text, len);
    t->release_cb(t, text, len, t->release_arg);
}

void tg_stream_through_delta(void *arg, const char *text, size_t len)
{
    struct tg_turn *t = arg;
    if (t->generate.release_stopped || tg_buf_append(&t->generate.partial, text, len))
        return;
    size_t end = last_sentence_end(t->generate.partial.data, t->generate.partial.len);
    if (end <= t->generate.partial_done)
        return;
    struct tg_buf prefixes, masked;
    tg_buf_init(&prefixes, TG_BUF_UNLIMITED);
    tg_buf_init(&masked, TG_BUF_UNLIMITED);
    if (!passes(t, t->generate.partial.data, end, &prefixes)) {
        t->generate.release_stopped = true;
    } else if (tg_pii_mask(t->generate.partial.data + t->generate.partial_done,
                           end - t->generate.partial_done, t->a->cfg->policy_pattern,
                           &masked) == TG_OK) {
        if (!t->generate.released.len)
            release(t, prefixes.data, prefixes.len);
        release(t, masked.data, masked.len);
        t->generate.partial_done = end;
    } else {
        t->generate.release_stopped = true;
    }
    tg_buf_free(&prefixes);
    tg_buf_free(&masked);
}
