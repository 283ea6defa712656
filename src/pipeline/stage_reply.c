/*
 * stage_reply.c - the answer in the OpenAI wire format, with the turn's
 * own `trustgate` object beside the standard fields.
 *
 * The reply stage builds one JSON object: a chat.completion on success, an
 * OpenAI error object otherwise.  The HTTP layer sends it as is, or frames
 * it as chat.completion.chunk events when the client asked to stream; the
 * CLI prints it.
 */
#include "pipeline/pipeline.h"

#include <string.h>

/* What the customer is told for a decision other than deliver. */
static const char *holding_text(enum tg_decision d)
{
    switch (d) {
    case TG_DECISION_REVIEW:
        return "您的问题需要人工复核，我们会尽快回复您。";
    case TG_DECISION_HUMAN_DECISION:
    case TG_DECISION_HANDOFF:
        return "您的问题将由人工客服为您处理，请稍候。";
    case TG_DECISION_REFUSE:
        return "抱歉，这个问题我无法回答。";
    default:
        return "";
    }
}

static json_t *completion(const struct tg_turn *t, json_t *tg)
{
    const char *text = t->decision == TG_DECISION_DELIVER ? t->draft : holding_text(t->decision);
    size_t len = t->decision == TG_DECISION_DELIVER ? t->draft_len : strlen(text);
    char id[TG_ID_MAX + 16];
    snprintf(id, sizeof(id), "chatcmpl-%s", t->id + 5); /* the turn id without "turn_" */
    return json_pack("{s:s, s:s, s:I, s:s, s:[{s:i, s:{s:s, s:s%}, s:s}], s:{s:I, s:I, s:I}, "
                     "s:o}",
                     "id", id, "object", "chat.completion", "created",
                     (json_int_t)(t->created_ms / 1000), "model", t->model, "choices", "index", 0,
                     "message", "role", "assistant", "content", text, len, "finish_reason",
                     t->finish_reason[0] && t->decision == TG_DECISION_DELIVER ? t->finish_reason
                                                                               : "stop",
                     "usage", "prompt_tokens", (json_int_t)t->prompt_tokens, "completion_tokens",
                     (json_int_t)t->completion_tokens, "total_tokens",
                     (json_int_t)(t->prompt_tokens + t->completion_tokens), "trustgate", tg);
}

static json_t *error_object(const struct tg_turn *t, json_t *tg)
{
    json_t *e = json_pack("{s:{s:s, s:s, s:s?, s:s?}}", "error", "message", t->errmsg, "type",
                          tg_err_type(t->err), "param", t->err_param, "code", t->err_code);
    if (e && tg)
        json_object_set_new(e, "trustgate", tg);
    else
        json_decref(tg);
    return e;
}

enum tg_stage_rc tg_stage_reply(struct tg_turn *t)
{
    /* A request refused at the door has no turn to describe. */
    json_t *tg = t->id[0] ? tg_turn_summary(t, false) : NULL;
    if (t->err) {
        if (!t->http_status)
            t->http_status = tg_err_status(t->err);
        json_object_set_new(tg, "decision", json_string("error"));
        t->response = error_object(t, tg);
    } else {
        t->http_status = 200;
        t->response = completion(t, tg);
    }
    return TG_NEXT;
}
