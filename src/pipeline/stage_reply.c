/*
 * stage_reply.c - the answer in the OpenAI wire format, with the turn's
 * own `trustgate` object beside the standard fields.
 *
 * The reply stage writes the whole HTTP body into t->reply.body: a
 * chat.completion object, the same answer as chat.completion.chunk events
 * when the client asked to stream, or an OpenAI error object.  The HTTP
 * layer sends it as it is; the CLI reads the turn.
 */
#include "pipeline/pipeline.h"

#include "backend/backend.h"
#include "core/jw.h"

#include <stdio.h>
#include <string.h>

/* {"error": {message, type, param?, code}: the turn's error in the OpenAI
 * shape, left open for what follows it. */
static void error_object(struct tg_jw *w, const struct tg_turn *t, bool param)
{
    tg_jw_obj(w);
    tg_jw_key(w, "error");
    tg_jw_obj(w);
    tg_jw_kstr(w, "message", t->errmsg);
    tg_jw_kstr(w, "type", tg_err_type(t->err));
    if (param)
        tg_jw_kstr(w, "param", t->err_param);
    tg_jw_kstr(w, "code", t->err_code);
    tg_jw_end(w);
}

static int write_error(struct tg_turn *t, const struct tg_buf *summary)
{
    struct tg_jw w;
    tg_jw_init(&w, &t->reply.body);
    error_object(&w, t, true);
    if (summary->len) {
        tg_jw_key(&w, "trustgate");
        tg_jw_raw(&w, summary->data, summary->len);
    }
    tg_jw_end(&w);
    return tg_jw_finish(&w);
}

/* After a stream-through release: what the client has not had yet, the
 * final chunk with the turn's summary, and [DONE] (or an error event). */
static int write_rest(struct tg_turn *t, const struct tg_buf *summary)
{
    char id[TG_ID_MAX + 16];
    snprintf(id, sizeof(id), "chatcmpl-%s", t->admit.id + 5);
    bool deliver = !t->err && t->decision == TG_DECISION_DELIVER;
    const char *answer = deliver ? t->draft : t->err ? NULL : tg_turn_holding(t);
    size_t alen = answer ? strlen(answer) : 0;
    t->reply.answer = answer ? answer : "";
    t->reply.answer_len = alen;
    t->reply.type = "text/event-stream";
    t->http_status = 200;
    struct tg_completion c = {
        .id = id,
        .created = t->run.created_ms / 1000,
        .model = t->generate.upstream_model[0] ? t->generate.upstream_model : t->admit.model,
        .finish_reason = t->err                                    ? "error"
                         : deliver && t->generate.finish_reason[0] ? t->generate.finish_reason
                                                                   : "stop",
        .tool_calls = deliver ? t->tool_calls : NULL,
        .prompt_tokens = t->generate.prompt_tokens,
        .completion_tokens = t->generate.completion_tokens,
        .extra_key = "trustgate",
        .extra = summary->data,
        .extra_len = summary->len,
    };
    const char *sent = t->generate.released.data ? t->generate.released.data : "";
    int rc = TG_OK;
    if (deliver && alen >= t->generate.released.len &&
        memcmp(answer, sent, t->generate.released.len) == 0) {
        rc = tg_wire_sse_part(&c, TG_SSE_TEXT, answer + t->generate.released.len,
                              alen - t->generate.released.len, &t->reply.body);
    } else if (answer) {
        /* the rest was held: a line break, then what the customer is told instead */
        rc = tg_wire_sse_part(&c, TG_SSE_TEXT, "\n\n", 2, &t->reply.body);
        if (!rc)
            rc = tg_wire_sse_part(&c, TG_SSE_TEXT, answer, alen, &t->reply.body);
    } else {
        struct tg_jw w;
        rc = tg_buf_puts(&t->reply.body, "data: ");
        tg_jw_init(&w, &t->reply.body);
        error_object(&w, t, false);
        tg_jw_end(&w);
        if (!rc)
            rc = tg_jw_finish(&w);
        if (!rc)
            rc = tg_buf_puts(&t->reply.body, "\n\n");
    }
    if (!rc)
        rc = tg_wire_sse_part(&c, TG_SSE_CLOSE, NULL, 0, &t->reply.body);
    return rc;
}

enum tg_stage_rc tg_stage_reply(struct tg_turn *t)
{
    struct tg_buf summary;
    struct tg_jw w;
    int rc = TG_OK;
    tg_buf_init(&summary, TG_BUF_UNLIMITED);
    /* A request refused at the door has no turn to describe. */
    if (t->admit.id[0]) {
        tg_jw_init(&w, &summary);
        tg_turn_write_summary(t, &w);
        rc = tg_jw_finish(&w);
    }
    tg_buf_reset(&t->reply.body);
    t->reply.type = "application/json";
    if (!rc && t->generate.committed) {
        /* part of the answer is out already (stream-through): the rest, then the end */
        rc = write_rest(t, &summary);
        tg_buf_free(&summary);
        if (rc)
            tg_buf_reset(&t->reply.body);
        return TG_NEXT;
    }
    if (!rc && t->err) {
        if (!t->http_status)
            t->http_status = tg_err_status(t->err);
        rc = write_error(t, &summary);
    } else if (!rc) {
        bool deliver = t->decision == TG_DECISION_DELIVER;
        char id[TG_ID_MAX + 16];
        snprintf(id, sizeof(id), "chatcmpl-%s", t->admit.id + 5); /* the turn id without "turn_" */
        t->reply.answer = deliver ? t->draft
                          : t->decision == TG_DECISION_REFUSE && t->check.rules.refuse_text
                              ? tg_turn_text(t, t->check.rules.refuse_text)
                              : tg_turn_holding(t);
        t->reply.answer_len = deliver ? t->draft_len : strlen(t->reply.answer);
        struct tg_completion c = {
            .id = id,
            .created = t->run.created_ms / 1000,
            /* the model that actually answered, when an upstream did */
            .model = t->generate.upstream_model[0] && t->generate.backend &&
                             strcmp(tg_backend_type(t->generate.backend), "openai") == 0
                         ? t->generate.upstream_model
                         : t->admit.model,
            .content = t->reply.answer,
            .content_len = t->reply.answer_len,
            .finish_reason =
                deliver && t->generate.finish_reason[0] ? t->generate.finish_reason : "stop",
            .tool_calls = deliver ? t->tool_calls : NULL,
            .logprobs = deliver ? t->logprobs : NULL,
            .prompt_tokens = t->generate.prompt_tokens,
            .completion_tokens = t->generate.completion_tokens,
            .extra_key = "trustgate",
            .extra = summary.data,
            .extra_len = summary.len,
        };
        t->http_status = 200;
        if (t->admit.stream) {
            t->reply.type = "text/event-stream";
            rc = tg_wire_sse(&c, 48, &t->reply.body);
        } else {
            rc = tg_wire_completion(&c, &t->reply.body);
        }
    }
    if (rc) {
        /* Only allocation can fail here; say so in the plainest form. */
        tg_buf_reset(&t->reply.body);
        tg_buf_puts(&t->reply.body,
                    "{\"error\":{\"message\":\"out of memory\",\"type\":\"server_error\","
                    "\"param\":null,\"code\":\"internal_error\"}}");
        t->reply.type = "application/json";
        t->http_status = 500;
    }
    tg_buf_free(&summary);
    return TG_NEXT;
}
