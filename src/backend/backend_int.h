/*
 * backend_int.h - what a backend kind implements.  Private to src/backend.
 */
#ifndef TG_BACKEND_INT_H
#define TG_BACKEND_INT_H

#include "backend/backend.h"

struct tg_backend_ops {
    const char *type;
    /* create and destroy may be NULL for a backend that keeps no state. */
    int (*create)(struct tg_backend *b, const struct tg_backend_env *env, char *err, size_t errlen);
    void (*destroy)(struct tg_backend *b);
    int (*generate)(struct tg_backend *b, const struct tg_backend_request *rq, tg_backend_cb cb,
                    void *arg, struct tg_backend_call **call);
    void (*cancel)(struct tg_backend_call *call);
};

struct tg_backend {
    const struct tg_backend_ops *ops;
    const struct tg_backend_conf *conf;
    void *impl;
};

/* Every call handle starts with its backend so cancel can dispatch. */
struct tg_backend_call_head {
    struct tg_backend *backend;
};

extern const struct tg_backend_ops tg_backend_openai_ops;
extern const struct tg_backend_ops tg_backend_script_ops;
extern const struct tg_backend_ops tg_backend_builtin_ops;

#endif
