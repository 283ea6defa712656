/*
 * backend.c - backend construction and dispatch through the ops tables.
 */
#include "backend/backend_int.h"

#include <stdio.h>
#include <string.h>

int tg_backend_create(const struct tg_backend_conf *conf, const struct tg_backend_env *env,
                      struct tg_backend **out, char *err, size_t errlen)
{
    struct tg_backend *b = tg_calloc(1, sizeof(*b));
    if (!b) {
        snprintf(err, errlen, "out of memory");
        return TG_E_NOMEM;
    }
    b->conf = conf;
    switch (conf->type) {
    case TG_BACKEND_OPENAI:
        b->ops = &tg_backend_openai_ops;
        break;
    case TG_BACKEND_SCRIPT:
        b->ops = &tg_backend_script_ops;
        break;
    case TG_BACKEND_BUILTIN:
        b->ops = &tg_backend_builtin_ops;
        break;
    }
    int rc = b->ops->create ? b->ops->create(b, env, err, errlen) : TG_OK;
    if (rc) {
        tg_free(b);
        return rc;
    }
    *out = b;
    return TG_OK;
}

void tg_backend_free(struct tg_backend *b)
{
    if (!b)
        return;
    if (b->ops->destroy)
        b->ops->destroy(b);
    tg_free(b);
}

const char *tg_backend_name(const struct tg_backend *b)
{
    return b->conf->name;
}

const char *tg_backend_type(const struct tg_backend *b)
{
    return b->ops->type;
}

int tg_backend_generate(struct tg_backend *b, const struct tg_backend_request *rq, tg_backend_cb cb,
                        void *arg, struct tg_backend_call **call)
{
    if (call)
        *call = NULL;
    return b->ops->generate(b, rq, cb, arg, call);
}

void tg_backend_cancel(struct tg_backend_call *call)
{
    if (!call)
        return;
    struct tg_backend_call_head *h = (struct tg_backend_call_head *)call;
    h->backend->ops->cancel(call);
}

void tg_backend_result_init(struct tg_backend_result *res)
{
    memset(res, 0, sizeof(*res));
    res->retry_after_ms = -1;
    res->confidence = -1;
    res->cited = -1;
}

void tg_backend_result_fail(struct tg_backend_result *res, int err, const char *kind,
                            const char *fmt, ...)
{
    va_list ap;
    res->err = err;
    tg_strlcpy(res->kind, kind, sizeof(res->kind));
    va_start(ap, fmt);
    vsnprintf(res->message, sizeof(res->message), fmt, ap);
    va_end(ap);
}
