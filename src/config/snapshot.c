/*
 * snapshot.c - the content of a release: every file a deployment reads to
 * answer customers (the config, its policy includes, the knowledge base,
 * the glossary, the intents' training set) with its SHA-256, and the
 * answering settings (backends, route, ladder), hashed together.  See
 * config.h (tg_config_snapshot).
 */
#include "config/config_int.h"

#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

struct snap {
    json_t *files;
    char base[4096]; /* the config's directory, "" when the config path has none */
    tg_snapshot_keep_fn keep;
    void *arg;
};

/* A file's name in the release: relative to the config's directory when it is
 * inside it, else the path as configured. */
static const char *key_of(const struct snap *s, const char *path)
{
    size_t n = strlen(s->base);
    if (n && strncmp(path, s->base, n) == 0 && path[n] == '/')
        return path + n + 1;
    return path;
}

/* The file at path with its SHA-256 into the snapshot (a file that cannot
 * be read is left out, so the hash changes).  TG_OK or TG_E_NOMEM. */
static int add_file(struct snap *sn, const char *path)
{
    struct tg_buf b;
    tg_buf_init(&b, TG_BUF_UNLIMITED);
    int rc = tg_buf_read_file(&b, path);
    if (rc) {
        tg_buf_free(&b);
        return rc == TG_E_NOMEM ? rc : TG_OK;
    }
    uint8_t h[TG_SHA256_LEN];
    char hex[2 * TG_SHA256_LEN + 1];
    tg_sha256(b.data ? b.data : "", b.len, h);
    tg_hex_encode(h, sizeof(h), hex);
    const char *key = key_of(sn, path);
    rc = tg_json_set(sn->files, key, json_string(hex));
    if (!rc && sn->keep)
        sn->keep(sn->arg, key, hex, b.data ? b.data : "", b.len);
    tg_buf_free(&b);
    return rc;
}

/* The file at path, or every file under the folder at path but hidden
 * ones, into the snapshot.  TG_OK or TG_E_NOMEM. */
static int add_tree(struct snap *sn, const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return TG_OK;
    if (!S_ISDIR(st.st_mode))
        return add_file(sn, path);
    DIR *d = opendir(path);
    struct dirent *e;
    int rc = TG_OK;
    while (!rc && d && (e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char sub[4200];
        snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
        rc = add_tree(sn, sub);
    }
    if (d)
        closedir(d);
    return rc;
}

/* The hash of files with the config's answering settings into hash.
 * TG_OK or TG_E_NOMEM. */
static int hash_bundle(const struct tg_config *cfg, json_t *files, char hash[2 * TG_SHA256_LEN + 1])
{
    json_t *settings = json_pack(
        "{s:O?, s:O?, s:O?}", "backends", json_object_get(cfg->root, "backends"), "route",
        json_object_get(cfg->root, "route"), "ladder", json_object_get(cfg->root, "ladder"));
    json_t *bundle = json_pack("{s:O, s:o}", "files", files, "settings", settings);
    size_t len;
    char *canon = bundle ? tg_json_canonical(bundle, &len) : NULL;
    uint8_t h[TG_SHA256_LEN];
    int rc = canon ? TG_OK : TG_E_NOMEM;
    if (canon) {
        tg_sha256(canon, len, h);
        tg_hex_encode(h, TG_SHA256_LEN, hash);
    }
    tg_free(canon);
    json_decref(bundle);
    return rc;
}

/* Out of memory: NULL, and hash "" (no release hashes to it). */
json_t *tg_config_snapshot(const struct tg_config *cfg, char hash[2 * TG_SHA256_LEN + 1],
                           tg_snapshot_keep_fn keep, void *arg)
{
    struct snap sn = {.files = json_object(), .keep = keep, .arg = arg};
    const char *slash = strrchr(cfg->path, '/');
    snprintf(sn.base, sizeof(sn.base), "%.*s", slash ? (int)(slash - cfg->path) : 0, cfg->path);
    json_t *files = sn.files;
    int rc = files ? add_file(&sn, cfg->path) : TG_E_NOMEM;
    size_t i;
    json_t *item;
    json_array_foreach(json_object_get(cfg->root, "policies"), i, item)
    {
        const char *inc = tg_json_str(item, "include", NULL);
        if (!rc && inc) {
            char p[8300];
            snprintf(p, sizeof(p), "%s%s%s", inc[0] == '/' || !sn.base[0] ? "" : sn.base,
                     inc[0] == '/' || !sn.base[0] ? "" : "/", inc);
            rc = add_file(&sn, p);
        }
    }
    for (i = 0; !rc && i < cfg->n_kb_paths; i++)
        rc = add_tree(&sn, cfg->kb_paths[i]);
    for (i = 0; !rc && i < cfg->n_workflows; i++)
        rc = add_file(&sn, cfg->workflow_paths[i]);
    if (!rc && cfg->kb_glossary)
        rc = add_file(&sn, cfg->kb_glossary);
    if (!rc && cfg->intents_train)
        rc = add_file(&sn, cfg->intents_train);
    if (!rc)
        rc = hash_bundle(cfg, files, hash);
    if (rc) {
        hash[0] = '\0';
        json_decref(files);
        files = NULL;
    }
    return files;
}
