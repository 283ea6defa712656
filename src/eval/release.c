/*
 * release.c - whether releases may be promoted: the freeze recorded in the
 * store (blob `release-state`), shared by `trustgate release` and the
 * server's fairness gate; and a release's files, kept in the store by
 * content (blobs `release-file/<sha256>`) and written out again where a
 * variant or an operator needs them.  See eval.h.
 */
#include "eval/eval.h"

#include "audit/audit.h"
#include "store/store.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

json_t *tg_release_state(struct tg_store *st)
{
    char *d = NULL;
    size_t len;
    json_t *s = NULL;
    if (tg_store_blob_get(st, "release-state", &d, &len) == TG_OK)
        s = json_loadb(d, len, 0, NULL);
    tg_free(d);
    return json_is_object(s) ? s : (json_decref(s), json_pack("{s:b}", "frozen", 0));
}

json_t *tg_release_latest(struct tg_store *st, const char *name)
{
    char prefix[300];
    json_t *all = NULL, *best = NULL, *r;
    size_t i;
    snprintf(prefix, sizeof(prefix), "release/%s/", name);
    if (tg_store_blob_list(st, prefix, 100000, &all))
        return NULL;
    json_array_foreach(all, i, r)
    {
        if (!strcmp(tg_json_str(r, "name", ""), name) &&
            (!best || tg_json_int(r, "version", 0) > tg_json_int(best, "version", 0)))
            best = r;
    }
    json_incref(best);
    json_decref(all);
    return best;
}

int tg_release_set_frozen(struct tg_store *st, struct tg_audit *audit, bool frozen, const char *by,
                          const char *why)
{
    int64_t now = tg_clock_wall_ms();
    json_t *s = json_pack("{s:b, s:s, s:s, s:I}", "frozen", frozen, "by", by, "why", why, "at",
                          (json_int_t)now);
    json_t *leaf = json_pack("{s:s, s:s, s:I, s:s, s:s, s:I}", "kind", "release", "action",
                             frozen ? "freeze" : "unfreeze", "version", (json_int_t)0, "by", by,
                             "why", why, "at", (json_int_t)now);
    char *str = s ? json_dumps(s, JSON_COMPACT) : NULL;
    int rc = str && leaf ? tg_audit_append_json(audit, leaf, NULL) : TG_E_NOMEM;
    if (!rc)
        rc = tg_store_blob_put(st, "release-state", str, strlen(str));
    if (!rc)
        rc = tg_store_flush(st);
    free(str);
    json_decref(s);
    json_decref(leaf);
    return rc;
}

/* ------------------------------------------------------------ release files */

int tg_release_keep_file(struct tg_store *st, const char *sha256_hex, const void *data, size_t len)
{
    char key[128];
    snprintf(key, sizeof(key), "release-file/%s", sha256_hex);
    return tg_store_blob_put(st, key, data, len);
}

/* A name safe to write under a directory: relative, no "..", no empty part. */
static bool safe_name(const char *n)
{
    if (!n[0] || n[0] == '/')
        return false;
    for (const char *p = n; *p;) {
        size_t k = strcspn(p, "/");
        if (k == 0 || (k == 2 && p[0] == '.' && p[1] == '.'))
            return false;
        p += k;
        if (*p == '/')
            p++;
    }
    return true;
}

static int mkdirs_for(const char *path)
{
    char d[4400];
    tg_strlcpy(d, path, sizeof(d));
    for (char *p = d + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(d, 0755) != 0 && errno != EEXIST)
            return TG_E_IO;
        *p = '/';
    }
    return TG_OK;
}

int tg_release_materialize(struct tg_store *st, const json_t *record, const char *dir, char *config,
                           size_t config_len, char *err, size_t errlen)
{
    const json_t *files = json_object_get(record, "files");
    const char *conf = tg_json_str(record, "config_file", NULL), *name;
    json_t *sha;
    if (!conf || !json_is_object(files)) {
        snprintf(err, errlen,
                 "release %s v%lld keeps no files (proposed before releases kept "
                 "their content); propose it again",
                 tg_json_str(record, "name", ""), (long long)tg_json_int(record, "version", 0));
        return TG_E_INVAL;
    }
    json_object_foreach((json_t *)files, name, sha)
    {
        char key[128], path[4400];
        char *data = NULL;
        size_t len = 0;
        uint8_t h[TG_SHA256_LEN];
        char hex[2 * TG_SHA256_LEN + 1];
        if (!safe_name(name)) {
            snprintf(err, errlen, "%s lies outside the release's folder; it cannot be written out",
                     name);
            return TG_E_INVAL;
        }
        snprintf(key, sizeof(key), "release-file/%s", json_string_value(sha));
        int rc = tg_store_blob_get(st, key, &data, &len);
        bool altered = false;
        if (!rc) {
            tg_sha256(data ? data : "", len, h);
            tg_hex_encode(h, sizeof(h), hex);
            altered = strcmp(hex, json_string_value(sha)) != 0;
        }
        if (rc || altered) {
            tg_free(data);
            snprintf(err, errlen, "the stored content of %s is %s", name,
                     altered               ? "altered"
                     : rc == TG_E_NOTFOUND ? "missing"
                                           : "unreadable");
            return altered ? TG_E_DB : rc;
        }
        snprintf(path, sizeof(path), "%s/%s", dir, name);
        /* a file already there with this content stays untouched (its time too) */
        struct tg_buf have;
        tg_buf_init(&have, TG_BUF_UNLIMITED);
        bool same = tg_buf_read_file(&have, path) == TG_OK && have.len == len &&
                    (!len || memcmp(have.data, data, len) == 0);
        tg_buf_free(&have);
        if (same) {
            tg_free(data);
            continue;
        }
        FILE *f = NULL;
        if (!mkdirs_for(path))
            f = fopen(path, "wb");
        bool ok = f && fwrite(data ? data : "", 1, len, f) == len;
        if (f && fclose(f) != 0)
            ok = false;
        tg_free(data);
        if (!ok) {
            snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
            return TG_E_IO;
        }
    }
    snprintf(config, config_len, "%s/%s", dir, conf);
    return TG_OK;
}
