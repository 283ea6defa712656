/*
 * entities_int.h - private to the entity extractor: the scan shared by the
 * money reader (entities.c) and the identifier finders (identifiers.c).
 */
#ifndef TG_TEXT_ENTITIES_INT_H
#define TG_TEXT_ENTITIES_INT_H

#include "text/numbers.h"
#include "text/text.h"

/* The text being searched and where results go. */
struct ent_scan {
    struct tg_scan in;
    struct tg_entities *out;
};

/* Whether [start, end) overlaps one of the first n (sorted, disjoint) spans of v. */
bool ent_overlaps_pii(const struct tg_pii *v, size_t n, size_t start, size_t end);

/*
 * The identifier finders, run in this order by tg_entities_extract; each
 * appends to sc->out's identifiers.  E-mail addresses first; then digit
 * identifiers (ID numbers, bank cards, mobiles), stepping over the first
 * n_email identifiers (the e-mail addresses, sorted); then, after the list
 * is sorted, policy numbers matching pattern (a PCRE2 pattern, compiled
 * once and cached) that overlap none found so far.  TG_OK, TG_E_NOMEM, or
 * TG_E_CONFIG for a bad pattern.
 */
int ent_find_emails(struct ent_scan *sc);
int ent_find_digit_ids(struct ent_scan *sc, size_t n_email);
int ent_find_policy_numbers(struct ent_scan *sc, const char *pattern);

#endif
