/*
 * persist.c - the knowledge base as store blobs, and loading it back.
 *
 * Three blobs under the prefix: "docs" (sources with their digests,
 * documents, chunk texts), "index" (term dictionary, postings, chunk
 * lengths, and the checksum of the docs blob it was built from) and
 * "glossary" (the entries as canonical JSON), and, when passages have
 * dense vectors, "vectors" (the model's name, the length, and each vector
 * used by a live chunk under its content key, as IEEE 754 single floats).
 * docs, index and vectors share one frame: 8-byte magic, u32 version, u64 payload length, the payload, and
 * the SHA-256 of everything before it.  Integers are little-endian.
 * Loading checks the frame, the version, the token and normalization
 * flags and the docs checksum before trusting an index; any mismatch
 * means the index is rebuilt from the chunk texts.
 */
#include "kb/kb_int.h"

#include <stdio.h>
#include <string.h>

#include "store/store.h"

static const char DOCS_MAGIC[8] = {'T', 'G', 'K', 'B', 'D', 'O', 'C', 'S'};
static const char INDEX_MAGIC[8] = {'T', 'G', 'K', 'B', 'I', 'D', 'X', '1'};
static const char VEC_MAGIC[8] = {'T', 'G', 'K', 'B', 'V', 'E', 'C', '1'};
#define FRAME_HEAD 20u
#define NULL_STR UINT32_MAX

/* ------------------------------------------------------------ writing */

static void enc_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static int put_u32(struct tg_buf *b, uint32_t v)
{
    uint8_t p[4];
    enc_u32(p, v);
    return tg_buf_append(b, p, 4);
}

static int put_u32s(struct tg_buf *b, const uint32_t *v, size_t n)
{
    int rc = tg_buf_reserve(b, n * 4);
    if (rc)
        return rc;
    uint8_t *p = (uint8_t *)b->data + b->len;
    for (size_t i = 0; i < n; i++)
        enc_u32(p + 4 * i, v[i]);
    b->len += n * 4;
    b->data[b->len] = '\0';
    return TG_OK;
}

static int put_str(struct tg_buf *b, const char *s)
{
    if (!s)
        return put_u32(b, NULL_STR);
    size_t n = strlen(s);
    if (n >= NULL_STR)
        return TG_E_TOOBIG;
    int rc = put_u32(b, (uint32_t)n);
    return rc ? rc : tg_buf_append(b, s, n);
}

/* Start a frame: magic, version, and a length patched by frame_end(). */
static int frame_begin(struct tg_buf *b, const char magic[8])
{
    int rc = tg_buf_append(b, magic, 8);
    if (!rc)
        rc = put_u32(b, KB_FORMAT_VERSION);
    if (!rc)
        rc = tg_buf_append(b, "\0\0\0\0\0\0\0\0", 8);
    return rc;
}

static int frame_end(struct tg_buf *b, uint8_t sha[TG_SHA256_LEN])
{
    uint64_t plen = b->len - FRAME_HEAD;
    for (int i = 0; i < 8; i++)
        b->data[12 + i] = (char)(uint8_t)(plen >> (8 * i));
    tg_sha256(b->data, b->len, sha);
    return tg_buf_append(b, sha, TG_SHA256_LEN);
}

static int encode_docs(struct tg_kb *kb, struct tg_buf *b, uint8_t sha[TG_SHA256_LEN])
{
    int rc = frame_begin(b, DOCS_MAGIC);
    if (!rc)
        rc = put_u32(b, (uint32_t)kb->nsrc);
    for (size_t i = 0; i < kb->nsrc && !rc; i++) {
        rc = put_str(b, kb->src[i].path);
        if (!rc)
            rc = tg_buf_append(b, kb->src[i].sha, TG_SHA256_LEN);
    }
    if (!rc)
        rc = put_u32(b, (uint32_t)kb->ndocs);
    for (size_t i = 0; i < kb->ndocs && !rc; i++) {
        const struct kb_doc *d = &kb->docs[i];
        rc = put_str(b, d->id);
        if (!rc)
            rc = put_str(b, d->title);
        if (!rc)
            rc = put_str(b, d->source);
        if (!rc)
            rc = put_u32(b, d->src);
        if (!rc)
            rc = tg_buf_append(b, &d->kind, 1);
    }
    if (!rc)
        rc = put_u32(b, (uint32_t)kb->nchunks);
    for (size_t i = 0; i < kb->nchunks && !rc; i++) {
        const struct kb_chunk *c = &kb->chunks[i];
        uint32_t head[3] = {c->doc, c->ord, c->off};
        rc = put_u32s(b, head, 3);
        if (!rc)
            rc = put_str(b, c->heading);
        if (!rc)
            rc = put_str(b, c->text);
        if (!rc)
            rc = put_str(b, c->question);
        if (!rc)
            rc = put_str(b, c->answer);
        if (!rc)
            rc = put_str(b, c->intent);
    }
    if (!rc)
        rc = frame_end(b, sha);
    return rc;
}

static int encode_index(struct tg_kb *kb, struct tg_buf *b)
{
    uint8_t sha[TG_SHA256_LEN];
    uint32_t head[2] = {kb->opts.norm_flags, kb->opts.token_flags};
    int rc = frame_begin(b, INDEX_MAGIC);
    if (!rc)
        rc = put_u32s(b, head, 2);
    if (!rc)
        rc = tg_buf_append(b, kb->docs_sha, TG_SHA256_LEN);
    uint32_t counts[4] = {(uint32_t)kb->ix_chunks, (uint32_t)kb->ix_terms, (uint32_t)kb->npost,
                          (uint32_t)kb->terms.pool_len};
    if (!rc)
        rc = put_u32s(b, counts, 4);
    if (!rc)
        rc = tg_buf_append(b, kb->terms.pool, kb->terms.pool_len);
    if (!rc)
        rc = put_u32s(b, kb->post_start, kb->ix_terms + 1);
    if (!rc)
        rc = put_u32s(b, kb->post_chunk, kb->npost);
    if (!rc)
        rc = put_u32s(b, kb->post_tf, kb->npost);
    for (size_t c = 0; c < kb->ix_chunks && !rc; c++)
        rc = put_u32(b, kb->chunks[c].ntok);
    if (!rc)
        rc = frame_end(b, sha);
    return rc;
}

/* The vectors live chunks use, each once. */
static int encode_vectors(struct tg_kb *kb, struct tg_buf *b)
{
    uint8_t sha[TG_SHA256_LEN];
    const struct kb_vecs *v = &kb->vec;
    uint8_t *seen = tg_calloc(v->n ? v->n : 1, 1);
    uint32_t n = 0;
    int rc = seen ? kb_vec_map(kb) : TG_E_NOMEM;
    for (size_t c = 0; !rc && c < v->nof; c++)
        if (v->of[c] != KB_NONE && !seen[v->of[c]]++)
            n++;
    memset(seen, 0, seen ? (v->n ? v->n : 1) : 0);
    if (!rc)
        rc = frame_begin(b, VEC_MAGIC);
    if (!rc)
        rc = put_str(b, v->model);
    if (!rc)
        rc = put_u32(b, v->dim);
    if (!rc)
        rc = put_u32(b, n);
    for (size_t c = 0; !rc && c < v->nof; c++) {
        uint32_t e = v->of[c];
        if (e == KB_NONE || seen[e]++)
            continue;
        rc = tg_buf_append(b, v->keys + (size_t)e * KB_VEC_KEY, KB_VEC_KEY);
        const float *row = v->data + (size_t)e * v->dim;
        for (size_t i = 0; !rc && i < v->dim; i++) {
            uint32_t bits;
            memcpy(&bits, &row[i], sizeof(bits));
            rc = put_u32(b, bits);
        }
    }
    if (!rc)
        rc = frame_end(b, sha);
    tg_free(seen);
    return rc;
}

static void key(const struct tg_kb *kb, const char *name, char *out, size_t n)
{
    snprintf(out, n, "%s/%s", kb->prefix, name);
}

int tg_kb_save(struct tg_kb *kb)
{
    struct tg_buf b;
    char k[96];
    uint8_t sha[TG_SHA256_LEN];
    bool docs = false;
    int rc;
    if (!kb->st)
        return TG_OK;
    rc = kb_index_build(kb);
    if (rc)
        return rc;
    tg_buf_init(&b, TG_BUF_UNLIMITED);
    if (kb->docs_unsaved || !kb->have_docs_sha) {
        rc = encode_docs(kb, &b, sha);
        key(kb, "docs", k, sizeof(k));
        if (!rc)
            rc = tg_store_blob_put(kb->st, k, b.data, b.len);
        if (rc)
            goto out;
        memcpy(kb->docs_sha, sha, sizeof(sha));
        kb->have_docs_sha = true;
        docs = true;
    }
    if (kb->ix_unsaved || docs) {
        tg_buf_reset(&b);
        b.len = 0;
        rc = encode_index(kb, &b);
        key(kb, "index", k, sizeof(k));
        if (!rc)
            rc = tg_store_blob_put(kb->st, k, b.data, b.len);
        if (rc)
            goto out;
    }
    if (kb->gloss_unsaved) {
        key(kb, "glossary", k, sizeof(k));
        if (kb->gloss_json && json_array_size(kb->gloss_json)) {
            size_t len = 0;
            char *s = tg_json_canonical(kb->gloss_json, &len);
            rc = s ? tg_store_blob_put(kb->st, k, s, len) : TG_E_NOMEM;
            tg_free(s);
        } else {
            rc = tg_store_blob_delete(kb->st, k);
        }
        if (rc)
            goto out;
    }
    if (kb->vec.unsaved) {
        key(kb, "vectors", k, sizeof(k));
        tg_buf_reset(&b);
        b.len = 0;
        rc = kb->vec.model && kb->vec.n ? encode_vectors(kb, &b) : TG_OK;
        if (!rc)
            rc = b.len ? tg_store_blob_put(kb->st, k, b.data, b.len)
                       : tg_store_blob_delete(kb->st, k);
        if (rc)
            goto out;
    }
    rc = tg_store_flush(kb->st);
    if (!rc) {
        kb->docs_unsaved = false;
        kb->ix_unsaved = false;
        kb->gloss_unsaved = false;
        kb->vec.unsaved = false;
    }
out:
    tg_buf_free(&b);
    return rc;
}

/* ------------------------------------------------------------ reading */

struct cur {
    const uint8_t *p;
    size_t len, pos;
    bool bad;
};

static uint32_t get_u32(struct cur *c)
{
    if (c->bad || c->len - c->pos < 4) {
        c->bad = true;
        return 0;
    }
    const uint8_t *p = c->p + c->pos;
    c->pos += 4;
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static const uint8_t *get_bytes(struct cur *c, size_t n)
{
    if (c->bad || c->len - c->pos < n) {
        c->bad = true;
        return NULL;
    }
    const uint8_t *p = c->p + c->pos;
    c->pos += n;
    return p;
}

/* A string as a new allocation; NULL for a stored NULL or on error (c->bad). */
static char *get_str(struct cur *c, bool *oom)
{
    uint32_t n = get_u32(c);
    if (c->bad || n == NULL_STR)
        return NULL;
    const uint8_t *p = get_bytes(c, n);
    if (!p)
        return NULL;
    char *s = tg_strndup((const char *)p, n);
    if (!s)
        *oom = c->bad = true;
    return s;
}

static int get_u32s(struct cur *c, uint32_t **out, size_t n)
{
    const uint8_t *p = get_bytes(c, n * 4);
    if (!p)
        return TG_E_PARSE;
    uint32_t *v = tg_malloc((n ? n : 1) * sizeof(*v));
    if (!v)
        return TG_E_NOMEM;
    for (size_t i = 0; i < n; i++)
        v[i] = (uint32_t)p[4 * i] | (uint32_t)p[4 * i + 1] << 8 | (uint32_t)p[4 * i + 2] << 16 |
               (uint32_t)p[4 * i + 3] << 24;
    *out = v;
    return TG_OK;
}

/*
 * Check a frame: TG_OK with the payload in *c and the trailer checksum in
 * sha; TG_E_PARSE for a damaged blob, TG_E_CONFLICT for another version.
 */
static int frame_open(const char *data, size_t len, const char magic[8], struct cur *c,
                      uint8_t sha[TG_SHA256_LEN])
{
    uint8_t want[TG_SHA256_LEN];
    if (len < FRAME_HEAD + TG_SHA256_LEN || memcmp(data, magic, 8) != 0)
        return TG_E_PARSE;
    tg_sha256(data, len - TG_SHA256_LEN, want);
    if (memcmp(want, data + len - TG_SHA256_LEN, TG_SHA256_LEN) != 0)
        return TG_E_PARSE;
    struct cur h = {.p = (const uint8_t *)data, .len = len, .pos = 8};
    if (get_u32(&h) != KB_FORMAT_VERSION)
        return TG_E_CONFLICT;
    uint64_t plen = 0;
    for (int i = 0; i < 8; i++)
        plen |= (uint64_t)(uint8_t)data[12 + i] << (8 * i);
    if (plen != len - FRAME_HEAD - TG_SHA256_LEN)
        return TG_E_PARSE;
    *c = (struct cur){.p = (const uint8_t *)data + FRAME_HEAD, .len = plen};
    memcpy(sha, want, TG_SHA256_LEN);
    return TG_OK;
}

static int decode_docs(struct tg_kb *kb, struct cur *c)
{
    bool oom = false;
    uint32_t n = get_u32(c);
    if (!c->bad && n > c->len / 36)
        c->bad = true;
    if (!c->bad && n) {
        kb->src = tg_calloc(n, sizeof(*kb->src));
        oom = !kb->src;
        kb->capsrc = n;
    }
    for (uint32_t i = 0; i < n && !c->bad && !oom; i++) {
        struct kb_source *s = &kb->src[kb->nsrc];
        s->path = get_str(c, &oom);
        const uint8_t *sha = get_bytes(c, TG_SHA256_LEN);
        if (!s->path || !sha) {
            tg_free(s->path);
            c->bad = true;
            break;
        }
        memcpy(s->sha, sha, TG_SHA256_LEN);
        kb->nsrc++;
    }
    n = get_u32(c);
    if (!c->bad && n > c->len / 17)
        c->bad = true;
    if (!c->bad && !oom && n) {
        kb->docs = tg_calloc(n, sizeof(*kb->docs));
        oom = !kb->docs;
        kb->capdocs = n;
    }
    for (uint32_t i = 0; i < n && !c->bad && !oom; i++) {
        struct kb_doc *d = &kb->docs[kb->ndocs];
        d->id = get_str(c, &oom);
        d->title = get_str(c, &oom);
        d->source = get_str(c, &oom);
        d->src = get_u32(c);
        const uint8_t *kind = get_bytes(c, 1);
        if (!d->id || !d->title || !d->source || !kind ||
            (d->src != KB_NONE && d->src >= kb->nsrc)) {
            kb_doc_clear(d);
            c->bad = true;
            break;
        }
        d->kind = *kind;
        kb->ndocs++;
        if (kb_map_put(&kb->docmap, d->id, (uint32_t)(kb->ndocs - 1)))
            oom = true;
    }
    n = get_u32(c);
    if (!c->bad && n > c->len / 32)
        c->bad = true;
    if (!c->bad && !oom && n) {
        kb->chunks = tg_calloc(n, sizeof(*kb->chunks));
        oom = !kb->chunks;
        kb->capchunks = n;
    }
    for (uint32_t i = 0; i < n && !c->bad && !oom; i++) {
        struct kb_chunk *ch = &kb->chunks[kb->nchunks];
        ch->doc = get_u32(c);
        ch->ord = get_u32(c);
        ch->off = get_u32(c);
        ch->heading = get_str(c, &oom);
        ch->text = get_str(c, &oom);
        ch->question = get_str(c, &oom);
        ch->answer = get_str(c, &oom);
        ch->intent = get_str(c, &oom);
        if (c->bad || ch->doc >= kb->ndocs || !ch->heading || !ch->text) {
            kb_chunk_clear(ch);
            c->bad = true;
            break;
        }
        kb->nchunks++;
    }
    if (oom)
        return TG_E_NOMEM;
    if (c->bad || c->pos != c->len)
        return TG_E_PARSE;
    return TG_OK;
}

static int decode_index(struct tg_kb *kb, struct cur *c)
{
    uint32_t norm = get_u32(c), tok = get_u32(c);
    const uint8_t *sha = get_bytes(c, TG_SHA256_LEN);
    uint32_t nc = get_u32(c), nt = get_u32(c), np = get_u32(c), pool_len = get_u32(c);
    if (c->bad || !sha)
        return TG_E_PARSE;
    if (norm != kb->opts.norm_flags || tok != kb->opts.token_flags ||
        memcmp(sha, kb->docs_sha, TG_SHA256_LEN) != 0 || nc != kb->nchunks)
        return TG_E_CONFLICT;
    const uint8_t *pool = get_bytes(c, pool_len);
    if (!pool || (pool_len && pool[pool_len - 1] != '\0'))
        return TG_E_PARSE;
    int rc = TG_OK;
    size_t pos = 0;
    for (uint32_t t = 0; t < nt && !rc; t++) {
        const char *s = (const char *)pool + pos;
        size_t n = pos < pool_len ? strnlen(s, pool_len - pos) : 0;
        uint32_t id;
        if (pos >= pool_len)
            return TG_E_PARSE;
        rc = kb_terms_intern(&kb->terms, s, n, &id);
        if (!rc && id != t)
            return TG_E_PARSE; /* a duplicate term */
        pos += n + 1;
    }
    if (rc)
        return rc;
    if (pos != pool_len)
        return TG_E_PARSE;
    rc = get_u32s(c, &kb->post_start, (size_t)nt + 1);
    if (!rc)
        rc = get_u32s(c, &kb->post_chunk, np);
    if (!rc)
        rc = get_u32s(c, &kb->post_tf, np);
    if (rc)
        return rc;
    kb->ix_terms = nt;
    kb->npost = np;
    kb->ix_chunks = nc;
    for (uint32_t i = 0; i < nc; i++)
        kb->chunks[i].ntok = get_u32(c);
    if (c->bad || c->pos != c->len || kb->post_start[0] != 0 || kb->post_start[nt] != np)
        return TG_E_PARSE;
    for (uint32_t t = 0; t < nt; t++) {
        if (kb->post_start[t] > kb->post_start[t + 1])
            return TG_E_PARSE;
        for (uint32_t p = kb->post_start[t]; p < kb->post_start[t + 1]; p++)
            if (kb->post_chunk[p] >= nc ||
                (p > kb->post_start[t] && kb->post_chunk[p] <= kb->post_chunk[p - 1]))
                return TG_E_PARSE;
    }
    return kb_index_finish(kb);
}

static int load_glossary(struct tg_kb *kb)
{
    char k[96], *data = NULL, err[256];
    size_t len = 0;
    key(kb, "glossary", k, sizeof(k));
    int rc = tg_store_blob_get(kb->st, k, &data, &len);
    if (rc == TG_E_NOTFOUND)
        return TG_OK;
    if (rc)
        return rc;
    json_t *list = json_loadb(data, len, 0, NULL);
    tg_free(data);
    rc = list ? tg_kb_glossary_set(kb, list, err, sizeof(err)) : TG_E_PARSE;
    json_decref(list);
    if (rc == TG_E_NOMEM)
        return rc;
    if (rc)
        tg_warn("knowledge base: stored glossary unreadable, ignored");
    kb->gloss_unsaved = false;
    return TG_OK;
}

/* The vectors blob; a damaged or foreign one is dropped with a warning
 * (the passages are embedded again). */
static int load_vectors(struct tg_kb *kb)
{
    char k[96], *data = NULL, *model = NULL;
    size_t len = 0;
    struct cur c;
    uint8_t sha[TG_SHA256_LEN];
    bool oom = false;
    key(kb, "vectors", k, sizeof(k));
    int rc = tg_store_blob_get(kb->st, k, &data, &len);
    if (rc == TG_E_NOTFOUND)
        return TG_OK;
    if (!rc)
        rc = frame_open(data, len, VEC_MAGIC, &c, sha);
    if (!rc)
        model = get_str(&c, &oom);
    uint32_t dim = rc ? 0 : get_u32(&c), n = rc ? 0 : get_u32(&c);
    if (!rc && (c.bad || !model || !dim || dim > 65536 ||
                (uint64_t)n * (KB_VEC_KEY + 4ull * dim) != c.len - c.pos))
        rc = oom ? TG_E_NOMEM : TG_E_PARSE;
    if (!rc)
        rc = tg_kb_vectors_model(kb, model);
    float *row = rc ? NULL : tg_malloc(dim * sizeof(*row));
    if (!rc && !row)
        rc = TG_E_NOMEM;
    for (uint32_t e = 0; !rc && e < n; e++) {
        const uint8_t *key = get_bytes(&c, KB_VEC_KEY);
        for (uint32_t i = 0; i < dim; i++) {
            uint32_t bits = get_u32(&c);
            memcpy(&row[i], &bits, sizeof(bits));
        }
        rc = c.bad ? TG_E_PARSE : kb_vec_add(kb, key, row, dim);
    }
    tg_free(row);
    tg_free(model);
    tg_free(data);
    if (rc && rc != TG_E_NOMEM) {
        tg_warn("knowledge base: stored %s is %s; passages will be embedded again", k,
                rc == TG_E_CONFLICT ? "of another version" : "unreadable");
        kb_vecs_free(&kb->vec);
        rc = TG_OK;
    }
    kb->vec.unsaved = false;
    return rc;
}


int kb_persist_load(struct tg_kb *kb, char *err, size_t errlen)
{
    char k[96], *data = NULL;
    size_t len = 0;
    struct cur c;
    uint8_t sha[TG_SHA256_LEN];
    int rc;
    key(kb, "docs", k, sizeof(k));
    rc = tg_store_blob_get(kb->st, k, &data, &len);
    if (rc == TG_E_NOTFOUND) {
        rc = load_glossary(kb);
        goto out;
    }
    if (rc) {
        snprintf(err, errlen, "knowledge base: cannot read %s: %s", k, tg_err_str(rc));
        goto out;
    }
    rc = frame_open(data, len, DOCS_MAGIC, &c, sha);
    if (!rc)
        rc = decode_docs(kb, &c);
    tg_free(data);
    data = NULL;
    if (rc == TG_E_NOMEM)
        goto out;
    if (rc) {
        /* Nothing to rebuild from: start empty; the next ingest adds every file again. */
        tg_warn("knowledge base: stored %s is %s; starting empty", k,
                rc == TG_E_CONFLICT ? "of another version" : "corrupt");
        kb_docs_free(kb); /* forget what was decoded */
        rc = load_glossary(kb);
        goto out;
    }
    memcpy(kb->docs_sha, sha, sizeof(sha));
    kb->have_docs_sha = true;
    kb->have_fwd = false;

    key(kb, "index", k, sizeof(k));
    rc = tg_store_blob_get(kb->st, k, &data, &len);
    if (!rc)
        rc = frame_open(data, len, INDEX_MAGIC, &c, sha);
    if (!rc)
        rc = decode_index(kb, &c);
    tg_free(data);
    data = NULL;
    if (rc == TG_E_NOMEM)
        goto out;
    if (rc == TG_OK) {
        kb->ix_dirty = false;
        kb->origin = TG_KB_INDEX_LOADED;
    } else {
        /* Missing, damaged, stale or made with other flags: tokenize the chunks again. */
        kb_index_free(kb);
        kb_terms_free(&kb->terms);
        rc = TG_OK;
        for (size_t i = 0; i < kb->nchunks && !rc; i++)
            rc = kb_tokenize_chunk(kb, &kb->chunks[i], kb->docs[kb->chunks[i].doc].title);
        if (rc)
            goto out;
        kb->have_fwd = true;
        kb->ix_dirty = true;
        rc = kb_index_build(kb);
        if (!rc) {
            kb->origin = TG_KB_INDEX_REBUILT;
            rc = load_glossary(kb);
        }
        if (!rc)
            rc = tg_kb_save(kb);
        if (rc)
            snprintf(err, errlen, "knowledge base: rebuilding the index failed: %s",
                     tg_err_str(rc));
        goto out;
    }
    rc = load_glossary(kb);
out:
    if (!rc)
        rc = load_vectors(kb);
    if (rc && errlen && !*err)
        snprintf(err, errlen, "knowledge base: loading failed: %s", tg_err_str(rc));
    tg_free(data);
    return rc;
}
