/*
 * keys_int.h -- what keys.c and keys_dkim.c share.
 */
#ifndef POSTHASTE_KEYS_INT_H
#define POSTHASTE_KEYS_INT_H

#include <stdint.h>

#include <openssl/evp.h>

struct mproc;
struct imsg;

/* keys_dkim.c */
void		 keys_dkim_parent(struct mproc *, struct imsg *);
void		 keys_dkim_tell(struct mproc *);
EVP_PKEY	*keys_dkim_key(uint32_t keyid);
/* keys.c: the set changed, tell every worker */
void		 keys_dkim_broadcast(void);

#endif
