/*
 * identifiers.c - personal identifiers in a customer's words, for the
 * entity extractor (entities_int.h): e-mail addresses; runs of digits
 * checked as resident ID numbers (GB 11643-1999: checksum and birth date),
 * bank cards (Luhn) and mobile numbers (with +86 / 0086 or without, whole
 * or grouped); policy numbers through the configured PCRE2 pattern.
 */
#include "text/entities_int.h"

#include <pthread.h>
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

static int push_pii(struct tg_entities *e, size_t start, size_t end, enum tg_pii_type type)
{
    if (tg_grow(&e->pii, &e->cap_pii, e->n_pii, sizeof(*e->pii), 8))
        return TG_E_NOMEM;
    e->pii[e->n_pii++] = (struct tg_pii){(uint32_t)start, (uint32_t)end, type};
    return TG_OK;
}

bool ent_overlaps_pii(const struct tg_pii *v, size_t n, size_t start, size_t end)
{
    size_t lo = 0, hi = n;
    while (lo < hi) { /* the first span that ends after start */
        size_t mid = lo + (hi - lo) / 2;
        if (v[mid].end <= start)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n && v[lo].start < end;
}

/* ------------------------------------------------------------ e-mail */

static bool email_local_char(unsigned char c)
{
    return tg_ascii_alnum(c) || c == '.' || c == '_' || c == '%' || c == '+' || c == '-';
}

static bool email_domain_char(unsigned char c)
{
    return tg_ascii_alnum(c) || c == '.' || c == '-';
}

/* A domain of at least two dot-separated labels, none empty or starting or
 * ending with '-', the last of two or more letters. */
static bool email_domain_ok(const char *d, size_t n)
{
    size_t labels = 0, s = 0;
    bool tld = false;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && d[i] != '.')
            continue;
        if (i == s || d[s] == '-' || d[i - 1] == '-')
            return false;
        labels++;
        tld = i - s >= 2;
        for (size_t j = s; j < i; j++)
            tld = tld && tg_ascii_alpha((unsigned char)d[j]);
        s = i + 1;
    }
    return labels >= 2 && tld;
}

int ent_find_emails(struct ent_scan *sc)
{
    const char *t = sc->in.t;
    size_t floor = 0, at = 0;
    const char *hit;
    int rc = TG_OK;
    while (at < sc->in.len && (hit = memchr(t + at, '@', sc->in.len - at)) != NULL) {
        size_t a = (size_t)(hit - t), s = a, e = a + 1;
        at = a + 1;
        while (s > floor && email_local_char((unsigned char)t[s - 1]))
            s--;
        while (s < a && t[s] == '.')
            s++;
        if (s == a || t[a - 1] == '.' || memmem(t + s, a - s, "..", 2))
            continue;
        while (e < sc->in.len && email_domain_char((unsigned char)t[e]))
            e++;
        while (e > a + 1 && (t[e - 1] == '.' || t[e - 1] == '-'))
            e--;
        if (!email_domain_ok(t + a + 1, e - a - 1))
            continue;
        rc = push_pii(sc->out, s, e, TG_PII_EMAIL);
        if (rc)
            break;
        floor = e;
        at = e;
    }
    return rc;
}

/* ------------------------------------------------------------ digit identifiers */

/* Groups of digits separated by one space or dash: "6222 0212 3456 7890". */
#define MAX_GROUPS 8
struct group {
    size_t start, end;
    int ndig; /* digits, a final X of an ID number included */
    char sep; /* the separator before the next group */
};

struct chain {
    struct group g[MAX_GROUPS];
    int n;
    bool plus;       /* a '+' just before the first group */
    bool open_left;  /* the first group touches letters or a decimal point */
    bool open_right; /* so does the last */
};

/* The digits (and X) of groups [i, i + m) into buf; returns how many. */
static int chain_digits(const struct ent_scan *sc, const struct chain *c, int i, int m, char *buf,
                        int cap)
{
    int k = 0;
    for (int j = i; j < i + m; j++) {
        size_t pos = c->g[j].start;
        while (pos < c->g[j].end && k < cap) {
            uint32_t cp;
            size_t n = tg_scan_char(&sc->in, pos, &cp);
            int d = tg_digit_value(cp);
            buf[k++] = d >= 0 ? (char)('0' + d) : 'X';
            pos += n;
        }
    }
    return k;
}

static bool real_date(int y, int m, int d)
{
    static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (y < 1900 || y > 2099 || m < 1 || m > 12 || d < 1)
        return false;
    return d <= mdays[m - 1] + (m == 2 && leap);
}

/*
 * Resident ID number, GB 11643-1999: 17 digits and a check character.  The
 * weighted sum of the digits (weights 7 9 10 5 8 4 2 1 6 3 7 9 10 5 8 4 2)
 * mod 11 indexes "10X98765432"; digits 7-14 are a real birth date.
 */
static bool id_card_ok(const char *d)
{
    static const int w[17] = {7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2};
    int sum = 0;
    char check = d[17] == 'x' ? 'X' : d[17];
    if (d[0] == '0')
        return false; /* region codes start at 1 */
    for (int i = 0; i < 17; i++) {
        if (d[i] < '0' || d[i] > '9')
            return false;
        sum += (d[i] - '0') * w[i];
    }
    if ("10X98765432"[sum % 11] != check)
        return false;
    return real_date((d[6] - '0') * 1000 + (d[7] - '0') * 100 + (d[8] - '0') * 10 + (d[9] - '0'),
                     (d[10] - '0') * 10 + (d[11] - '0'), (d[12] - '0') * 10 + (d[13] - '0'));
}

/* The Luhn algorithm (ISO/IEC 7812-1 check digit) over n digits. */
static bool luhn_ok(const char *d, int n)
{
    int sum = 0;
    if (d[0] == '0')
        return false;
    for (int i = 0; i < n; i++) {
        int v = d[n - 1 - i] - '0';
        if (v < 0 || v > 9)
            return false;
        if (i % 2 == 1) {
            v *= 2;
            if (v > 9)
                v -= 9;
        }
        sum += v;
    }
    return sum % 10 == 0;
}

static bool mobile_ok(const char *d, int n)
{
    if (n != 11 || d[0] != '1' || d[1] < '3' || d[1] > '9')
        return false;
    for (int i = 0; i < n; i++)
        if (d[i] < '0' || d[i] > '9')
            return false;
    return true;
}

/* Groups [i, i + m) have the given sizes and one kind of separator. */
static bool groups_are(const struct chain *c, int i, int m, const int *sizes)
{
    if (i + m > c->n)
        return false;
    for (int j = i; j < i + m; j++) {
        if (c->g[j].ndig != sizes[j - i])
            return false;
        if (j > i && c->g[j - 1].sep != c->g[i].sep)
            return false;
    }
    return true;
}

/* A mobile number written as one group or as 3-4-4 at group i; returns the
 * groups it takes, 0 if none. */
static int mobile_at(const struct ent_scan *sc, const struct chain *c, int i)
{
    static const int g344[3] = {3, 4, 4};
    char d[24];
    if (c->g[i].ndig == 11 && mobile_ok(d, chain_digits(sc, c, i, 1, d, 24)))
        return 1;
    if (groups_are(c, i, 3, g344) && mobile_ok(d, chain_digits(sc, c, i, 3, d, 24)))
        return 3;
    return 0;
}

static bool country_code(const char *d, int k)
{
    return (k == 2 && memcmp(d, "86", 2) == 0) || (k == 4 && memcmp(d, "0086", 4) == 0);
}

/* A mobile number behind +86 / 86 / 0086, apart or joined, at group i. */
static int prefixed_mobile_at(const struct ent_scan *sc, const struct chain *c, int i)
{
    char d[24];
    int k = chain_digits(sc, c, i, 1, d, 24), m;
    if (i + 1 < c->n && country_code(d, k) && (m = mobile_at(sc, c, i + 1)) > 0)
        return 1 + m;
    if ((k == 13 || k == 15) && country_code(d, k - 11) && mobile_ok(d + k - 11, 11))
        return 1;
    return 0;
}

/* An ID number written 6-8-4 or 6-4-4-4, or a card number in groups of
 * four, at group i. */
static int grouped_id_at(const struct ent_scan *sc, const struct chain *c, int i,
                         enum tg_pii_type *type)
{
    static const int id684[3] = {6, 8, 4}, id6444[4] = {6, 4, 4, 4}, card[4] = {4, 4, 4, 4};
    char d[24];
    int m = groups_are(c, i, 3, id684) ? 3 : groups_are(c, i, 4, id6444) ? 4 : 0;
    if (m && chain_digits(sc, c, i, m, d, 24) == 18 && id_card_ok(d)) {
        *type = TG_PII_ID_CARD;
        return m;
    }
    if (!groups_are(c, i, 4, card))
        return 0;
    m = i + 4 < c->n && c->g[i + 4].ndig <= 3 && c->g[i + 3].sep == c->g[i].sep ? 5 : 4;
    *type = TG_PII_BANK_CARD;
    return luhn_ok(d, chain_digits(sc, c, i, m, d, 24)) ? m : 0;
}

/* Try every identifier shape at group i of the chain.  Returns the groups
 * the identifier takes (0: none) and sets its type and start. */
static int identify(const struct ent_scan *sc, const struct chain *c, int i, enum tg_pii_type *type,
                    size_t *start)
{
    char d[24];
    int k, m;
    *start = c->plus && i == 0 ? c->g[0].start - 1 : c->g[i].start;
    *type = TG_PII_MOBILE;
    if ((m = prefixed_mobile_at(sc, c, i)) > 0)
        return m;
    *start = c->g[i].start;
    if ((m = grouped_id_at(sc, c, i, type)) > 0)
        return m;
    *type = TG_PII_MOBILE;
    if ((m = mobile_at(sc, c, i)) > 0)
        return m;
    k = chain_digits(sc, c, i, 1, d, 24);
    if (k == 18 && id_card_ok(d)) {
        *type = TG_PII_ID_CARD;
        return 1;
    }
    *type = TG_PII_BANK_CARD;
    return k >= 16 && k <= 19 && luhn_ok(d, k) ? 1 : 0;
}

/* A separator (one space or dash) at pos with a digit after it, before limit. */
static bool joined_at(const struct ent_scan *sc, size_t pos, size_t limit)
{
    return pos + 1 < limit && (sc->in.t[pos] == ' ' || sc->in.t[pos] == '-') &&
           tg_scan_digit_at(&sc->in, pos + 1);
}

/* One group of digits at pos; returns the position after it. */
static size_t read_group(const struct ent_scan *sc, size_t pos, size_t limit, struct group *g)
{
    uint32_t cp;
    size_t n;
    g->start = pos;
    while (pos < limit && (n = tg_scan_char(&sc->in, pos, &cp)) && tg_digit_value(cp) >= 0) {
        g->ndig++;
        pos += n;
    }
    /* The check character X ends an ID number: 17 digits, or 6-8-4 / 6-4-4-4. */
    if ((g->ndig == 17 || g->ndig == 3) && pos < limit &&
        (sc->in.t[pos] == 'X' || sc->in.t[pos] == 'x') &&
        !(pos + 1 < sc->in.len && tg_ascii_alnum((unsigned char)sc->in.t[pos + 1]))) {
        g->ndig++;
        pos++;
    }
    g->end = pos;
    return pos;
}

/* Read the chain of digit groups starting at pos (a digit), stopping before
 * limit.  Returns the position after it. */
static size_t read_chain(const struct ent_scan *sc, size_t pos, size_t limit, struct chain *c)
{
    uint32_t cp;
    memset(c, 0, sizeof(*c));
    tg_scan_char_before(&sc->in, pos, &cp);
    c->plus = cp == '+';
    c->open_left = tg_ascii_alpha(cp) || cp == '.' || cp == '_';
    for (;;) {
        struct group *g = &c->g[c->n++];
        pos = read_group(sc, pos, limit, g);
        if (c->n == MAX_GROUPS || !joined_at(sc, pos, limit))
            break;
        g->sep = sc->in.t[pos];
        pos++;
    }
    tg_scan_char(&sc->in, pos, &cp);
    c->open_right = tg_ascii_alpha(cp) || cp == '_' ||
                    (cp == '.' && tg_scan_digit_at(&sc->in, pos + 1)) ||
                    (c->n == MAX_GROUPS && joined_at(sc, pos, sc->in.len));
    return pos;
}

int ent_find_digit_ids(struct ent_scan *sc, size_t n_email)
{
    size_t pos = 0, ei = 0;
    struct chain c;
    int rc = TG_OK;
    while (pos < sc->in.len && rc == TG_OK) {
        const struct tg_pii *em = sc->out->pii; /* may move as identifiers are added */
        size_t limit;
        if (ei < n_email && pos >= em[ei].start) {
            pos = TG_MAX(pos, (size_t)em[ei].end);
            ei++;
            continue;
        }
        limit = ei < n_email ? em[ei].start : sc->in.len;
        if (!tg_scan_digit_at(&sc->in, pos)) {
            pos++;
            continue;
        }
        pos = read_chain(sc, pos, limit, &c);
        for (int i = 0; i < c.n && rc == TG_OK;) {
            enum tg_pii_type type;
            size_t start;
            int m = identify(sc, &c, i, &type, &start);
            bool bounded = m > 0 && !(i == 0 && c.open_left) && !(i + m == c.n && c.open_right);
            if (bounded)
                rc = push_pii(sc->out, start, c.g[i + m - 1].end, type);
            i += bounded ? m : 1;
        }
    }
    return rc;
}

/* ------------------------------------------------------------ policy numbers */

/*
 * The compiled policy pattern.  One entry is cached for the process,
 * guarded by policy_lock: extraction runs on every message with the same
 * pattern, so it is compiled (and JIT-compiled) once.  Each user holds a
 * reference, so a new pattern can replace the entry while another thread
 * still matches with the old one.
 */
struct policy_re {
    char *pattern;
    pcre2_general_context *gctx;
    pcre2_code *code;
    unsigned refs;
};

static pthread_mutex_t policy_lock = PTHREAD_MUTEX_INITIALIZER;
static struct policy_re *policy_cache;

static void *re_malloc(PCRE2_SIZE n, void *data)
{
    (void)data;
    return tg_malloc(n);
}

static void re_free(void *p, void *data)
{
    (void)data;
    tg_free(p);
}

static void policy_re_free(struct policy_re *re)
{
    if (!re)
        return;
    pcre2_code_free(re->code);
    pcre2_general_context_free(re->gctx);
    tg_free(re->pattern);
    tg_free(re);
}

static int policy_compile(const char *pattern, struct policy_re **out)
{
    int rc = TG_E_NOMEM, err;
    PCRE2_SIZE off;
    pcre2_compile_context *cctx = NULL;
    struct policy_re *re = tg_calloc(1, sizeof(*re));
    if (!re)
        goto out;
    re->pattern = tg_strdup(pattern);
    re->gctx = pcre2_general_context_create(re_malloc, re_free, NULL);
    if (!re->pattern || !re->gctx)
        goto out;
    cctx = pcre2_compile_context_create(re->gctx);
    if (!cctx)
        goto out;
    /* MATCH_INVALID_UTF: a stray byte in a message must not stop the search. */
    re->code = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED,
                             PCRE2_UTF | PCRE2_MATCH_INVALID_UTF, &err, &off, cctx);
    if (!re->code) {
        rc = err == PCRE2_ERROR_HEAP_FAILED ? TG_E_NOMEM : TG_E_CONFIG;
        goto out;
    }
    (void)pcre2_jit_compile(re->code, PCRE2_JIT_COMPLETE); /* the interpreter serves without JIT */
    re->refs = 1;
    *out = re;
    re = NULL;
    rc = TG_OK;
out:
    pcre2_compile_context_free(cctx);
    policy_re_free(re);
    return rc;
}

static void policy_release(struct policy_re *re)
{
    bool last;
    pthread_mutex_lock(&policy_lock);
    last = --re->refs == 0;
    pthread_mutex_unlock(&policy_lock);
    if (last)
        policy_re_free(re);
}

/* A reference to the compiled pattern, from the cache or compiled now. */
static int policy_acquire(const char *pattern, struct policy_re **out)
{
    struct policy_re *re = NULL, *drop = NULL;
    int rc = TG_OK;
    pthread_mutex_lock(&policy_lock);
    if (policy_cache && strcmp(policy_cache->pattern, pattern) == 0) {
        policy_cache->refs++;
        re = policy_cache;
    }
    pthread_mutex_unlock(&policy_lock);
    if (re)
        goto out;
    rc = policy_compile(pattern, &re); /* outside the lock: compiling takes a while */
    if (rc)
        goto out;
    pthread_mutex_lock(&policy_lock);
    if (policy_cache && strcmp(policy_cache->pattern, pattern) == 0) {
        drop = re; /* another thread compiled it meanwhile */
        re = policy_cache;
        re->refs++;
    } else {
        if (policy_cache && --policy_cache->refs == 0)
            drop = policy_cache;
        policy_cache = re;
        re->refs++; /* one for the cache, one for the caller */
    }
    pthread_mutex_unlock(&policy_lock);
    policy_re_free(drop);
out:
    if (rc == TG_OK)
        *out = re;
    return rc;
}

/* Policy numbers are appended after the sorted, disjoint identifiers found
 * so far and may not overlap them. */
int ent_find_policy_numbers(struct ent_scan *sc, const char *pattern)
{
    struct policy_re *re = NULL;
    pcre2_match_data *md = NULL;
    size_t n_base = sc->out->n_pii, off = 0;
    int rc = policy_acquire(pattern, &re);
    if (rc)
        goto out;
    md = pcre2_match_data_create_from_pattern(re->code, re->gctx);
    if (!md) {
        rc = TG_E_NOMEM;
        goto out;
    }
    while (off < sc->in.len) {
        int m = pcre2_match(re->code, (PCRE2_SPTR)sc->in.t, sc->in.len, off, 0, md, NULL);
        PCRE2_SIZE *ov;
        if (m < 0) {
            /* No more matches; a match or depth limit also ends the search. */
            rc = m == PCRE2_ERROR_NOMEMORY ? TG_E_NOMEM : TG_OK;
            break;
        }
        ov = pcre2_get_ovector_pointer(md);
        if (ov[1] <= ov[0]) { /* an empty match: step one character */
            off = ov[0] + 1;
            while (off < sc->in.len && ((unsigned char)sc->in.t[off] & 0xC0) == 0x80)
                off++;
            continue;
        }
        if (!ent_overlaps_pii(sc->out->pii, n_base, ov[0], ov[1])) {
            rc = push_pii(sc->out, ov[0], ov[1], TG_PII_POLICY_NO);
            if (rc)
                break;
        }
        off = ov[1];
    }
out:
    pcre2_match_data_free(md);
    if (re)
        policy_release(re);
    return rc;
}
