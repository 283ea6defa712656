/*
 * turn.c - one turn's life outside the stages: made and freed, failed with
 * an OpenAI error, summarised for the audit log and the API, its traffic
 * class, and the customer-facing texts in the customer's language.  See
 * pipeline.h and turn.h.
 */
#include "pipeline/pipeline.h"
#include "backend/embed.h"

#include "core/jw.h"
#include "ladder/ladder.h"
#include "text/lang.h"
#include "text/text.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

struct tg_turn *tg_turn_new(struct tg_pipeline *p)
{
    struct tg_turn *t = tg_calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    t->p = p;
    t->a = &p->main;
    tg_arena_init(&t->arena, 8192);
    t->record.audit_index = -1;
    t->confidence = -1;
    t->channel = "api";
    tg_buf_init(&t->reply.body, TG_BUF_UNLIMITED);
    tg_buf_init(&t->generate.partial, TG_BUF_UNLIMITED);
    tg_buf_init(&t->generate.released, TG_BUF_UNLIMITED);
    return t;
}

void tg_turn_free(struct tg_turn *t)
{
    if (!t)
        return;
    tg_dispatch_cancel(t->generate.dispatch);
    tg_embed_cancel(t->understand.embed_call);
    tg_pipeline_commit_cancel(t->p, &t->record.commit);
    json_decref(t->generate.ladder_events);
    json_decref(t->tool_calls);
    json_decref(t->logprobs);
    json_decref(t->admit.variants);
    json_decref(t->admit.sensitive);
    json_decref(t->admit.request);
    json_decref(t->generate.history);
    json_decref(t->understand.entities);
    json_decref(t->understand.intent_explain);
    json_decref(t->check.rules.prefixes);
    json_decref(t->check.rules.suffixes);
    if (t->understand.ents) {
        tg_entities_free(t->understand.ents);
        tg_free(t->understand.ents);
    }
    json_decref(t->retrieve.citations);
    json_decref(t->check.policy_hits);
    json_decref(t->tags);
    json_decref(t->check.attestations);
    tg_buf_free(&t->reply.body);
    tg_buf_free(&t->generate.partial);
    tg_buf_free(&t->generate.released);
    tg_arena_free(&t->arena);
    tg_free(t);
}

void tg_turn_fail(struct tg_turn *t, int err, int status, const char *code, const char *param,
                  const char *fmt, ...)
{
    va_list ap;
    t->err = err;
    t->http_status = status;
    t->err_code = code;
    t->err_param = param;
    va_start(ap, fmt);
    vsnprintf(t->errmsg, sizeof(t->errmsg), fmt, ap);
    va_end(ap);
}

static void list(struct tg_jw *w, const char *key, const json_t *v)
{
    tg_jw_key(w, key);
    if (v)
        tg_jw_json(w, v);
    else {
        tg_jw_arr(w);
        tg_jw_end(w);
    }
}

void tg_turn_write_summary(const struct tg_turn *t, struct tg_jw *w)
{
    tg_jw_obj(w);
    tg_jw_kstr(w, "turn_id", t->admit.id);
    tg_jw_kstr(w, "conversation_id", t->conv.id);
    tg_jw_kstr(w, "decision", tg_decision_name(t->decision));
    tg_jw_key(w, "intent");
    tg_jw_obj(w);
    tg_jw_kstr(w, "name", t->understand.intent ? t->understand.intent : "unclassified");
    tg_jw_key(w, "confidence");
    tg_jw_real(w, t->understand.intent_confidence);
    tg_jw_end(w);
    tg_jw_key(w, "confidence");
    if (t->confidence >= 0)
        tg_jw_real(w, t->confidence);
    else
        tg_jw_null(w);
    /* What the confidence was computed from, so it can be checked. */
    tg_jw_key(w, "signals");
    tg_jw_obj(w);
    tg_jw_key(w, "top_score");
    tg_jw_real(w, t->retrieve.n_evidence ? t->retrieve.evidence[0].score : 0.0);
    tg_jw_key(w, "lead");
    tg_jw_real(w, t->retrieve.retrieval_lead);
    tg_jw_key(w, "coverage");
    tg_jw_real(w, t->retrieve.query_coverage);
    tg_jw_key(w, "intent_probability");
    if (t->a->intents)
        tg_jw_real(w, t->understand.intent_confidence);
    else
        tg_jw_null(w);
    tg_jw_end(w);
    list(w, "citations", t->retrieve.citations);
    list(w, "policy_hits", t->check.policy_hits);
    list(w, "tags", t->tags);
    list(w, "attestations", t->check.attestations);
    /* texts the policies put around the answer (disclaimers), so a channel
     * can show them apart from it */
    tg_jw_key(w, "disclaimers");
    tg_jw_arr(w);
    const json_t *sides[2] = {t->check.rules.prefixes, t->check.rules.suffixes};
    for (int k = 0; k < 2 && t->decision == TG_DECISION_DELIVER; k++) {
        size_t i;
        json_t *v;
        json_array_foreach(sides[k], i, v)
        {
            if (json_is_string(v))
                tg_jw_str(w, json_string_value(v));
        }
    }
    tg_jw_end(w);
    tg_jw_kstr(w, "backend", t->generate.backend ? tg_backend_name(t->generate.backend) : NULL);
    /* degradations as the customer feels them: steps down the ladder, and
     * a reply that is a promise rather than an answer */
    tg_jw_kint(w, "degradations", t->generate.degradations + t->promise);
    tg_jw_kint(w, "degraded_in_a_row", t->gate.degraded_run);
    tg_jw_kstr(w, "rung", t->rung);
    if (t->admit.variants) {
        tg_jw_key(w, "experiments");
        tg_jw_json(w, t->admit.variants);
    }
    if (t->a != &t->p->main) {
        /* another release than the one in force answered (an experiment's variant) */
        tg_jw_key(w, "release");
        tg_jw_obj(w);
        tg_jw_kstr(w, "name", t->a->release[0] ? t->a->release : NULL);
        tg_jw_kstr(w, "hash", t->a->hash);
        tg_jw_end(w);
    }
    if (json_array_size(t->generate.ladder_events)) {
        tg_jw_key(w, "ladder");
        tg_jw_json(w, t->generate.ladder_events);
    }
    tg_jw_kstr(w, "review_id", t->review_id[0] ? t->review_id : NULL);
    if (t->workflow.run) {
        tg_jw_key(w, "workflow");
        tg_jw_obj(w);
        tg_jw_kstr(w, "name", t->workflow.name);
        tg_jw_kstr(w, "run", t->workflow.run);
        tg_jw_kstr(w, "state", t->workflow.waiting ? "waiting" : "done");
        tg_jw_end(w);
    }
    /* Why: the tokens that drove the intent (exact linear contributions). */
    tg_jw_key(w, "explanation");
    tg_jw_obj(w);
    tg_jw_key(w, "intent_tokens");
    if (t->understand.intent_explain)
        tg_jw_json(w, t->understand.intent_explain);
    else {
        tg_jw_arr(w);
        tg_jw_end(w);
    }
    tg_jw_kint(w, "ungrounded_claims", (int64_t)t->check.ungrounded);
    tg_jw_end(w);
    tg_jw_key(w, "audit_index");
    if (t->record.audit_index >= 0)
        tg_jw_int(w, t->record.audit_index);
    else
        tg_jw_null(w);
    tg_jw_end(w);
}

json_t *tg_turn_summary(const struct tg_turn *t, bool with_answer)
{
    struct tg_buf b;
    struct tg_jw w;
    json_t *o = NULL;
    tg_buf_init(&b, TG_BUF_UNLIMITED);
    tg_jw_init(&w, &b);
    tg_turn_write_summary(t, &w);
    if (tg_jw_finish(&w) == TG_OK)
        o = json_loadb(b.data, b.len, 0, NULL);
    tg_buf_free(&b);
    int rc = o ? TG_OK : TG_E_NOMEM;
    if (!rc && with_answer) {
        rc = tg_json_set(o, "answer",
                         t->reply.answer && !t->err
                             ? json_stringn(t->reply.answer, t->reply.answer_len)
                             : json_null());
        if (!rc)
            rc = tg_json_set(o, "entities",
                             t->understand.entities ? json_incref(t->understand.entities)
                                                    : json_pack("{s:[], s:[]}", "money", "pii"));
        /* a message cut at its buffer's end may not be whole UTF-8: then the
         * summary goes without it, as before */
        if (!rc && t->err && tg_utf8_valid(t->errmsg, strlen(t->errmsg)))
            rc = tg_json_set(o, "error", json_string(t->errmsg));
    }
    if (rc) {
        json_decref(o);
        o = NULL;
    }
    return o;
}

int tg_turn_class(const struct tg_turn *t)
{
    const json_t *meta = json_object_get(t->admit.request, "metadata");
    if (t->admit.class_from_metadata && !strcmp(tg_json_str(meta, "tier", ""), "vip"))
        return TG_CLASS_VIP;
    if (t->admit.class_from_metadata && !strcmp(tg_json_str(meta, "class", ""), "internal"))
        return TG_CLASS_INTERNAL;
    return t->admit.klass;
}

const char *tg_turn_text(struct tg_turn *t, const char *text)
{
    if (!text || t->check.lang == TG_LANG_ZH_HANS)
        return text;
    const char *v = tg_config_translation(t->a->cfg, tg_lang_tag(t->check.lang), text);
    if (v && v[0])
        return v;
    if (t->check.lang != TG_LANG_ZH_HANT || !t->p->s2t)
        return text;
    struct tg_buf b;
    tg_buf_init(&b, TG_BUF_UNLIMITED);
    const char *out = text;
    if (tg_s2t_convert(t->p->s2t, text, strlen(text), &b) == TG_OK && b.data)
        out = tg_arena_strndup(&t->arena, b.data, b.len);
    tg_buf_free(&b);
    return out ? out : text;
}
