/*
 * audit.c - what an auditor needs to hold the log to its word, without
 * trusting the operator:
 *
 *   GET /v1/audit/checkpoint                 the signed tree head (text, C2SP tlog-checkpoint)
 *   GET /v1/audit/key                        the verifier key of its signature (text)
 *   GET /v1/audit/consistency?from=M[&to=N]  RFC 6962 proof that the tree of M leaves is a
 *                                            prefix of the tree of N (default: the current size)
 *   GET /v1/audit/inclusion?index=I[&size=N] RFC 6962 audit path of leaf I in the tree of N
 *
 * For users of every role, auditors included.  An auditor keeps the
 * checkpoints it has seen; a later one with a consistency proof shows that
 * nothing recorded was altered or removed since.  Proofs read every leaf
 * hash from the store (O(n) per request), on the background worker.
 */
#include "api/api_int.h"

#include "audit/audit.h"
#include "metrics/metrics.h"
#include "pipeline/pipeline.h"
#include "store/store.h"

#include <stdio.h>
#include <string.h>

#define READERS "reviewer|supervisor|agent|auditor"

struct hashes {
    uint8_t (*h)[TG_HASH_LEN];
    size_t n, cap;
};

static int add_hash(void *arg, const struct tg_audit_row *row)
{
    struct hashes *x = arg;
    if (tg_grow(&x->h, &x->cap, x->n, TG_HASH_LEN, 1024))
        return TG_E_NOMEM;
    memcpy(x->h[x->n++], row->leaf_hash, TG_HASH_LEN);
    return 0;
}

/* The hashes in hex; NULL when out of memory. */
static json_t *hex_list(uint8_t (*h)[TG_HASH_LEN], size_t n)
{
    json_t *a = json_array();
    int rc = a ? TG_OK : TG_E_NOMEM;
    char hex[2 * TG_HASH_LEN + 1];
    for (size_t i = 0; !rc && i < n; i++) {
        tg_hex_encode(h[i], TG_HASH_LEN, hex);
        rc = tg_json_push(a, json_string(hex));
    }
    if (rc) {
        json_decref(a);
        a = NULL;
    }
    return a;
}

/* A size from the query; def when absent; false when malformed. */
static bool query_size(const char *q, const char *name, uint64_t def, uint64_t *out)
{
    char v[24];
    int64_t x;
    *out = def;
    if (!tg_api_query(q, name, v, sizeof(v)))
        return true;
    if (tg_parse_i64(v, &x) || x < 0)
        return false;
    *out = (uint64_t)x;
    return true;
}

struct proof_job {
    bool consistency;
    uint64_t a, b; /* from and to, or index and size */
};

/* On the background worker: every leaf hash, then the proof. */
static json_t *proof_work(struct tg_store *st, void *arg, char *err, size_t errlen)
{
    const struct proof_job *pj = arg;
    struct hashes x = {0};
    int rc = tg_store_audit_scan(st, 0, add_hash, &x);
    uint8_t path[64][TG_HASH_LEN], root[TG_HASH_LEN];
    size_t len = 0;
    if (!rc && x.n < pj->b)
        rc = TG_E_DB;
    if (!rc)
        rc = pj->consistency ? tg_audit_consistency_proof((const uint8_t(*)[TG_HASH_LEN])x.h, pj->b,
                                                          pj->a, path, 64, &len)
                             : tg_audit_inclusion_proof((const uint8_t(*)[TG_HASH_LEN])x.h, pj->b,
                                                        pj->a, path, 64, &len);
    if (rc) {
        tg_free(x.h);
        snprintf(err, errlen, "the audit log could not be read");
        return NULL;
    }
    tg_audit_tree_root((const uint8_t(*)[TG_HASH_LEN])x.h, pj->b, root);
    char hex[2 * TG_HASH_LEN + 1], leaf[2 * TG_HASH_LEN + 1] = "";
    tg_hex_encode(root, TG_HASH_LEN, hex);
    if (!pj->consistency)
        tg_hex_encode(x.h[pj->a], TG_HASH_LEN, leaf);
    tg_free(x.h);
    json_t *out = pj->consistency
                      ? json_pack("{s:I, s:I, s:s, s:o}", "from", (json_int_t)pj->a, "to",
                                  (json_int_t)pj->b, "root", hex, "proof", hex_list(path, len))
                      : json_pack("{s:I, s:I, s:s, s:s, s:o}", "index", (json_int_t)pj->a, "size",
                                  (json_int_t)pj->b, "leaf_hash", leaf, "root", hex, "path",
                                  hex_list(path, len));
    if (!out)
        snprintf(err, errlen, "out of memory");
    return out;
}

static void proof(struct tg_api *api, struct tg_http_req *req, bool consistency)
{
    const char *route = consistency ? "/v1/audit/consistency" : "/v1/audit/inclusion";
    const char *q = tg_http_query(req);
    uint64_t size = 0, a = 0, b = 0;
    uint8_t head[TG_HASH_LEN];
    if (tg_audit_head(api->p->audit, &size, head) != TG_OK) {
        tg_api_send_error(api, req, route, 503, "server_error", "storage_unavailable",
                          "the audit log could not be read");
        return;
    }
    bool ok = consistency
                  ? query_size(q, "from", UINT64_MAX, &a) && query_size(q, "to", size, &b)
                  : query_size(q, "index", UINT64_MAX, &a) && query_size(q, "size", size, &b);
    if (!ok || a == UINT64_MAX || b > size || (consistency ? a > b : a >= b)) {
        char m[200];
        snprintf(m, sizeof(m),
                 consistency
                     ? "need from=M and optionally to=N with M <= N <= %llu (the log's size)"
                     : "need index=I and optionally size=N with I < N <= %llu (the log's "
                       "size)",
                 (unsigned long long)size);
        tg_api_send_error(api, req, route, 400, "invalid_request_error", "invalid_value", m);
        return;
    }
    struct proof_job *pj = tg_calloc(1, sizeof(*pj));
    if (!pj) {
        tg_api_send_error(api, req, route, 503, "server_error", "out_of_memory", "out of memory");
        return;
    }
    *pj = (struct proof_job){.consistency = consistency, .a = a, .b = b};
    tg_api_background(api, req, route, proof_work, NULL, pj, tg_free);
}

/* The committed log's head, signed: what the store has committed cannot
 * be taken back by a crash, so no outsider holds a head that vanishes.
 * On a store several nodes share, every node signs the one shared log. */
static void checkpoint(struct tg_api *api, struct tg_http_req *req)
{
    const char *route = "/v1/audit/checkpoint";
    uint8_t root[TG_HASH_LEN];
    uint64_t size = 0;
    struct tg_buf b;
    tg_buf_init(&b, TG_BUF_UNLIMITED);
    if (tg_audit_head(api->p->audit, &size, root) != TG_OK)
        tg_api_send_error(api, req, route, 503, "server_error", "storage_unavailable",
                          "the audit log could not be read; no checkpoint was signed");
    else if (tg_audit_checkpoint(api->p->signer, size, root, &b))
        tg_api_send_error(api, req, route, 500, "server_error", "internal_error",
                          "the checkpoint could not be signed");
    else {
        tg_metrics_request(api->p->metrics, route, 200);
        tg_http_respond(req, 200, "text/plain; charset=utf-8", NULL, b.data, b.len);
    }
    tg_buf_free(&b);
}

bool tg_api_audit(struct tg_api *api, struct tg_http_req *req)
{
    const char *path = tg_http_path(req);
    if (!tg_str_has_prefix(path, "/v1/audit/"))
        return false;
    if (strcmp(tg_http_method(req), "GET") != 0) {
        tg_api_send_error(api, req, path, 405, "invalid_request_error", "method_not_allowed",
                          "the audit routes are read-only (GET)");
        return true;
    }
    if (!strcmp(path, "/v1/audit/checkpoint")) {
        if (tg_api_person(api, req, path, READERS))
            checkpoint(api, req);
    } else if (!strcmp(path, "/v1/audit/key")) {
        if (!tg_api_person(api, req, path, READERS))
            return true;
        struct tg_buf b;
        tg_buf_init(&b, TG_BUF_UNLIMITED);
        char vkey[256];
        tg_audit_signer_vkey(api->p->signer, vkey, sizeof(vkey));
        if (tg_buf_printf(&b, "%s\n", vkey))
            tg_api_send_error(api, req, path, 500, "server_error", "internal_error",
                              "out of memory");
        else {
            tg_metrics_request(api->p->metrics, path, 200);
            tg_http_respond(req, 200, "text/plain; charset=utf-8", NULL, b.data, b.len);
        }
        tg_buf_free(&b);
    } else if (!strcmp(path, "/v1/audit/consistency") || !strcmp(path, "/v1/audit/inclusion")) {
        if (tg_api_person(api, req, path, READERS))
            proof(api, req, !strcmp(path, "/v1/audit/consistency"));
    } else {
        tg_api_send_error(api, req, path, 404, "invalid_request_error", "unknown_route",
                          "the audit routes are checkpoint, key, consistency and inclusion");
    }
    return true;
}
