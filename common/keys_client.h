/*
 * keys_client.h -- private keys that live in another process.
 *
 * The smtp workers and the mta never hold a private key (DESIGN.md,
 * "Processes"): they hold a stub, an EVP_PKEY of an OpenSSL 3 provider
 * of ours ("posthaste-keys", keys_client.c) that carries the key's id
 * and its public half only.  OpenSSL uses the stub as it would the key
 * (SSL_CTX_use_PrivateKey, SSL_use_PrivateKey); every signature it
 * asks of it is sent to the keys process (keys/keys.c), which holds the
 * key and signs, and the answer comes back on the same channel.
 *
 * The exchange is synchronous: OpenSSL wants the signature before the
 * handshake function returns.  It costs the caller one round trip on a
 * local socket per handshake (the keys process signs in well under a
 * millisecond); OpenSMTPD makes the same trade.
 */
#ifndef POSTHASTE_KEYS_CLIENT_H
#define POSTHASTE_KEYS_CLIENT_H

#include <stdint.h>

#include <openssl/evp.h>

struct keys_sign_req;
struct keys_sign_res;

/*
 * Load the provider into OpenSSL's default library context and take fd
 * (blocking; the keys process's end of a socketpair) as the channel for
 * every signature.  Once per process, before any stub is made.
 */
void		 keys_client_init(int fd);

/*
 * A stub for key `id' whose public half is `pub' (the certificate's
 * key; RSA, EC or Ed25519).  NULL, with OpenSSL's error queue set, on
 * a type the stub cannot stand for.  The caller owns the result.
 */
EVP_PKEY	*keys_client_stub(uint32_t id, EVP_PKEY *pub);

/*
 * Where the signatures go.  keys_client_init() installs the channel;
 * the unit tests install a function that signs in-process.  Returns 0
 * and fills res, or -1.
 */
typedef int	(*keys_transport)(const struct keys_sign_req *,
		    struct keys_sign_res *);
void		 keys_client_set_transport(keys_transport);
/* the provider alone, without a channel (unit tests); and unloaded */
void		 keys_client_provider_load(void);
void		 keys_client_provider_unload(void);

/* signatures asked and answered so far (tests, logs) */
uint64_t	 keys_client_count(void);

#endif
