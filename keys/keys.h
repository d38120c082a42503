/*
 * keys.h -- the keys process's interface (keys.c): its entry point is
 * in proc.h; these are exposed for the unit tests.
 */
#ifndef POSTHASTE_KEYS_H
#define POSTHASTE_KEYS_H

#include <openssl/evp.h>

struct keys_sign_req;
struct keys_sign_res;

/* a PEM private key from fd (read whole, the copy wiped); NULL if none */
EVP_PKEY	*keys_load_pem(int fd);
/*
 * Sign req with key: 0 and res filled (PROTO_OK), or -1 and res says
 * PROTO_PERMFAIL (no key, a scheme that does not fit it, a bad digest).
 */
int		 keys_sign(EVP_PKEY *key, const struct keys_sign_req *req,
		    struct keys_sign_res *res);

#endif
