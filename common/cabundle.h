/*
 * cabundle.h -- the CA bundle outbound TLS trusts (cabundle.c).
 */
#ifndef POSTHASTE_CABUNDLE_H
#define POSTHASTE_CABUNDLE_H

#include <stddef.h>

/*
 * The bytes of the bundle ("mta ca-file" when configured is not empty,
 * else $SSL_CERT_FILE, else OpenSSL's default file), malloc'd, their
 * length in *len; NULL with a warning saying what fails without it
 * (without, e.g. "\"relay tls verify\" will fail") when it cannot be read.
 */
char	*cabundle_read(const char *configured, size_t *len,
	    const char *without);

#endif
