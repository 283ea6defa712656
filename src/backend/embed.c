/*
 * embed.c - the embeddings client: POST {base_url}/embeddings with
 * {"model", "input": [texts], "encoding_format": "float", "dimensions"?}
 * and read {"data": [{"index", "embedding": [numbers]}]} back (the OpenAI
 * wire format, which vLLM, TEI's OpenAI route, Ollama and llama.cpp's
 * server speak).  Items are placed by their index (the order of the input
 * when a server leaves it out); every vector must have the same length
 * (the asked dimensions when given), finite values and a non-zero norm,
 * and is scaled to unit length.
 *
 * The synchronous path (building the index) uses one easy handle per
 * client; the asynchronous one (a turn's question) runs on the loop
 * through net/curlev.h with its own keep-alive pool.
 */
#include "backend/embed.h"

#include "core/jw.h"
#include "kb/kb.h"
#include "net/curlev.h"

#include <stdio.h>
#include <string.h>

#include <curl/curl.h>

#define DEFAULT_BATCH 32
#define DEFAULT_TIMEOUT_MS 2000
#define MAX_ANSWER (256u << 20)
#define MAX_IDLE 16 /* easy handles kept for the next questions (each keeps its buffers) */

struct tg_embedder {
    struct tg_embed_conf conf;
    char *url;
    struct curl_slist *headers;
    CURL *sync; /* the synchronous path's handle, made on first use */
    struct tg_curlev *cv;
    struct tg_embed_call *calls; /* running asynchronous calls */
    CURL *idle[MAX_IDLE];        /* finished calls' handles, reused */
    size_t nidle;
};

struct tg_embed_call {
    struct tg_embedder *e;
    struct tg_embed_call *prev, *next;
    CURL *easy;
    char *body;
    struct tg_buf answer;
    tg_embed_cb cb;
    void *arg;
    char errbuf[CURL_ERROR_SIZE];
};

/* ------------------------------------------------------------ requests and answers */

/* The request body for n texts, each after prefix. */
static char *request_body(const struct tg_embedder *e, const char *const *texts, const size_t *lens,
                          size_t n, const char *prefix)
{
    struct tg_buf b, one;
    struct tg_jw w;
    int rc = TG_OK;
    tg_buf_init(&b, TG_BUF_UNLIMITED);
    tg_buf_init(&one, TG_BUF_UNLIMITED);
    tg_jw_init(&w, &b);
    tg_jw_obj(&w);
    tg_jw_kstr(&w, "model", e->conf.model);
    tg_jw_key(&w, "input");
    tg_jw_arr(&w);
    for (size_t i = 0; i < n && !rc; i++) {
        tg_buf_reset(&one);
        rc = tg_buf_puts(&one, prefix ? prefix : "");
        if (!rc)
            rc = tg_buf_append(&one, texts[i], lens[i]);
        if (!rc)
            tg_jw_strn(&w, one.data, one.len);
    }
    tg_jw_end(&w);
    tg_jw_kstr(&w, "encoding_format", "float");
    if (e->conf.dimensions)
        tg_jw_kint(&w, "dimensions", (int64_t)e->conf.dimensions);
    tg_jw_end(&w);
    if (!rc)
        rc = tg_jw_finish(&w);
    tg_buf_free(&one);
    if (rc) {
        tg_buf_free(&b);
        return NULL;
    }
    return tg_buf_steal(&b, NULL);
}

/* One item's vector into row (dim floats); *dim set by the first item. */
static int read_vector(const json_t *emb, size_t want, size_t *dim, float **rows, size_t n,
                       size_t row, char *err, size_t errlen)
{
    size_t len = json_array_size(emb), j;
    const json_t *x;
    if (!json_is_array(emb) || len == 0 || len > TG_EMBED_MAX_DIM) {
        snprintf(err, errlen, "data item %zu has no embedding array of numbers", row);
        return TG_E_UPSTREAM;
    }
    if (!*dim) {
        if (want && len != want) {
            snprintf(err, errlen, "the vectors have %zu dimensions, %zu were asked for", len,
                     want);
            return TG_E_UPSTREAM;
        }
        *dim = len;
        *rows = tg_calloc(n * len, sizeof(float));
        if (!*rows)
            return TG_E_NOMEM;
    } else if (len != *dim) {
        snprintf(err, errlen, "data item %zu has %zu dimensions, the first had %zu", row, len,
                 *dim);
        return TG_E_UPSTREAM;
    }
    float *v = *rows + row * len;
    json_array_foreach(emb, j, x)
    {
        if (!json_is_number(x)) {
            snprintf(err, errlen, "data item %zu: embedding[%zu] is not a number", row, j);
            return TG_E_UPSTREAM;
        }
        v[j] = (float)json_number_value(x);
    }
    if (!tg_unit_vector(v, len)) {
        snprintf(err, errlen, "data item %zu is a zero or non-finite vector", row);
        return TG_E_UPSTREAM;
    }
    return TG_OK;
}

/*
 * The n vectors of an answer, in input order, into *out (tg_malloc'd n *
 * *dim floats).  Each index must be given once.
 */
static int parse_answer(const struct tg_embedder *e, const char *body, size_t len, size_t n,
                        float **out, size_t *dim, char *err, size_t errlen)
{
    json_error_t je;
    json_t *root = json_loadb(body, len, 0, &je), *item;
    const json_t *data = json_object_get(root, "data");
    float *rows = NULL;
    bool *seen = tg_calloc(n ? n : 1, sizeof(*seen));
    size_t i, d = 0;
    int rc = seen ? TG_OK : TG_E_NOMEM;
    if (!rc && !root) {
        snprintf(err, errlen, "the answer is not JSON: %s", je.text);
        rc = TG_E_UPSTREAM;
    } else if (!rc && (!json_is_array(data) || json_array_size(data) != n)) {
        snprintf(err, errlen, "the answer has %zu vectors for %zu inputs",
                 json_is_array(data) ? json_array_size(data) : 0, n);
        rc = TG_E_UPSTREAM;
    }
    json_array_foreach(rc ? NULL : data, i, item)
    {
        const json_t *ix = json_object_get(item, "index");
        json_int_t at = json_is_integer(ix) ? json_integer_value(ix) : (json_int_t)i;
        if (at < 0 || (size_t)at >= n || seen[at]) {
            snprintf(err, errlen, "data item %zu has a bad or repeated index", i);
            rc = TG_E_UPSTREAM;
            break;
        }
        seen[at] = true;
        rc = read_vector(json_object_get(item, "embedding"), e->conf.dimensions, &d, &rows, n,
                         (size_t)at, err, errlen);
        if (rc)
            break;
    }
    json_decref(root);
    tg_free(seen);
    if (rc) {
        tg_free(rows);
        return rc;
    }
    *out = rows;
    *dim = d;
    return TG_OK;
}

/* What an answer's status and body say went wrong. */
static void status_error(long status, const struct tg_buf *body, char *err, size_t errlen)
{
    json_t *j = body->len ? json_loadb(body->data, body->len, 0, NULL) : NULL;
    const json_t *m = json_object_get(json_object_get(j, "error"), "message");
    snprintf(err, errlen, "status %ld%s%s", status, json_is_string(m) ? ": " : "",
             json_is_string(m) ? json_string_value(m) : "");
    json_decref(j);
}

static size_t collect_cb(char *buf, size_t size, size_t n, void *arg)
{
    return tg_buf_append(arg, buf, size * n) ? 0 : size * n;
}

static void setup(const struct tg_embedder *e, CURL *c, const char *body, struct tg_buf *answer,
                  char *errbuf)
{
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, e->url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, e->headers);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect_cb);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, answer);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)e->conf.timeout_ms);
    curl_easy_setopt(c, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
}

/* The outcome of a finished transfer: its vectors or an error in err. */
static int finish(const struct tg_embedder *e, CURL *c, CURLcode code, const char *errbuf,
                  const struct tg_buf *answer, size_t n, float **out, size_t *dim, char *err,
                  size_t errlen)
{
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    if (code != CURLE_OK) {
        snprintf(err, errlen, "%s", errbuf[0] ? errbuf : curl_easy_strerror(code));
        return code == CURLE_OPERATION_TIMEDOUT ? TG_E_TIMEOUT : TG_E_UPSTREAM;
    }
    if (status != 200) {
        status_error(status, answer, err, errlen);
        return TG_E_UPSTREAM;
    }
    return parse_answer(e, answer->data ? answer->data : "", answer->len, n, out, dim, err, errlen);
}

static void done_cb(CURL *easy, CURLcode code, void *arg);

/* ------------------------------------------------------------ client */

int tg_embedder_create(const struct tg_embed_conf *conf, struct event_base *base,
                       struct tg_embedder **out, char *err, size_t errlen)
{
    struct tg_buf b;
    if (!conf->base_url || !conf->base_url[0] || !conf->model || !conf->model[0]) {
        snprintf(err, errlen, "embeddings need a base_url and a model");
        return TG_E_CONFIG;
    }
    struct tg_embedder *e = tg_calloc(1, sizeof(*e));
    int rc = e ? TG_OK : TG_E_NOMEM;
    tg_buf_init(&b, 8192);
    if (!rc) {
        e->conf = *conf;
        e->conf.batch = conf->batch ? conf->batch : DEFAULT_BATCH;
        e->conf.timeout_ms = conf->timeout_ms > 0 ? conf->timeout_ms : DEFAULT_TIMEOUT_MS;
        rc = tg_buf_printf(&b, "%s/embeddings", conf->base_url);
    }
    if (!rc) {
        e->url = tg_buf_steal(&b, NULL);
        e->headers = curl_slist_append(NULL, "Content-Type: application/json");
        e->headers = e->headers ? curl_slist_append(e->headers, "Expect:") : NULL;
        rc = e->url && e->headers ? TG_OK : TG_E_NOMEM;
    }
    if (!rc && conf->api_key && conf->api_key[0]) {
        tg_buf_reset(&b);
        rc = tg_buf_printf(&b, "Authorization: Bearer %s", conf->api_key);
        struct curl_slist *h = rc ? NULL : curl_slist_append(e->headers, b.data);
        if (!rc && !h)
            rc = TG_E_NOMEM;
        if (h)
            e->headers = h;
    }
    if (!rc && base)
        rc = tg_curlev_create(base, 16, done_cb, e, &e->cv);
    tg_buf_free(&b);
    if (rc) {
        snprintf(err, errlen, "embeddings: %s", tg_err_str(rc));
        tg_embedder_free(e);
        return rc;
    }
    *out = e;
    return TG_OK;
}

/* ------------------------------------------------------------ synchronous */

static int embed_sync(struct tg_embedder *e, const char *const *texts, size_t n, const char *prefix,
                      float **out, size_t *dim, char *err, size_t errlen);

int tg_embed_texts(struct tg_embedder *e, const char *const *texts, size_t n, float **out,
                   size_t *dim, char *err, size_t errlen)
{
    return embed_sync(e, texts, n, e->conf.passage_prefix, out, dim, err, errlen);
}

int tg_embed_query(struct tg_embedder *e, const char *text, float **out, size_t *dim, char *err,
                   size_t errlen)
{
    return embed_sync(e, &text, 1, e->conf.query_prefix, out, dim, err, errlen);
}

/* n texts after prefix, in requests of conf.batch (tg_embed_texts). */
static int embed_sync(struct tg_embedder *e, const char *const *texts, size_t n, const char *prefix,
                      float **out, size_t *dim, char *err, size_t errlen)
{
    float *all = NULL, *part = NULL;
    size_t d = 0, pd = 0;
    size_t *lens = tg_calloc(n ? n : 1, sizeof(*lens));
    struct tg_buf answer;
    char errbuf[CURL_ERROR_SIZE];
    int rc = lens ? TG_OK : TG_E_NOMEM;
    tg_buf_init(&answer, MAX_ANSWER);
    if (!rc && !e->sync && !(e->sync = curl_easy_init()))
        rc = TG_E_NOMEM;
    for (size_t i = 0; !rc && i < n; i++)
        lens[i] = strlen(texts[i]);
    for (size_t at = 0; !rc && at < n; at += e->conf.batch) {
        size_t m = TG_MIN(e->conf.batch, n - at);
        char *body = request_body(e, texts + at, lens + at, m, prefix);
        if (!body) {
            rc = TG_E_NOMEM;
            break;
        }
        tg_buf_reset(&answer);
        errbuf[0] = 0;
        setup(e, e->sync, body, &answer, errbuf);
        CURLcode code = curl_easy_perform(e->sync);
        rc = finish(e, e->sync, code, errbuf, &answer, m, &part, &pd, err, errlen);
        tg_free(body);
        if (!rc && d && pd != d) {
            snprintf(err, errlen, "a batch had %zu dimensions, the first %zu", pd, d);
            rc = TG_E_UPSTREAM;
        }
        if (!rc && !all) {
            d = pd;
            all = tg_calloc(n * d, sizeof(float));
            rc = all ? TG_OK : TG_E_NOMEM;
        }
        if (!rc)
            memcpy(all + at * d, part, m * d * sizeof(float));
        tg_free(part);
        part = NULL;
    }
    tg_buf_free(&answer);
    tg_free(lens);
    if (rc) {
        tg_free(all);
        return rc;
    }
    *out = all;
    *dim = d;
    return TG_OK;
}

/* ------------------------------------------------------------ asynchronous */

static void call_free(struct tg_embed_call *c)
{
    struct tg_embedder *e = c->e;
    if (c->prev)
        c->prev->next = c->next;
    else
        e->calls = c->next;
    if (c->next)
        c->next->prev = c->prev;
    if (c->easy) {
        tg_curlev_remove(e->cv, c->easy);
        if (e->nidle < MAX_IDLE)
            e->idle[e->nidle++] = c->easy;
        else
            curl_easy_cleanup(c->easy);
    }
    tg_free(c->body);
    tg_buf_free(&c->answer);
    tg_free(c);
}

static void done_cb(CURL *easy, CURLcode code, void *arg)
{
    (void)arg;
    struct tg_embed_call *c = NULL;
    float *v = NULL;
    size_t dim = 0;
    char err[256];
    curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&c);
    int rc = finish(c->e, easy, code, c->errbuf, &c->answer, 1, &v, &dim, err, sizeof(err));
    if (rc)
        tg_warn("embeddings %s: %s", c->e->conf.model, err);
    c->cb(rc, rc ? NULL : v, rc ? 0 : dim, c->arg);
    tg_free(v);
    call_free(c);
}

int tg_embed_start(struct tg_embedder *e, const char *text, size_t len, tg_embed_cb cb, void *arg,
                   struct tg_embed_call **call)
{
    if (!e->cv)
        return TG_E_INVAL;
    struct tg_embed_call *c = tg_calloc(1, sizeof(*c));
    if (!c)
        return TG_E_NOMEM;
    c->e = e;
    c->cb = cb;
    c->arg = arg;
    tg_buf_init(&c->answer, MAX_ANSWER);
    c->next = e->calls;
    if (e->calls)
        e->calls->prev = c;
    e->calls = c;
    c->body = request_body(e, &text, &len, 1, e->conf.query_prefix);
    c->easy = !c->body ? NULL : e->nidle ? e->idle[--e->nidle] : curl_easy_init();
    if (!c->easy) {
        call_free(c);
        return TG_E_NOMEM;
    }
    setup(e, c->easy, c->body, &c->answer, c->errbuf);
    curl_easy_setopt(c->easy, CURLOPT_PRIVATE, c);
    int rc = tg_curlev_add(e->cv, c->easy);
    if (rc) {
        call_free(c);
        return rc;
    }
    if (call)
        *call = c;
    return TG_OK;
}

void tg_embed_cancel(struct tg_embed_call *call)
{
    if (call)
        call_free(call);
}

void tg_embedder_free(struct tg_embedder *e)
{
    if (!e)
        return;
    while (e->calls)
        call_free(e->calls);
    for (size_t i = 0; i < e->nidle; i++)
        curl_easy_cleanup(e->idle[i]);
    tg_curlev_free(e->cv);
    if (e->sync)
        curl_easy_cleanup(e->sync);
    curl_slist_free_all(e->headers);
    tg_free(e->url);
    tg_free(e);
}

/* ------------------------------------------------------------ the knowledge base */

int tg_embed_kb(struct tg_embedder *e, struct tg_kb *kb, size_t *added, char *err, size_t errlen)
{
    uint32_t *ids = NULL;
    size_t n = 0, done = 0;
    struct tg_buf text;
    int rc = tg_kb_vectors_model(kb, e->conf.model);
    err[0] = 0;
    tg_buf_init(&text, TG_BUF_UNLIMITED);
    if (!rc)
        rc = tg_kb_vectors_missing(kb, &ids, &n);
    for (size_t at = 0; !rc && at < n; at += e->conf.batch) {
        size_t m = TG_MIN(e->conf.batch, n - at), dim = 0;
        char **texts = tg_calloc(m, sizeof(*texts));
        float *v = NULL;
        rc = texts ? TG_OK : TG_E_NOMEM;
        for (size_t i = 0; !rc && i < m; i++) {
            tg_buf_reset(&text);
            rc = tg_kb_passage_text(kb, ids[at + i], &text);
            texts[i] = rc ? NULL : tg_strdup(text.data ? text.data : "");
            if (!rc && !texts[i])
                rc = TG_E_NOMEM;
        }
        if (!rc)
            rc = tg_embed_texts(e, (const char *const *)texts, m, &v, &dim, err, errlen);
        for (size_t i = 0; !rc && i < m; i++)
            rc = tg_kb_vector_put(kb, ids[at + i], v + i * dim, dim);
        if (!rc)
            done += m;
        for (size_t i = 0; texts && i < m; i++)
            tg_free(texts[i]);
        tg_free(texts);
        tg_free(v);
    }
    if (rc && !err[0])
        snprintf(err, errlen, "embeddings: %s", tg_err_str(rc));
    tg_buf_free(&text);
    tg_free(ids);
    if (added)
        *added = done;
    return rc;
}
