/*
 * release.c - whether releases may be promoted: the freeze recorded in the
 * store (blob `release-state`), shared by `trustgate release` and the
 * server's fairness gate.  See eval.h.
 */
#include "eval/eval.h"

#include "audit/audit.h"
#include "store/store.h"

#include <stdlib.h>
#include <string.h>

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
