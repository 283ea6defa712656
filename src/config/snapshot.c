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

static void add_file(json_t *files, const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return;
    struct tg_buf b;
    tg_buf_init(&b, TG_BUF_UNLIMITED);
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        tg_buf_append(&b, chunk, n);
    fclose(f);
    uint8_t h[TG_SHA256_LEN];
    char hex[2 * TG_SHA256_LEN + 1];
    tg_sha256(b.data ? b.data : "", b.len, h);
    tg_hex_encode(h, sizeof(h), hex);
    json_object_set_new(files, path, json_string(hex));
    tg_buf_free(&b);
}

static void add_tree(json_t *files, const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return;
    if (!S_ISDIR(st.st_mode)) {
        add_file(files, path);
        return;
    }
    DIR *d = opendir(path);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char sub[4200];
        snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
        add_tree(files, sub);
    }
    if (d)
        closedir(d);
}

json_t *tg_config_snapshot(const struct tg_config *cfg, char hash[2 * TG_SHA256_LEN + 1])
{
    json_t *files = json_object();
    const char *slash = strrchr(cfg->path, '/');
    char base[4096];
    snprintf(base, sizeof(base), "%.*s", slash ? (int)(slash - cfg->path) : 1,
             slash ? cfg->path : ".");
    add_file(files, cfg->path);
    size_t i;
    json_t *item;
    json_array_foreach(json_object_get(cfg->root, "policies"), i, item)
    {
        const char *inc = tg_json_str(item, "include", NULL);
        if (inc) {
            char p[8300];
            snprintf(p, sizeof(p), inc[0] == '/' ? "%s%s" : "%s/%s", inc[0] == '/' ? "" : base,
                     inc);
            add_file(files, p);
        }
    }
    for (i = 0; i < cfg->n_kb_paths; i++)
        add_tree(files, cfg->kb_paths[i]);
    if (cfg->kb_glossary)
        add_file(files, cfg->kb_glossary);
    if (cfg->intents_train)
        add_file(files, cfg->intents_train);
    json_t *settings = json_pack(
        "{s:O?, s:O?, s:O?}", "backends", json_object_get(cfg->root, "backends"), "route",
        json_object_get(cfg->root, "route"), "ladder", json_object_get(cfg->root, "ladder"));
    json_t *bundle = json_pack("{s:O, s:o}", "files", files, "settings", settings);
    size_t len;
    char *canon = bundle ? tg_json_canonical(bundle, &len) : NULL;
    uint8_t h[TG_SHA256_LEN];
    tg_sha256(canon ? canon : "", canon ? len : 0, h);
    tg_hex_encode(h, TG_SHA256_LEN, hash);
    tg_free(canon);
    json_decref(bundle);
    return files;
}
