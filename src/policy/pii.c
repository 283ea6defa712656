/*
 * pii.c - personal identifiers masked for replies and storage, and keyed
 * pseudonyms that let the audit log match identifiers it never holds.
 *
 * Masking finds identifiers with tg_entities_extract (text.h) and copies
 * everything else byte for byte.  Each mask keeps what lets a customer
 * recognise their own data and no more:
 *
 *   mobile     the first 3 and last 4 digits, a +86 / 0086 prefix as written
 *              ("138****5678", "+86 138 **** 5678")
 *   id_card    the first 4 and last 4 characters ("1101**********002X")
 *   bank_card  the last 4 digits ("************1234", "**** **** **** 1234")
 *   email      the first character of the local part (none when it is the
 *              only one) and the domain ("z***@example.com")
 *   policy_no  the first 2 and last 2 characters ("P2****23")
 *
 * Digits become one '*' each and separators stay, so the shape of a number
 * is what it was (these identifiers have fixed lengths anyway); e-mail
 * local parts and policy numbers, whose length says something, always get
 * a fixed run of stars.
 */
#include "policy/policy.h"
#include "text/text.h"

#include <string.h>

/* The bytes of the UTF-8 character at s (1 for an invalid byte). */
static size_t char_len(const char *s, size_t len)
{
    unsigned char c = (unsigned char)s[0];
    size_t n = c < 0x80 ? 1 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
    if (n > len)
        return 1;
    for (size_t i = 1; i < n; i++)
        if (((unsigned char)s[i] & 0xC0) != 0x80)
            return 1;
    return n;
}

/* Whether the character of n bytes at s is a digit (ASCII or full-width
 * "０".."９", EF BC 90..99) or the check character X of an ID number. */
static bool body_char(const char *s, size_t n)
{
    unsigned char c = (unsigned char)s[0];
    if (n == 1)
        return (c >= '0' && c <= '9') || c == 'X' || c == 'x';
    return n == 3 && c == 0xEF && (unsigned char)s[1] == 0xBC && (unsigned char)s[2] >= 0x90 &&
           (unsigned char)s[2] <= 0x99;
}

static size_t count_body(const char *s, size_t len)
{
    size_t k = 0, n;
    for (size_t i = 0; i < len; i += n) {
        n = char_len(s + i, len - i);
        k += body_char(s + i, n);
    }
    return k;
}

/* Copy a number, its digits [lo, hi) (counted from 0) replaced by '*'. */
static int mask_digits(const char *s, size_t len, size_t lo, size_t hi, struct tg_buf *out)
{
    size_t k = 0, n;
    int rc = TG_OK;
    for (size_t i = 0; i < len && rc == TG_OK; i += n) {
        n = char_len(s + i, len - i);
        if (body_char(s + i, n)) {
            rc = k >= lo && k < hi ? tg_buf_append(out, "*", 1) : tg_buf_append(out, s + i, n);
            k++;
        } else {
            rc = tg_buf_append(out, s + i, n);
        }
    }
    return rc;
}

static int mask_email(const char *s, size_t len, struct tg_buf *out)
{
    const char *at = memchr(s, '@', len);
    size_t local = at ? (size_t)(at - s) : len;
    int rc = TG_OK;
    if (local >= 2)
        rc = tg_buf_append(out, s, 1); /* the local part is ASCII (see entities.c) */
    if (rc == TG_OK)
        rc = tg_buf_append(out, "***", 3);
    if (rc == TG_OK)
        rc = tg_buf_append(out, s + local, len - local);
    return rc;
}

/* First and last k characters around "****": k = 2, less for short values
 * so that at least two characters stay hidden. */
static int mask_ends(const char *s, size_t len, struct tg_buf *out)
{
    size_t nchars = 0, k, head = 0, tail = len, n;
    int rc;
    for (size_t i = 0; i < len; i += char_len(s + i, len - i))
        nchars++;
    k = nchars >= 6 ? 2 : nchars >= 4 ? 1 : 0;
    for (size_t i = 0; i < k; i++)
        head += char_len(s + head, len - head);
    for (size_t i = 0; i < k; i++) {
        n = 1;
        while (n < tail && ((unsigned char)s[tail - n] & 0xC0) == 0x80)
            n++;
        tail -= n;
    }
    tail = TG_MAX(tail, head); /* invalid UTF-8 may count differently backwards */
    rc = tg_buf_append(out, s, head);
    if (rc == TG_OK)
        rc = tg_buf_append(out, "****", 4);
    if (rc == TG_OK)
        rc = tg_buf_append(out, s + tail, len - tail);
    return rc;
}

static int mask_one(const char *s, size_t len, enum tg_pii_type type, struct tg_buf *out)
{
    size_t n = count_body(s, len);
    switch (type) {
    case TG_PII_MOBILE: /* the last 11 digits are the number; 86 / 0086 before them stay */
        return mask_digits(s, len, n >= 11 ? n - 8 : 0, n >= 11 ? n - 4 : n, out);
    case TG_PII_ID_CARD:
        return mask_digits(s, len, 4, n >= 8 ? n - 4 : n, out);
    case TG_PII_BANK_CARD:
        return mask_digits(s, len, 0, n >= 4 ? n - 4 : n, out);
    case TG_PII_EMAIL:
        return mask_email(s, len, out);
    case TG_PII_POLICY_NO:
        return mask_ends(s, len, out);
    }
    return mask_ends(s, len, out);
}

/*
 * Beyond policy.h: the masked text is appended to out (which may hold
 * text already); on any failure out is as it was.  Returns TG_OK,
 * TG_E_NOMEM, TG_E_CONFIG for a bad policy pattern, TG_E_TOOBIG when out
 * would pass its maximum (or the text 4 GiB), TG_E_INVAL for a NULL text
 * of non-zero length.  A NULL or empty pattern finds no policy numbers.
 */
int tg_pii_mask(const char *text, size_t len, const char *policy_pattern, struct tg_buf *out)
{
    struct tg_entity_opts opts = {.policy_pattern = policy_pattern};
    struct tg_entities e;
    size_t old = out->len, pos = 0;
    int rc;
    tg_entities_init(&e);
    rc = tg_entities_extract(text, len, &opts, &e);
    for (size_t i = 0; rc == TG_OK && i < e.n_pii; i++) {
        const struct tg_pii *p = &e.pii[i];
        rc = tg_buf_append(out, text + pos, p->start - pos);
        if (rc == TG_OK)
            rc = mask_one(text + p->start, p->end - p->start, p->type, out);
        pos = p->end;
    }
    if (rc == TG_OK)
        rc = tg_buf_append(out, len ? text + pos : "", len - pos);
    if (rc && out->data) {
        out->len = old;
        out->data[old] = '\0';
    }
    tg_entities_free(&e);
    return rc;
}

/*
 * HMAC-SHA256 (RFC 2104) of type ":" value without copying them together,
 * for values too long for the stack buffer of tg_pii_pseudonym.  False when
 * libcrypto fails.
 */
static bool hmac_parts(const uint8_t *key, size_t keylen, const char *type, const char *value,
                       size_t len, uint8_t mac[TG_SHA256_LEN])
{
    uint8_t k[64] = {0}, ipad[64], opad[64], inner[TG_SHA256_LEN];
    const void *in[4] = {ipad, type, ":", value};
    size_t in_len[4] = {64, strlen(type), 1, len};
    const void *outer[2] = {opad, inner};
    const size_t outer_len[2] = {64, TG_SHA256_LEN};
    bool ok;
    if (keylen > 64)
        tg_sha256(key, keylen, k);
    else if (keylen)
        memcpy(k, key, keylen);
    for (size_t i = 0; i < 64; i++) {
        ipad[i] = k[i] ^ 0x36;
        opad[i] = k[i] ^ 0x5c;
    }
    ok = tg_sha256_parts(in, in_len, 4, inner) && tg_sha256_parts(outer, outer_len, 2, mac);
    explicit_bzero(k, sizeof(k));
    explicit_bzero(ipad, sizeof(ipad));
    explicit_bzero(opad, sizeof(opad));
    return ok;
}

/*
 * Beyond policy.h: key may be NULL when keylen is 0; type is a
 * NUL-terminated name ("mobile").  Type, ":" and value are hashed from a
 * stack buffer when they fit 256 bytes, else piecewise (RFC 2104 over
 * tg_sha256_parts); out is "" in the unlikely case that libcrypto fails
 * on that second path.
 */
void tg_pii_pseudonym(const uint8_t *key, size_t keylen, const char *type, const char *value,
                      size_t len, char out[33])
{
    static const uint8_t no_key[1];
    uint8_t mac[TG_SHA256_LEN] = {0};
    char msg[256];
    size_t tlen = strlen(type);
    bool ok = true;
    if (!key)
        key = no_key;
    if (tlen + 1 + len <= sizeof(msg)) {
        memcpy(msg, type, tlen);
        msg[tlen] = ':';
        if (len)
            memcpy(msg + tlen + 1, value, len);
        tg_hmac_sha256(key, keylen, msg, tlen + 1 + len, mac);
        explicit_bzero(msg, sizeof(msg));
    } else {
        ok = hmac_parts(key, keylen, type, value, len, mac);
    }
    if (ok)
        tg_hex_encode(mac, 16, out);
    else
        out[0] = '\0';
    explicit_bzero(mac, sizeof(mac));
}
