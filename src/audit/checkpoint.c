/*
 * checkpoint.c - signed tree heads of the audit log, in the C2SP
 * tlog-checkpoint form (a signed note): anyone holding an earlier
 * checkpoint and the log's public key can check that the log only grew
 * since (with a consistency proof), so the operator cannot rewrite history
 * without being caught.  See audit.h.
 *
 *   <origin>\n<tree size>\n<base64 root hash>\n
 *   \n
 *   — <key name> <base64(key id[4] || Ed25519 signature)>\n
 *
 * The key id is the first four bytes of SHA-256(name || "\n" || 0x01 ||
 * public key) (C2SP signed-note, Ed25519 type 0x01); the signature covers
 * the note text, the lines before the blank one.
 */
#include "audit/audit.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define EM_DASH "\xe2\x80\x94"

struct tg_audit_signer {
    EVP_PKEY *key;
    char name[128];
    uint8_t pub[32];
    uint8_t id[4];
};

static void key_id(const char *name, const uint8_t pub[32], uint8_t id[4])
{
    const uint8_t type = 0x01;
    const void *parts[4] = {name, "\n", &type, pub};
    const size_t lens[4] = {strlen(name), 1, 1, 32};
    uint8_t h[TG_SHA256_LEN];
    tg_sha256_parts(parts, lens, 4, h);
    memcpy(id, h, 4);
}

static size_t b64(const uint8_t *in, size_t n, char *out)
{
    return (size_t)EVP_EncodeBlock((unsigned char *)out, in, (int)n);
}

/* Decode base64 into out (at most max bytes); -1 on bad input. */
static long unb64(const char *in, size_t n, uint8_t *out, size_t max)
{
    if (n == 0 || n % 4 != 0 || n / 4 * 3 > max + 2)
        return -1;
    uint8_t tmp[512];
    if (n / 4 * 3 > sizeof(tmp))
        return -1;
    int got = EVP_DecodeBlock(tmp, (const unsigned char *)in, (int)n);
    if (got < 0)
        return -1;
    size_t pad = (in[n - 1] == '=') + (in[n - 2] == '=');
    size_t len = (size_t)got - pad;
    if (len > max)
        return -1;
    memcpy(out, tmp, len);
    return (long)len;
}

int tg_audit_signer_open(const char *dir, const char *name, struct tg_audit_signer **out, char *err,
                         size_t errlen)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/audit-ed25519.pem", dir);
    EVP_PKEY *key = NULL;
    FILE *f = fopen(path, "r");
    if (f) {
        key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
        fclose(f);
        if (!key || EVP_PKEY_get_id(key) != EVP_PKEY_ED25519) {
            EVP_PKEY_free(key);
            snprintf(err, errlen, "%s is not an Ed25519 private key", path);
            return TG_E_IO;
        }
    } else {
        /* the first start makes the log's key; it never changes after */
        key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
        int fd = key ? open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600) : -1;
        FILE *w = fd >= 0 ? fdopen(fd, "w") : NULL;
        bool ok = w && PEM_write_PrivateKey(w, key, NULL, NULL, 0, NULL, NULL) == 1;
        if (w)
            ok = fclose(w) == 0 && ok;
        else if (fd >= 0)
            close(fd);
        if (!ok) {
            EVP_PKEY_free(key);
            snprintf(err, errlen, "cannot write the audit signing key %s: %s", path,
                     strerror(errno));
            return TG_E_IO;
        }
    }
    struct tg_audit_signer *s = tg_calloc(1, sizeof(*s));
    size_t publen = sizeof(s->pub);
    if (!s || EVP_PKEY_get_raw_public_key(key, s->pub, &publen) != 1 || publen != 32) {
        tg_free(s);
        EVP_PKEY_free(key);
        snprintf(err, errlen, "the audit signing key %s is unusable", path);
        return TG_E_INTERNAL;
    }
    s->key = key;
    tg_strlcpy(s->name, name, sizeof(s->name));
    key_id(s->name, s->pub, s->id);
    *out = s;
    return TG_OK;
}

void tg_audit_signer_free(struct tg_audit_signer *s)
{
    if (!s)
        return;
    EVP_PKEY_free(s->key);
    tg_free(s);
}

void tg_audit_signer_vkey(const struct tg_audit_signer *s, char *out, size_t outlen)
{
    uint8_t typed[33];
    char b[64];
    typed[0] = 0x01;
    memcpy(typed + 1, s->pub, 32);
    b64(typed, sizeof(typed), b);
    snprintf(out, outlen, "%s+%02x%02x%02x%02x+%s", s->name, s->id[0], s->id[1], s->id[2], s->id[3],
             b);
}

int tg_audit_checkpoint(const struct tg_audit_signer *s, uint64_t size,
                        const uint8_t root[TG_HASH_LEN], struct tg_buf *out)
{
    char root64[64], sig64[128], body[512];
    b64(root, TG_HASH_LEN, root64);
    int n =
        snprintf(body, sizeof(body), "%s\n%llu\n%s\n", s->name, (unsigned long long)size, root64);
    if (n < 0 || (size_t)n >= sizeof(body))
        return TG_E_INVAL;
    uint8_t sig[4 + 64];
    size_t siglen = 64;
    memcpy(sig, s->id, 4);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    bool ok = ctx && EVP_DigestSignInit(ctx, NULL, NULL, NULL, s->key) == 1 &&
              EVP_DigestSign(ctx, sig + 4, &siglen, (const unsigned char *)body, (size_t)n) == 1 &&
              siglen == 64;
    EVP_MD_CTX_free(ctx);
    if (!ok)
        return TG_E_INTERNAL;
    b64(sig, sizeof(sig), sig64);
    return tg_buf_printf(out, "%s\n" EM_DASH " %s %s\n", body, s->name, sig64);
}

int tg_audit_checkpoint_verify(const char *note, size_t len, const char *vkey, uint64_t *size,
                               uint8_t root[TG_HASH_LEN], char *err, size_t errlen)
{
    /* the key: name+hexid+base64(0x01 || public key) */
    char name[128];
    const char *p1 = strchr(vkey, '+'), *p2 = p1 ? strchr(p1 + 1, '+') : NULL;
    uint8_t typed[33], id[4];
    if (!p1 || !p2 || p2 - p1 != 9 || (size_t)(p1 - vkey) >= sizeof(name) ||
        unb64(p2 + 1, strlen(p2 + 1), typed, sizeof(typed)) != 33 || typed[0] != 0x01) {
        snprintf(err, errlen, "not an Ed25519 verifier key (NAME+ID+KEY)");
        return TG_E_PARSE;
    }
    snprintf(name, sizeof(name), "%.*s", (int)(p1 - vkey), vkey);
    key_id(name, typed + 1, id);
    /* the note: text, blank line, signature lines */
    const char *sep = NULL;
    for (size_t i = 0; i + 1 < len; i++)
        if (note[i] == '\n' && note[i + 1] == '\n') {
            sep = note + i + 1;
            break;
        }
    if (!sep) {
        snprintf(err, errlen, "not a signed note (no blank line before the signatures)");
        return TG_E_PARSE;
    }
    size_t text_len = (size_t)(sep - note);
    char text[512];
    if (text_len >= sizeof(text)) {
        snprintf(err, errlen, "the checkpoint is too long");
        return TG_E_PARSE;
    }
    memcpy(text, note, text_len);
    text[text_len] = '\0';
    char origin[128], root64[64];
    unsigned long long sz = 0;
    char tail;
    if (sscanf(text, "%127[^\n]\n%llu\n%63[^\n]\n%c", origin, &sz, root64, &tail) != 3 ||
        unb64(root64, strlen(root64), root, TG_HASH_LEN) != TG_HASH_LEN) {
        snprintf(err, errlen, "the checkpoint's body is not origin, size and a base64 root");
        return TG_E_PARSE;
    }
    if (strcmp(origin, name) != 0) {
        snprintf(err, errlen, "the checkpoint is of log '%s', the key of '%s'", origin, name);
        return TG_E_FORBIDDEN;
    }
    /* find our key's signature line */
    char want[200];
    snprintf(want, sizeof(want), EM_DASH " %s ", name);
    const char *line = sep + 1, *end = note + len;
    EVP_PKEY *pk = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, typed + 1, 32);
    bool ok = false;
    while (pk && line < end && !ok) {
        const char *nl = memchr(line, '\n', (size_t)(end - line));
        size_t ll = nl ? (size_t)(nl - line) : (size_t)(end - line);
        uint8_t sig[68];
        if (ll > strlen(want) && !memcmp(line, want, strlen(want)) &&
            unb64(line + strlen(want), ll - strlen(want), sig, sizeof(sig)) == 68 &&
            !memcmp(sig, id, 4)) {
            EVP_MD_CTX *ctx = EVP_MD_CTX_new();
            ok = ctx && EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, pk) == 1 &&
                 EVP_DigestVerify(ctx, sig + 4, 64, (const unsigned char *)text, text_len) == 1;
            EVP_MD_CTX_free(ctx);
        }
        line += ll + 1;
    }
    EVP_PKEY_free(pk);
    if (!ok) {
        snprintf(err, errlen, "no valid signature by %s on the checkpoint", name);
        return TG_E_FORBIDDEN;
    }
    *size = sz;
    return TG_OK;
}
