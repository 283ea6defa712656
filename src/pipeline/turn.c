/*
 * turn.c - one turn's life outside the stages: made and freed, failed with
 * an OpenAI error, summarised for the audit log and the API, its traffic
 * class, and the customer-facing texts in the customer's language.  See
 * pipeline.h and turn.h.
 */
#include "pipeline/pipeline.h"

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
    t->audit_index = -1;
    t->confidence = -1;
    t->channel = "api";
    tg_buf_init(&t->reply, TG_BUF_UNLIMITED);
    tg_buf_init(&t->partial, TG_BUF_UNLIMITED);
    tg_buf_init(&t->released, TG_BUF_UNLIMITED);
    return t;
}

void tg_turn_free(struct tg_turn *t)
{
    if (!t)
        return;
    tg_dispatch_cancel(t->dispatch);
    tg_pipeline_commit_cancel(t->p, &t->commit);
    json_decref(t->ladder_events);
    json_decref(t->tool_calls);
    json_decref(t->logprobs);
    json_decref(t->variants);
    json_decref(t->sensitive);
    json_decref(t->request);
    json_decref(t->history);
    json_decref(t->entities);
    json_decref(t->intent_explain);
    json_decref(t->rules.prefixes);
    json_decref(t->rules.suffixes);
    if (t->ents) {
        tg_entities_free(t->ents);
        tg_free(t->ents);
    }
    json_decref(t->citations);
    json_decref(t->policy_hits);
    json_decref(t->tags);
    json_decref(t->attestations);
    tg_buf_free(&t->reply);
    tg_buf_free(&t->partial);
    tg_buf_free(&t->released);
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
    tg_jw_kstr(w, "turn_id", t->id);
    tg_jw_kstr(w, "conversation_id", t->conv.id);
    tg_jw_kstr(w, "decision", tg_decision_name(t->decision));
    tg_jw_key(w, "intent");
    tg_jw_obj(w);
    tg_jw_kstr(w, "name", t->intent ? t->intent : "unclassified");
    tg_jw_key(w, "confidence");
    tg_jw_real(w, t->intent_confidence);
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
    tg_jw_real(w, t->n_evidence ? t->evidence[0].score : 0.0);
    tg_jw_key(w, "lead");
    tg_jw_real(w, t->retrieval_lead);
    tg_jw_key(w, "coverage");
    tg_jw_real(w, t->query_coverage);
    tg_jw_key(w, "intent_probability");
    if (t->a->intents)
        tg_jw_real(w, t->intent_confidence);
    else
        tg_jw_null(w);
    tg_jw_end(w);
    list(w, "citations", t->citations);
    list(w, "policy_hits", t->policy_hits);
    list(w, "tags", t->tags);
    list(w, "attestations", t->attestations);
    /* texts the policies put around the answer (disclaimers), so a channel
     * can show them apart from it */
    tg_jw_key(w, "disclaimers");
    tg_jw_arr(w);
    const json_t *sides[2] = {t->rules.prefixes, t->rules.suffixes};
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
    tg_jw_kstr(w, "backend", t->backend ? tg_backend_name(t->backend) : NULL);
    /* degradations as the customer feels them: steps down the ladder, and
     * a reply that is a promise rather than an answer */
    tg_jw_kint(w, "degradations", t->degradations + t->promise);
    tg_jw_kint(w, "degraded_in_a_row", t->degraded_run);
    tg_jw_kstr(w, "rung", t->rung);
    if (t->variants) {
        tg_jw_key(w, "experiments");
        tg_jw_json(w, t->variants);
    }
    if (t->a != &t->p->main) {
        /* another release than the one in force answered (an experiment's variant) */
        tg_jw_key(w, "release");
        tg_jw_obj(w);
        tg_jw_kstr(w, "name", t->a->release[0] ? t->a->release : NULL);
        tg_jw_kstr(w, "hash", t->a->hash);
        tg_jw_end(w);
    }
    if (json_array_size(t->ladder_events)) {
        tg_jw_key(w, "ladder");
        tg_jw_json(w, t->ladder_events);
    }
    tg_jw_kstr(w, "review_id", t->review_id[0] ? t->review_id : NULL);
    /* Why: the tokens that drove the intent (exact linear contributions). */
    tg_jw_key(w, "explanation");
    tg_jw_obj(w);
    tg_jw_key(w, "intent_tokens");
    if (t->intent_explain)
        tg_jw_json(w, t->intent_explain);
    else {
        tg_jw_arr(w);
        tg_jw_end(w);
    }
    tg_jw_kint(w, "ungrounded_claims", (int64_t)t->ungrounded);
    tg_jw_end(w);
    tg_jw_key(w, "audit_index");
    if (t->audit_index >= 0)
        tg_jw_int(w, t->audit_index);
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
    if (o && with_answer) {
        json_object_set_new(o, "answer",
                            t->answer && !t->err ? json_stringn(t->answer, t->answer_len)
                                                 : json_null());
        json_object_set_new(o, "entities",
                            t->entities ? json_incref(t->entities)
                                        : json_pack("{s:[], s:[]}", "money", "pii"));
        if (t->err)
            json_object_set_new(o, "error", json_string(t->errmsg));
    }
    return o;
}

int tg_turn_class(const struct tg_turn *t)
{
    const json_t *meta = json_object_get(t->request, "metadata");
    if (t->class_from_metadata && !strcmp(tg_json_str(meta, "tier", ""), "vip"))
        return TG_CLASS_VIP;
    if (t->class_from_metadata && !strcmp(tg_json_str(meta, "class", ""), "internal"))
        return TG_CLASS_INTERNAL;
    return t->klass;
}

const char *tg_turn_text(struct tg_turn *t, const char *text)
{
    if (!text || t->lang == TG_LANG_ZH_HANS)
        return text;
    const char *v = tg_config_translation(t->a->cfg, tg_lang_tag(t->lang), text);
    if (v && v[0])
        return v;
    if (t->lang != TG_LANG_ZH_HANT || !t->p->s2t)
        return text;
    struct tg_buf b;
    tg_buf_init(&b, TG_BUF_UNLIMITED);
    const char *out = text;
    if (tg_s2t_convert(t->p->s2t, text, strlen(text), &b) == TG_OK && b.data)
        out = tg_arena_strndup(&t->arena, b.data, b.len);
    tg_buf_free(&b);
    return out ? out : text;
}
