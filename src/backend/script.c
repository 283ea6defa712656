/*
 * script.c - the canned-reply backend: answers every request with the
 * configured text, at once.  It is the holding answer of the ladder's
 * script rung.
 */
#include "backend/backend_int.h"

#include <string.h>

static int script_generate(struct tg_backend *b, const struct tg_backend_request *rq,
                           tg_backend_cb cb, void *arg, struct tg_backend_call **call)
{
    (void)rq;
    (void)call;
    struct tg_backend_result res;
    const char *reply = b->conf->reply ? b->conf->reply : "";
    tg_backend_result_init(&res);
    res.len = strlen(reply);
    res.content = tg_strndup(reply, res.len);
    if (!res.content)
        return TG_E_NOMEM;
    res.status = 200;
    tg_strlcpy(res.finish_reason, "stop", sizeof(res.finish_reason));
    tg_strlcpy(res.model, b->conf->name, sizeof(res.model));
    cb(&res, arg);
    tg_free(res.content);
    return TG_OK;
}

static void script_cancel(struct tg_backend_call *call)
{
    (void)call; /* a script call is over before anyone could cancel it */
}

const struct tg_backend_ops tg_backend_script_ops = {
    .type = "script",
    .generate = script_generate,
    .cancel = script_cancel,
};
