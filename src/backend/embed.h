/*
 * embed.h - dense vectors from an OpenAI-compatible embeddings server
 * (POST {base_url}/embeddings: vLLM, Hugging Face TEI, Ollama, llama.cpp,
 * cloud APIs), for the knowledge base's dense retrieval.
 *
 * Passages are embedded in batches, synchronously, when the knowledge base
 * is built or changes (tg_embed_kb); a question is embedded asynchronously
 * on the event loop while its turn waits (tg_embed_start).  Every vector
 * handed out has unit length, so a dot product is the cosine.
 *
 * Ownership: struct tg_embedder belongs to its creator and borrows conf's
 * strings and the event base, which must outlive it.  Used from one thread.
 */
#ifndef TG_EMBED_H
#define TG_EMBED_H

#include "core/core.h"

struct event_base;
struct tg_embedder;
struct tg_embed_call;
struct tg_kb;

#define TG_EMBED_MAX_DIM 16384

struct tg_embed_conf {
    const char *base_url;       /* e.g. "http://127.0.0.1:8080/v1" (no trailing slash) */
    const char *model;          /* the model asked for and the vectors' name */
    const char *api_key;        /* sent as "Authorization: Bearer", or NULL */
    const char *query_prefix;   /* put before a question (e5: "query: "), or NULL */
    const char *passage_prefix; /* put before a passage (e5: "passage: "), or NULL */
    size_t dimensions;          /* asked of the server (`dimensions`), 0 for its own */
    size_t batch;               /* passages per request; 0 means 32 */
    int64_t timeout_ms;         /* per request, connection included; 0 means 2000 */
};

/*
 * Create a client; base may be NULL for a client that only embeds
 * synchronously.  TG_E_NOMEM, or TG_E_CONFIG without base_url or model
 * (err says which).
 */
int tg_embedder_create(const struct tg_embed_conf *conf, struct event_base *base,
                       struct tg_embedder **out, char *err, size_t errlen);
/* Free the client; calls still running are cancelled without callbacks.  NULL is a no-op. */
void tg_embedder_free(struct tg_embedder *e);

/*
 * Embed n texts (passage_prefix put before each), blocking, in requests of
 * conf->batch.  On success *out is a tg_malloc'd array of n * *dim floats,
 * row i the unit vector of texts[i].  TG_E_UPSTREAM (transport, status,
 * a malformed or inconsistent answer), TG_E_TIMEOUT or TG_E_NOMEM, with err
 * saying what; *out untouched.
 */
int tg_embed_texts(struct tg_embedder *e, const char *const *texts, size_t n, float **out,
                   size_t *dim, char *err, size_t errlen);

/* One question (query_prefix put before it), blocking: *out is its unit
 * vector of *dim floats (tg_malloc'd).  Errors as tg_embed_texts. */
int tg_embed_query(struct tg_embedder *e, const char *text, float **out, size_t *dim, char *err,
                   size_t errlen);

/*
 * Called once per tg_embed_start: err TG_OK with the question's unit vector
 * (dim floats, valid only during the call), else the error and vec NULL.
 */
typedef void (*tg_embed_cb)(int err, const float *vec, size_t dim, void *arg);

/*
 * Embed one question (query_prefix put before it) on the event loop.  The
 * callback runs later from the loop, never from inside this call.  Returns
 * TG_OK and the call in *call (may be NULL) or an error, and then never
 * calls cb.  Requires a client created with an event base.
 */
int tg_embed_start(struct tg_embedder *e, const char *text, size_t len, tg_embed_cb cb, void *arg,
                   struct tg_embed_call **call);
/* Cancel a call whose callback has not run; it never runs.  NULL is a no-op. */
void tg_embed_cancel(struct tg_embed_call *call);

/*
 * Give every passage of kb that has no vector of this client's model one:
 * the knowledge base's vectors are switched to the model (vectors of
 * another model are dropped), the missing passages embedded in batches and
 * kept.  *added (may be NULL) counts them.  On failure the vectors embedded
 * before it are kept and err says what failed.
 */
int tg_embed_kb(struct tg_embedder *e, struct tg_kb *kb, size_t *added, char *err, size_t errlen);

#endif
