/*
 * pipeline.c - the stage order, the runner, and the shared state.
 *
 * This file is the only place that knows the order of the stages.  A stage
 * returns TG_NEXT (go on), TG_WAIT (it started async work and will call
 * tg_pipeline_resume) or TG_DONE (the outcome is settled early: skip to
 * record).  Each stage's time is measured on the monotonic clock and fed
 * to the metrics.
 */
#include "pipeline/pipeline.h"

#include "audit/audit.h"
#include "backend/backend.h"
#include "backend/embed.h"
#include "core/jw.h"
#include "ladder/ladder.h"
#include "eval/eval.h"
#include "govern/govern.h"
#include "kb/kb.h"
#include "intent/intent.h"
#include "policy/policy.h"
#include "review/review.h"
#include "store/store.h"
#include "text/lang.h"
#include "text/text.h"

#include <errno.h>
#include <event2/event.h>
#include <openssl/crypto.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Slots of the latest-conversation cache (a collision just means a store read). */
#define RECENT_SLOTS 4096

typedef enum tg_stage_rc (*stage_fn)(struct tg_turn *t);

static const stage_fn stages[TG_STAGE__COUNT] = {
    [TG_STAGE_ADMIT] = tg_stage_admit,       [TG_STAGE_UNDERSTAND] = tg_stage_understand,
    [TG_STAGE_RETRIEVE] = tg_stage_retrieve, [TG_STAGE_PRECHECK] = tg_stage_precheck,
    [TG_STAGE_GENERATE] = tg_stage_generate, [TG_STAGE_POSTCHECK] = tg_stage_postcheck,
    [TG_STAGE_GATE] = tg_stage_gate,         [TG_STAGE_RECORD] = tg_stage_record,
    [TG_STAGE_REPLY] = tg_stage_reply,
};

/* ------------------------------------------------------------ runner */

static void run(struct tg_turn *t)
{
    struct tg_pipeline *p = t->p;
    while (t->run.stage < TG_STAGE__COUNT) {
        enum tg_stage_id s = t->run.stage;
        int64_t t0 = tg_clock_mono_ns();
        if (t->run.ntrace < TG_STAGE__COUNT)
            t->run.trace[t->run.ntrace++] = s;
        enum tg_stage_rc rc = stages[s](t);
        int64_t dt = tg_clock_mono_ns() - t0;
        t->run.stage_ns[s] += dt;
        if (rc == TG_WAIT) {
            t->run.waiting = true;
            return;
        }
        tg_metrics_stage(p->metrics, s, t->run.stage_ns[s]);
        if (rc == TG_DONE && s < TG_STAGE_RECORD) {
            /* A turn refused at admission was never a turn: nothing to record. */
            t->run.stage = t->admit.id[0] ? TG_STAGE_RECORD : TG_STAGE_REPLY;
        } else {
            t->run.stage = (enum tg_stage_id)(s + 1);
        }
    }
    tg_metrics_turn(p->metrics, tg_clock_mono_ns() - t->run.t0_ns);
    p->inflight--;
    t->done_cb(t, t->done_arg);
}

void tg_pipeline_start(struct tg_turn *t)
{
    t->p->inflight++;
    t->run.t0_ns = tg_clock_mono_ns();
    t->run.created_ms = tg_clock_wall_ms();
    t->run.stage = TG_STAGE_ADMIT;
    run(t);
}

void tg_pipeline_resume_with(struct tg_turn *t, enum tg_stage_rc rc)
{
    enum tg_stage_id s = t->run.stage;
    t->run.waiting = false;
    /* The waiting stage is finished when it resumes us: account and move on. */
    tg_metrics_stage(t->p->metrics, s, t->run.stage_ns[s]);
    if (rc == TG_DONE && s < TG_STAGE_RECORD)
        t->run.stage = t->admit.id[0] ? TG_STAGE_RECORD : TG_STAGE_REPLY;
    else
        t->run.stage = (enum tg_stage_id)(s + 1);
    run(t);
}

void tg_pipeline_resume(struct tg_turn *t)
{
    tg_pipeline_resume_with(t, TG_NEXT);
}

/* ------------------------------------------------------------ acknowledgement */

static void unlink_wait(struct tg_pipeline *p, struct tg_commit_wait *w)
{
    if (w->prev)
        w->prev->next = w->next;
    else
        p->waits = w->next;
    if (w->next)
        w->next->prev = w->prev;
    else
        p->waits_tail = w->prev;
    w->next = w->prev = NULL;
    w->queued = false;
}

/* The store committed a group: answer every wait it covers, oldest first. */
static void commit_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct tg_pipeline *p = arg;
    int err = TG_OK;
    tg_store_commit_drain(p->store);
    uint64_t done = tg_store_committed(p->store, &err);
    while (p->waits && (p->waits->ticket <= done || err)) {
        struct tg_commit_wait *w = p->waits;
        unlink_wait(p, w);
        w->cb(w, err);
    }
}

void tg_pipeline_after_commit(struct tg_pipeline *p, struct tg_commit_wait *w)
{
    int err = TG_OK;
    w->ticket = tg_store_ticket(p->store);
    w->next = w->prev = NULL;
    w->queued = false;
    if (!p->commit_ev) {
        w->cb(w, tg_store_flush(p->store));
        return;
    }
    if (tg_store_committed(p->store, &err) >= w->ticket || err) {
        w->cb(w, err);
        return;
    }
    /* tickets only grow: the list stays in ticket order by appending */
    w->prev = p->waits_tail;
    if (p->waits_tail)
        p->waits_tail->next = w;
    else
        p->waits = w;
    p->waits_tail = w;
    w->queued = true;
}

void tg_pipeline_settle(struct tg_pipeline *p)
{
    int err = p && p->waits ? tg_store_flush(p->store) : TG_OK;
    while (p && p->waits) {
        struct tg_commit_wait *w = p->waits;
        unlink_wait(p, w);
        w->cb(w, err);
    }
}

void tg_pipeline_commit_cancel(struct tg_pipeline *p, struct tg_commit_wait *w)
{
    if (w && w->queued)
        unlink_wait(p, w);
}

/* ------------------------------------------------------------ turns */

static struct tg_backend *answerer_backend(const struct tg_answerer *a, const char *name)
{
    for (size_t i = 0; name && i < a->n_backends; i++)
        if (strcmp(tg_backend_name(a->backends[i]), name) == 0)
            return a->backends[i];
    return NULL;
}

/* ------------------------------------------------------------ shared state */

/*
 * Make every glossary entry answerable: one FAQ document per term whose
 * question is the term and whose answer is the
 * definition with what the metric counts and leaves out.  A question such
 * as "合同履约率怎么算" then retrieves the business's own definition.
 */
static int index_glossary(struct tg_kb *kb)
{
    int rc = TG_OK;
    for (size_t i = 0; !rc && i < tg_kb_glossary_count(kb); i++) {
        const struct tg_kb_term *g = tg_kb_glossary_get(kb, i);
        struct tg_buf q, a, id;
        if (!g->cite) /* a translation is no passage */
            continue;
        tg_buf_init(&q, 1u << 16);
        tg_buf_init(&a, 1u << 16);
        tg_buf_init(&id, 1024);
        /* The term alone: synonyms already lead to it through query expansion,
         * and repeating them here would let the entry outrank real answers. */
        rc = tg_buf_puts(&q, g->term);
        if (!rc)
            rc = tg_buf_printf(&a, "%s：%s", g->term, g->definition);
        for (size_t k = 0; !rc && k < g->n_includes; k++)
            rc = tg_buf_printf(&a, "%s%s", k ? "、" : "计入：", g->includes[k]);
        if (!rc && g->n_includes)
            rc = tg_buf_puts(&a, "。");
        for (size_t k = 0; !rc && k < g->n_excludes; k++)
            rc = tg_buf_printf(&a, "%s%s", k ? "、" : "不计入：", g->excludes[k]);
        if (!rc && g->n_excludes)
            rc = tg_buf_puts(&a, "。");
        if (!rc)
            rc = tg_buf_printf(&id, "glossary:%s", g->term);
        if (!rc)
            rc = tg_kb_add_faq(kb, id.data, q.data, a.data, "glossary");
        tg_buf_free(&q);
        tg_buf_free(&a);
        tg_buf_free(&id);
    }
    return rc;
}

int tg_pipeline_load_policies(const struct tg_config *cfg, struct tg_policy **out, json_t *errs)
{
    struct tg_policy *all = NULL, *one = NULL;
    char base[4096];
    const char *slash = strrchr(cfg->path, '/');
    int rc = TG_OK;
    *out = NULL;
    snprintf(base, sizeof(base), "%.*s", slash ? (int)(slash - cfg->path) : 1,
             slash ? cfg->path : ".");
    for (size_t i = 0; i < cfg->n_policy_includes; i++) {
        const char *inc = cfg->policy_includes[i];
        char path[8300];
        snprintf(path, sizeof(path), inc[0] == '/' ? "%s%s" : "%s/%s", inc[0] == '/' ? "" : base,
                 inc);
        int r = tg_policy_load(path, &one, errs);
        if (r) {
            rc = rc ? rc : r;
        } else if (!all) {
            all = one;
        } else if ((r = tg_policy_merge(all, one)) != TG_OK) {
            rc = r;
        }
        one = NULL;
    }
    if (cfg->policy_rules) {
        int r = tg_policy_compile(cfg->policy_rules, tg_config_line_table(cfg), cfg->path, base,
                                  &one, errs);
        if (r)
            rc = rc ? rc : r;
        else if (!all)
            all = one;
        else if ((r = tg_policy_merge(all, one)) != TG_OK)
            rc = r;
    }
    if (rc) {
        tg_policy_free(all);
        return rc;
    }
    *out = all;
    return TG_OK;
}

/* The key of the audit log's PII pseudonyms: random, made once, kept in the data directory. */
struct tg_privacy {
    uint8_t key[32];
    const struct tg_config *cfg;
};

/* DIR/pseudonym.key into key (32 bytes), made (0600) when there is none. */
static int load_pseudonym_key(uint8_t key[32], const char *dir, char *err, size_t errlen)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/pseudonym.key", dir);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        ssize_t n = read(fd, key, 32);
        close(fd);
        if (n == 32)
            return TG_OK;
        snprintf(err, errlen, "%s is damaged (expected 32 bytes)", path);
        return TG_E_IO;
    }
    if (tg_random_bytes(key, 32))
        return TG_E_INTERNAL;
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0 || write(fd, key, 32) != 32) {
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return TG_E_IO;
    }
    close(fd);
    return TG_OK;
}

/*
 * The store's privacy hooks (store.h): a customer id is kept as the keyed
 * pseudonym of its canonical form (tg_config_identity), so "Cust-1" and
 * "cust-1" are one customer for lookups and the four-eyes rule alike; an
 * id with no canonical form (not UTF-8, or too long) is taken as given.
 * Free text is masked as customer messages are, with the policy-number
 * pattern of the configuration in force.
 */
static int store_pseudonym_cb(void *arg, const char *id, char out[TG_STORE_KEY_MAX])
{
    const struct tg_privacy *pv = arg;
    struct tg_buf canon;
    char ps[33];
    tg_buf_init(&canon, 4 * 4096);
    bool ok = tg_config_identity(id, strlen(id), &canon) == TG_OK && canon.data;
    const char *v = ok ? canon.data : id;
    tg_pii_pseudonym(pv->key, sizeof(pv->key), "customer", v, strlen(v), ps);
    tg_buf_free(&canon);
    if (!ps[0])
        return TG_E_INTERNAL;
    tg_strlcpy(out, ps, TG_STORE_KEY_MAX);
    return TG_OK;
}

static int store_mask_cb(void *arg, const char *text, size_t len, struct tg_buf *out)
{
    const struct tg_privacy *pv = arg;
    return tg_pii_mask(text, len, pv->cfg ? pv->cfg->policy_pattern : NULL, out);
}

void tg_privacy_free(void *privacy)
{
    if (privacy)
        OPENSSL_cleanse(privacy, sizeof(struct tg_privacy));
    tg_free(privacy);
}

int tg_privacy_open(const struct tg_config *cfg, const char *dir, struct tg_store_privacy *hooks,
                    char *err, size_t errlen)
{
    struct tg_privacy *pv = tg_calloc(1, sizeof(*pv));
    if (!pv) {
        snprintf(err, errlen, "out of memory");
        return TG_E_NOMEM;
    }
    pv->cfg = cfg;
    int rc = load_pseudonym_key(pv->key, dir, err, errlen);
    if (rc) {
        tg_privacy_free(pv);
        return rc;
    }
    *hooks = (struct tg_store_privacy){.pseudonym = store_pseudonym_cb,
                                       .mask = store_mask_cb,
                                       .arg = pv,
                                       .release = tg_privacy_free};
    return TG_OK;
}

const uint8_t *tg_privacy_key(const struct tg_store_privacy *hooks)
{
    return ((const struct tg_privacy *)hooks->arg)->key;
}

/* The store at uri with the privacy hooks of the data directory it is in;
 * key (may be NULL) receives the pseudonym key. */
static int open_private(const struct tg_config *cfg, const char *uri, struct tg_store **st,
                        uint8_t key[32], char *err, size_t errlen)
{
    struct tg_store_privacy priv;
    char dir[4096];
    tg_store_local_dir(uri, cfg->data_dir, dir, sizeof(dir));
    int rc = tg_privacy_open(cfg, dir, &priv, err, errlen);
    if (rc)
        return rc;
    if (key)
        memcpy(key, tg_privacy_key(&priv), 32);
    rc = tg_store_open_private(uri, &priv, st, err, errlen);
    if (rc)
        tg_privacy_free(priv.arg); /* the store releases it once it has it */
    return rc;
}

int tg_pipeline_store_handle(struct tg_pipeline *p, struct tg_store **out, char *err,
                             size_t errlen)
{
    return open_private(p->cfg, p->store_uri, out, NULL, err, errlen);
}

/* The knowledge base and intent classifier of an answerer, as its config says. */
/*
 * kb.embeddings: the client, and a vector for every passage that lacks one.
 * An embeddings server that cannot be reached does not stop the gateway:
 * the passages without vectors are found by BM25 alone (with a warning),
 * and the next start embeds them.
 */
static int open_embeddings(struct tg_pipeline *p, struct tg_answerer *a, char *err, size_t errlen)
{
    const struct tg_config *cfg = a->cfg;
    struct tg_embed_conf ec = {
        .base_url = cfg->kb_embed_url,
        .model = cfg->kb_embed_model,
        .api_key = cfg->kb_embed_key,
        .query_prefix = cfg->kb_embed_query_prefix,
        .passage_prefix = cfg->kb_embed_passage_prefix,
        .dimensions = cfg->kb_embed_dimensions,
        .batch = cfg->kb_embed_batch,
        .timeout_ms = cfg->kb_embed_timeout_ms,
    };
    char why[512];
    size_t added = 0;
    int rc = tg_embedder_create(&ec, p->base, &a->embedder, err, errlen);
    if (rc)
        return rc;
    rc = tg_embed_kb(a->embedder, a->kb, &added, why, sizeof(why));
    if (rc == TG_E_NOMEM)
        return rc;
    if (rc)
        tg_warn("kb embeddings %s: %s; passages without a vector are found by BM25 alone",
                cfg->kb_embed_model, why);
    if (added)
        tg_info("kb embeddings %s: %zu passages embedded, %zu have vectors", cfg->kb_embed_model,
                added, tg_kb_vectors_count(a->kb));
    return TG_OK;
}

static int open_knowledge(struct tg_pipeline *p, struct tg_answerer *a, const char *kb_prefix,
                          const char *data_dir, char *err, size_t errlen)
{
    const struct tg_config *cfg = a->cfg;
    int rc = TG_OK;
    if (cfg->n_kb_paths || cfg->kb_glossary) {
        struct tg_kb_opts opts;
        tg_kb_opts_init(&opts);
        opts.k1 = cfg->kb_k1;
        opts.b = cfg->kb_b;
        opts.store_prefix = kb_prefix;
        rc = tg_kb_open(&opts, p->text, p->store, &a->kb, err, errlen);
        for (size_t i = 0; !rc && i < cfg->n_kb_paths; i++) {
            struct tg_kb_report rep = {0};
            rc = tg_kb_ingest(a->kb, cfg->kb_paths[i], &rep, err, errlen);
            if (!rc && (rep.added || rep.updated || rep.removed))
                tg_info("kb %s: %zu added, %zu updated, %zu removed, %zu unchanged",
                        cfg->kb_paths[i], rep.added, rep.updated, rep.removed, rep.skipped);
        }
        if (!rc && cfg->kb_glossary)
            rc = tg_kb_glossary_load(a->kb, cfg->kb_glossary, err, errlen);
        if (!rc)
            rc = index_glossary(a->kb);
        if (!rc && cfg->kb_embed_url)
            rc = open_embeddings(p, a, err, errlen);
        if (!rc)
            rc = tg_kb_save(a->kb);
        if (rc && !err[0])
            snprintf(err, errlen, "knowledge base: %s", tg_err_str(rc));
        if (rc)
            return rc;
    }
    if (cfg->intents_train) {
        char dir[4096];
        snprintf(dir, sizeof(dir), "%s", data_dir ? data_dir : p->cfg->data_dir);
        struct tg_buf kbx;
        tg_buf_init(&kbx, TG_BUF_UNLIMITED);
        rc = a->kb ? tg_intent_kb_examples(a->kb, &kbx) : TG_OK;
        if (!rc)
            rc = tg_intent_load_or_train_with(p->text, cfg->intents_train, kbx.data, kbx.len, dir,
                                              NULL, &a->intents, err, errlen);
        tg_buf_free(&kbx);
    }
    return rc;
}

/* Everything that answers under a->cfg: backends, knowledge, policies, ladder. */
static int answerer_open(struct tg_pipeline *p, struct tg_answerer *a, const char *kb_prefix,
                         const char *data_dir, char *err, size_t errlen)
{
    const struct tg_config *cfg = a->cfg;
    int rc;
    a->backends = tg_calloc(cfg->n_backends ? cfg->n_backends : 1, sizeof(*a->backends));
    if (!a->backends) {
        snprintf(err, errlen, "out of memory");
        return TG_E_NOMEM;
    }
    struct tg_backend_env env = {.base = p->base, .metrics = p->metrics};
    for (size_t i = 0; i < cfg->n_backends; i++) {
        rc = tg_backend_create(&cfg->backends[i], &env, &a->backends[i], err, errlen);
        if (rc)
            return rc;
        a->n_backends++;
    }
    rc = open_knowledge(p, a, kb_prefix, data_dir, err, errlen);
    if (rc)
        return rc;
    json_t *perrs = json_array();
    rc = perrs ? tg_pipeline_load_policies(cfg, &a->policy, perrs) : TG_E_NOMEM;
    if (rc) {
        snprintf(err, errlen, "%s",
                 json_array_size(perrs) ? json_string_value(json_array_get(perrs, 0))
                                        : "policies: out of memory");
        json_decref(perrs);
        return rc;
    }
    json_decref(perrs);
    a->route = answerer_backend(a, cfg->route_backend);
    if (!a->route && !cfg->ladder.present) {
        snprintf(err, errlen, "route.backend '%s' is not a configured backend",
                 cfg->route_backend ? cfg->route_backend : "");
        return TG_E_CONFIG;
    }
    rc = tg_ladder_build(cfg, a->backends, a->n_backends, p->metrics, &a->ladder, err, errlen);
    if (rc)
        return rc;
    if (!a->route)
        a->route = tg_ladder_first_backend(a->ladder);
    return TG_OK;
}

static void answerer_close(struct tg_answerer *a)
{
    tg_ladder_free(a->ladder);
    for (size_t i = 0; i < a->n_backends; i++)
        tg_backend_free(a->backends[i]);
    tg_free(a->backends);
    tg_embedder_free(a->embedder);
    tg_kb_close(a->kb);
    tg_intent_free(a->intents);
    tg_policy_free(a->policy);
}

/* ------------------------------------------------------------ variants */

/*
 * The config a variant answers with: `config: FILE` (relative to the main
 * config), or `release: NAME`, a release started as an experiment, written
 * out from the store as it was proposed into DATA/releases/NAME@VERSION
 * (the files in the deployment may have changed since) and checked against
 * its hash.
 */
static int variant_config(struct tg_pipeline *p, struct tg_answerer *a,
                          const struct tg_experiment_conf *e, const struct tg_variant_conf *v,
                          const char *where, const char *data_dir, char *err, size_t errlen)
{
    const char *rel = v->release, *file = v->config;
    char path[4400];
    json_t *record = NULL;
    int rc = TG_E_CONFIG;
    if (rel) {
        record = tg_release_latest(p->store, rel);
        const char *state = tg_json_str(record, "state", "");
        if (!record) {
            snprintf(err, errlen, "%s: no release named %s (trustgate release propose)", where,
                     rel);
            goto out;
        }
        if (strcmp(state, "experiment") != 0) {
            snprintf(err, errlen,
                     "%s: release %s v%lld is %s; only a release started as an experiment "
                     "answers customers (trustgate release start-experiment)",
                     where, rel, (long long)tg_json_int(record, "version", 0), state);
            goto out;
        }
        char dir[4200], sub[600];
        snprintf(dir, sizeof(dir), "%s/releases/%s@%lld", data_dir ? data_dir : p->cfg->data_dir,
                 rel, (long long)tg_json_int(record, "version", 0));
        if (tg_release_materialize(p->store, record, dir, path, sizeof(path), sub, sizeof(sub))) {
            snprintf(err, errlen, "%s: release %s: %s", where, rel, sub);
            goto out;
        }
        snprintf(a->release, sizeof(a->release), "%s@%lld", rel,
                 (long long)tg_json_int(record, "version", 0));
        /* the share the registry recorded should be the one configured */
        double total = 0, mine = v->share;
        for (size_t k = 0; k < e->n_variants; k++)
            total += e->variants[k].share;
        double want = tg_json_num(record, "share", 0), have = total > 0 ? mine / total : 0;
        if (want > 0 && (have < want - 0.005 || have > want + 0.005))
            tg_warn("%s: release %s was started as an experiment on %.1f%% of traffic; the "
                    "config gives its variant %.1f%%",
                    where, a->release, want * 100, have * 100);
    } else {
        const char *slash = strrchr(p->cfg->path, '/');
        if (file[0] == '/' || !slash)
            tg_strlcpy(path, file, sizeof(path));
        else
            snprintf(path, sizeof(path), "%.*s/%s", (int)(slash - p->cfg->path), p->cfg->path,
                     file);
    }
    struct tg_config *vc = NULL;
    json_t *errs = NULL;
    rc = tg_config_load(path, &vc, &errs);
    if (rc) {
        snprintf(err, errlen, "%s: %s", where,
                 json_array_size(errs) ? json_string_value(json_array_get(errs, 0)) : path);
        json_decref(errs);
        goto out;
    }
    a->cfg = vc;
    json_decref(tg_config_snapshot(vc, a->hash, NULL, NULL));
    if (record && strcmp(a->hash, tg_json_str(record, "hash", "")) != 0) {
        snprintf(err, errlen,
                 "%s: release %s written out from the store hashes to %.16s, not %.16s", where,
                 a->release, a->hash, tg_json_str(record, "hash", ""));
        rc = TG_E_CONFIG;
    }
out:
    json_decref(record);
    return rc;
}

static int open_variants(struct tg_pipeline *p, const char *data_dir, char *err, size_t errlen)
{
    for (size_t i = 0; i < p->cfg->n_experiments; i++) {
        const struct tg_experiment_conf *e = &p->cfg->experiments[i];
        for (size_t k = 0; k < e->n_variants; k++) {
            const struct tg_variant_conf *v = &e->variants[k];
            if (!v->release && !v->config)
                continue;
            char where[300], prefix[300];
            snprintf(where, sizeof(where), "%s:%d: experiments[%zu].variants[%zu]", p->cfg->path,
                     v->line, i, k);
            struct tg_answerer **grown = tg_realloc(p->alts, (p->n_alts + 1) * sizeof(*p->alts));
            struct tg_answerer *a = tg_calloc(1, sizeof(*a));
            if (grown)
                p->alts = grown;
            if (!grown || !a) {
                tg_free(a);
                snprintf(err, errlen, "out of memory");
                return TG_E_NOMEM;
            }
            p->alts[p->n_alts++] = a;
            a->experiment = e->name;
            a->variant = v->name;
            int rc = variant_config(p, a, e, v, where, data_dir, err, errlen);
            if (rc)
                return rc;
            /* the variant's knowledge base lives beside the main one in the store */
            snprintf(prefix, sizeof(prefix), "kb@%s/%s", a->experiment, a->variant);
            char sub[1024];
            rc = answerer_open(p, a, prefix, data_dir, sub, sizeof(sub));
            if (rc) {
                snprintf(err, errlen, "%s: %s: %s", where, a->cfg->path, sub);
                return rc;
            }
            tg_info("experiment %s: variant %s answers with %s (%.16s)", a->experiment, a->variant,
                    a->release[0] ? a->release : a->cfg->path, a->hash);
        }
    }
    return TG_OK;
}

const struct tg_answerer *tg_pipeline_answerer(const struct tg_pipeline *p, const char *experiment,
                                               const char *variant)
{
    for (size_t i = 0; i < p->n_alts; i++)
        if (!strcmp(p->alts[i]->experiment, experiment) && !strcmp(p->alts[i]->variant, variant))
            return p->alts[i];
    return NULL;
}

static int load_with_person(struct tg_pipeline *p);

/*
 * Which registered release the configuration in force is: the one whose
 * content hash it has (its name then goes into every audit leaf).  When a
 * release was promoted and the files in force are not it, say so: what
 * answers customers is then not what the registry says is in force.
 */
static void name_main_release(struct tg_pipeline *p)
{
    json_t *all = NULL, *r, *promoted = NULL, *match = NULL;
    size_t i;
    if (tg_store_blob_list(p->store, "release/", 100000, &all))
        return;
    json_array_foreach(all, i, r)
    {
        if (!strcmp(tg_json_str(r, "state", ""), "promoted"))
            promoted = r;
        if (!strcmp(tg_json_str(r, "hash", ""), p->main.hash) &&
            (!match || tg_json_int(r, "version", 0) > tg_json_int(match, "version", 0)))
            match = r;
    }
    if (match)
        snprintf(p->main.release, sizeof(p->main.release), "%s@%lld",
                 tg_json_str(match, "name", ""), (long long)tg_json_int(match, "version", 0));
    if (promoted && match != promoted &&
        strcmp(tg_json_str(promoted, "hash", ""), p->main.hash) != 0)
        tg_warn("the configuration in force (%.16s) is not the promoted release %s v%lld (%.16s): "
                "what answers customers is not what the registry says",
                p->main.hash, tg_json_str(promoted, "name", ""),
                (long long)tg_json_int(promoted, "version", 0), tg_json_str(promoted, "hash", ""));
    json_decref(all);
}

/* ------------------------------------------------------------ other nodes */

static void remote_cb(void *ctx, const char *id, const char *state)
{
    tg_review_sla_remote(((struct tg_pipeline *)ctx)->sla, id, state);
}

static int watch_changes(struct tg_pipeline *p);

static void rewatch_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    watch_changes(arg);
}

/* Other nodes changed review tasks; a lost connection (opened again, on
 * another descriptor) is watched again, or retried in a second. */
static void changes_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct tg_pipeline *p = arg;
    if (tg_store_changes(p->store, remote_cb, p) == TG_OK)
        return;
    event_free(p->changes_ev);
    p->changes_ev = NULL;
    if (watch_changes(p) != TG_OK) {
        struct timeval sec = {1, 0};
        event_base_once(p->base, -1, EV_TIMEOUT, rewatch_cb, p, &sec);
    }
}

static int watch_changes(struct tg_pipeline *p)
{
    int fd = tg_store_changes_fd(p->store);
    if (fd < 0 || p->changes_ev)
        return fd < 0 ? TG_E_DB : TG_OK;
    p->changes_ev = event_new(p->base, fd, EV_READ | EV_PERSIST, changes_cb, p);
    if (!p->changes_ev || event_add(p->changes_ev, NULL))
        return TG_E_NOMEM;
    return TG_OK;
}

static int open_pipeline(const struct tg_config *cfg, struct event_base *base, const char *data_dir,
                         bool variants, struct tg_pipeline **out, char *err, size_t errlen)
{
    struct tg_pipeline *p = tg_calloc(1, sizeof(*p));
    char uri[4200];
    int rc = TG_E_NOMEM;
    if (!p) {
        snprintf(err, errlen, "out of memory");
        return rc;
    }
    p->cfg = cfg;
    p->main.cfg = cfg;
    p->base = base;
    p->log_turns = true;
    if (data_dir)
        snprintf(uri, sizeof(uri), "sqlite:%s/trustgate.db", data_dir);
    else
        snprintf(uri, sizeof(uri), "%s", cfg->store_uri);
    p->metrics = tg_metrics_new();
    p->recent = tg_calloc(RECENT_SLOTS, sizeof(*p->recent));
    if (!p->metrics || !p->recent) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    /* the key first: the store converts what an older version kept in clear with it */
    rc = open_private(cfg, uri, &p->store, p->pseudonym_key, err, errlen);
    if (!rc && !(p->store_uri = tg_strdup(uri)))
        rc = TG_E_NOMEM;
    if (rc)
        goto out;
    tg_store_set_group_commit(p->store, cfg->group_commit_ms);
    if (base && tg_store_commit_fd(p->store) >= 0) {
        p->commit_ev = event_new(base, tg_store_commit_fd(p->store), EV_READ | EV_PERSIST,
                                 commit_cb, p);
        if (!p->commit_ev || event_add(p->commit_ev, NULL)) {
            snprintf(err, errlen, "cannot watch the store's commits");
            rc = TG_E_INTERNAL;
            goto out;
        }
    }
    rc = tg_audit_open(p->store, &p->audit);
    if (rc) {
        snprintf(err, errlen, "audit log in %s does not verify (%s); run `trustgate audit verify`",
                 uri, tg_err_str(rc));
        goto out;
    }
    rc = tg_text_open(&p->text, err, errlen);
    if (!rc)
        rc = tg_s2t_open(&p->s2t, err, errlen);
    if (!rc) {
        json_decref(tg_config_snapshot(cfg, p->main.hash, NULL, NULL));
        name_main_release(p);
        rc = answerer_open(p, &p->main, NULL, data_dir, err, errlen);
    }
    if (!rc && variants)
        rc = open_variants(p, data_dir, err, errlen);
    if (rc)
        goto out;
    {
        char dir[4096];
        tg_store_local_dir(uri, cfg->data_dir, dir, sizeof(dir));
        rc = tg_audit_signer_open(dir, cfg->audit_origin, &p->signer, err, errlen);
        if (rc)
            goto out;
    }
    rc = tg_review_sla_start(base, p->store, p->audit, &p->sla);
    if (!rc)
        rc = load_with_person(p);
    if (rc) {
        snprintf(err, errlen, "review deadlines: %s", tg_err_str(rc));
        goto out;
    }
    /* review.warn_before: when the console warns that a deadline is near */
    tg_review_sla_warn_before(p->sla, cfg->review.warn_before_ms);
    if (base && tg_store_shared(p->store) && (rc = watch_changes(p)) != TG_OK) {
        snprintf(err, errlen, "cannot listen for other nodes' changes: %s", tg_err_str(rc));
        goto out;
    }
    *out = p;
    p = NULL;
    rc = TG_OK;
out:
    if (p)
        tg_pipeline_close(p);
    return rc;
}

int tg_pipeline_open(const struct tg_config *cfg, struct event_base *base, const char *data_dir,
                     struct tg_pipeline **out, char *err, size_t errlen)
{
    return open_pipeline(cfg, base, data_dir, true, out, err, errlen);
}

int tg_pipeline_open_in_force(const struct tg_config *cfg, struct event_base *base,
                              const char *data_dir, struct tg_pipeline **out, char *err,
                              size_t errlen)
{
    return open_pipeline(cfg, base, data_dir, false, out, err, errlen);
}

void tg_pipeline_close(struct tg_pipeline *p)
{
    if (!p)
        return;
    answerer_close(&p->main);
    for (size_t i = 0; i < p->n_alts; i++) {
        answerer_close(p->alts[i]);
        tg_config_free((struct tg_config *)p->alts[i]->cfg);
        tg_free(p->alts[i]);
    }
    tg_free(p->alts);
    tg_review_sla_free(p->sla);
    tg_text_close(p->text);
    tg_s2t_close(p->s2t);
    tg_audit_close(p->audit);
    tg_audit_signer_free(p->signer);
    if (p->commit_ev)
        event_free(p->commit_ev);
    if (p->changes_ev)
        event_free(p->changes_ev);
    tg_store_close(p->store);
    tg_metrics_free(p->metrics);
    tg_free(p->recent);
    tg_free(p->store_uri);
    json_decref(p->with_person);
    tg_free(p);
}

static size_t recent_slot(const char *customer_id)
{
    return (size_t)(tg_fnv1a64(customer_id, strlen(customer_id), TG_FNV64_INIT) % RECENT_SLOTS);
}

const struct tg_conversation *tg_pipeline_recent(const struct tg_pipeline *p,
                                                 const char *customer_id)
{
    if (!p->recent || !customer_id[0])
        return NULL;
    const struct tg_conversation *c = &p->recent[recent_slot(customer_id)];
    return strcmp(c->customer_id, customer_id) == 0 ? c : NULL;
}

void tg_pipeline_remember(struct tg_pipeline *p, const struct tg_conversation *c)
{
    if (p->recent && c->customer_id[0])
        p->recent[recent_slot(c->customer_id)] = *c;
}

int tg_pipeline_with_person(struct tg_pipeline *p, const char *conversation_id,
                            const char *review_id)
{
    int rc = TG_OK;
    if (!p->with_person || !conversation_id || !conversation_id[0])
        return TG_OK;
    if (review_id)
        rc = tg_json_set(p->with_person, conversation_id, json_string(review_id));
    else
        json_object_del(p->with_person, conversation_id);
    return rc;
}

int tg_pipeline_task_changed(struct tg_pipeline *p, const json_t *task)
{
    const char *conv = tg_json_str(task, "conversation_id", NULL);
    const char *id = tg_json_str(task, "id", "");
    int rc = TG_OK;
    if (!conv || !p->with_person)
        return TG_OK;
    if (!strcmp(tg_json_str(task, "state", ""), "handed_off"))
        rc = tg_pipeline_with_person(p, conv, id);
    else if (!strcmp(tg_json_str(p->with_person, conv, ""), id))
        rc = tg_pipeline_with_person(p, conv, NULL); /* closed (or decided): back to the AI */
    return rc;
}

static int with_person_cb(void *ctx, const struct tg_review_row *row)
{
    struct tg_pipeline *p = ctx;
    return tg_pipeline_with_person(p, row->conversation_id, row->id);
}

/* The hand-offs still open when the gateway starts: conversation and task
 * ids only, read from the tasks' key columns, never the tasks. */
static int load_with_person(struct tg_pipeline *p)
{
    p->with_person = json_object();
    if (!p->with_person)
        return TG_E_NOMEM;
    return tg_store_review_scan(p->store, "handed_off", with_person_cb, p);
}
