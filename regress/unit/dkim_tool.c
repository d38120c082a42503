/*
 * dkim_tool.c -- signs and verifies message files through common/dkim.h,
 * so that regress/integration/test_dkim_codec.py can hold our codec up
 * against independent implementations (dkimpy, OpenDKIM).
 *
 *	dkim_tool sign [-t time] MSGFILE DOMAIN SEL:ALG:KEYFILE ...
 *		prints the message with one DKIM-Signature per key before
 *		it (ALG: rsa or ed25519; KEYFILE: PEM private key); the
 *		private-key operation is dkim_sign_digest(), as the keys
 *		process will do it
 *	dkim_tool verify [-t now] MSGFILE NAME=TXTFILE ...
 *		prints one line per signature, "RESULT d=D s=S (why)";
 *		NAME is SEL._domainkey.DOMAIN, TXTFILE holds its key record
 *		text; a NAME not given is "no key" (permerror), as lookup
 *		would say for NXDOMAIN
 *
 * The message is fed line by line as the smtp worker will (line ends,
 * LF or CRLF, taken off); the output has CRLF line ends.
 */
#include <sys/types.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "dkim.h"

static char *
read_file(const char *path, size_t *len)
{
	FILE	*fp;
	char	*buf = NULL, *p;
	size_t	 cap = 0, n = 0, r;

	if ((fp = fopen(path, "rb")) == NULL) {
		perror(path);
		exit(2);
	}
	for (;;) {
		if (n + 4096 + 1 > cap) {
			cap = cap ? cap * 2 : 65536;
			if ((p = realloc(buf, cap)) == NULL) {
				perror("realloc");
				exit(2);
			}
			buf = p;
		}
		if ((r = fread(buf + n, 1, cap - n - 1, fp)) == 0)
			break;
		n += r;
	}
	if (ferror(fp)) {
		perror(path);
		exit(2);
	}
	fclose(fp);
	buf[n] = '\0';
	*len = n;
	return buf;
}

/* feed a message, and print it with CRLF line ends if out is set */
static struct dkim_msg *
feed(const char *msg, size_t len, int want_sign, FILE *out)
{
	struct dkim_msg	*m;
	size_t		 p = 0, e, l;

	if ((m = dkim_msg_new(want_sign)) == NULL) {
		fprintf(stderr, "dkim_msg_new failed\n");
		exit(2);
	}
	while (p < len) {
		const char	*nl = memchr(msg + p, '\n', len - p);

		e = nl ? (size_t)(nl - msg) : len;
		l = e - p;
		if (l > 0 && msg[p + l - 1] == '\r')
			l--;
		dkim_msg_line(m, msg + p, l);
		if (out != NULL) {
			fwrite(msg + p, 1, l, out);
			fputs("\r\n", out);
		}
		p = e + 1;
	}
	dkim_msg_end(m);
	return m;
}

static int
do_sign(time_t now, int argc, char **argv)
{
	struct dkim_msg		*m;
	struct dkim_sign	 sg;
	char			*msg, why[128], *spec, *sel, *alg, *keyfile;
	char			 hdr[DKIM_HEADER_MAX + 1024];
	uint8_t			 digest[32], sig[DKIM_SIG_MAX];
	size_t			 len, siglen;
	ssize_t			 hlen;
	int			 i;

	if (argc < 3)
		return 64;
	msg = read_file(argv[0], &len);
	m = feed(msg, len, 1, NULL);
	for (i = 2; i < argc; i++) {
		EVP_PKEY	*pkey;
		FILE		*fp;
		enum dkim_alg	 a;

		spec = strdup(argv[i]);
		sel = strtok(spec, ":");
		alg = strtok(NULL, ":");
		keyfile = strtok(NULL, "");
		if (sel == NULL || alg == NULL || keyfile == NULL)
			return 64;
		a = strcmp(alg, "ed25519") == 0 ? DKIM_ALG_ED25519_SHA256 :
		    DKIM_ALG_RSA_SHA256;
		if ((fp = fopen(keyfile, "r")) == NULL) {
			perror(keyfile);
			return 2;
		}
		pkey = PEM_read_PrivateKey(fp, NULL, NULL, NULL);
		fclose(fp);
		if (pkey == NULL) {
			fprintf(stderr, "%s: not a private key\n", keyfile);
			return 2;
		}
		if (dkim_sign_prepare(m, argv[1], sel, a, now, &sg, digest,
		    why, sizeof(why)) == -1) {
			fprintf(stderr, "sign: %s\n", why);
			return 1;
		}
		siglen = sizeof(sig);
		if (dkim_sign_digest(pkey, a, digest, sig, &siglen) == -1) {
			fprintf(stderr, "sign: the key refused\n");
			return 1;
		}
		EVP_PKEY_free(pkey);
		if ((hlen = dkim_sign_header(&sg, sig, siglen, hdr,
		    sizeof(hdr))) == -1) {
			fprintf(stderr, "sign: header too long\n");
			return 1;
		}
		fwrite(hdr, 1, (size_t)hlen, stdout);
		free(spec);
	}
	dkim_msg_free(m);
	m = feed(msg, len, 0, stdout);
	dkim_msg_free(m);
	free(msg);
	return 0;
}

static int
do_verify(time_t now, int argc, char **argv)
{
	struct dkim_msg		*m;
	const struct dkim_vsig	*v;
	struct dkim_vres	 res;
	char			*msg, name[512], *key;
	size_t			 len, k, keylen, nl;
	int			 i;

	if (argc < 1)
		return 64;
	msg = read_file(argv[0], &len);
	m = feed(msg, len, 0, NULL);
	if (dkim_msg_overflow(m))
		printf("overflow\n");
	if (dkim_msg_nsigs(m) == 0)
		printf("none\n");
	for (k = 0; k < dkim_msg_nsigs(m); k++) {
		v = dkim_msg_vsig(m, k);
		if (dkim_vsig_precheck(v, now, &res) == DKIM_NONE) {
			if (dkim_vsig_keyname(v, name, sizeof(name)) == -1)
				return 2;
			nl = strlen(name);
			key = NULL;
			for (i = 1; i < argc; i++)
				if (strncasecmp(argv[i], name, nl) == 0 &&
				    argv[i][nl] == '=')
					key = read_file(argv[i] + nl + 1,
					    &keylen);
			if (key == NULL) {
				res.result = DKIM_PERMERROR;
				snprintf(res.why, sizeof(res.why), "no key");
			} else {
				/* a record on one line, as a TXT gives it */
				while (keylen > 0 && (key[keylen - 1] == '\n' ||
				    key[keylen - 1] == '\r'))
					keylen--;
				dkim_verify(v, key, keylen, now, &res);
				free(key);
			}
		}
		printf("%s d=%s s=%s b=%s (%s)\n", dkim_result_str(res.result),
		    v->d, v->s, v->bprefix, res.why);
	}
	dkim_msg_free(m);
	free(msg);
	return 0;
}

int
main(int argc, char **argv)
{
	time_t	now = time(NULL);

	if (argc > 3 && strcmp(argv[2], "-t") == 0) {
		now = (time_t)strtoll(argv[3], NULL, 10);
		argv[3] = argv[1];
		argv += 2;
		argc -= 2;
	}
	if (argc >= 2 && strcmp(argv[1], "sign") == 0)
		return do_sign(now, argc - 2, argv + 2);
	if (argc >= 2 && strcmp(argv[1], "verify") == 0)
		return do_verify(now, argc - 2, argv + 2);
	fprintf(stderr, "usage: dkim_tool sign [-t time] MSGFILE DOMAIN "
	    "SEL:ALG:KEYFILE ...\n"
	    "       dkim_tool verify [-t now] MSGFILE NAME=TXTFILE ...\n");
	return 64;
}
