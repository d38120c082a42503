/*
 * ctl_dkim.c -- smtpctl dkim keygen: make a DKIM signing key and say
 * what to publish.
 *
 *	smtpctl dkim keygen [-t rsa|ed25519] [-b bits] -d domain
 *	    -s selector -o keyfile
 *
 * The private key goes to keyfile as PEM PKCS#8, created with mode 0600
 * and never over an existing file (O_EXCL, O_NOFOLLOW: a key is not
 * something to overwrite by mistake, nor to write through a link).  The
 * record to publish is printed in zone-file form, its text cut into
 * strings of at most 255 bytes (RFC 1035 3.3.14's character-string; RFC
 * 6376 3.6.2.2 joins them back), as opendkim-genkey prints it.
 *
 * RSA keys are 2048 bits unless -b says more (RFC 8301 3.2: signers
 * MUST use at least 1024, SHOULD 2048; we sign with no less than 2048,
 * and no more than 4096, which the verifiers' b= limits fit).  Ed25519
 * keys (RFC 8463) have no size.  Needs no daemon and no privileges.
 */
#include <sys/types.h>
#include <sys/stat.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "dkim.h"
#include "ctl_dkim.h"

#define TXT_STRING_MAX	255

static int
keygen_usage(void)
{
	fprintf(stderr, "usage: smtpctl dkim keygen [-t rsa|ed25519] "
	    "[-b bits] -d domain -s selector -o keyfile\n");
	return 64;
}

/* a DNS name the record can be published under */
static int
dns_name_ok(const char *s)
{
	size_t	i, n = strlen(s);

	if (n == 0 || n > 253 || s[0] == '.' || s[n - 1] == '.' ||
	    strstr(s, "..") != NULL)
		return 0;
	for (i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '-' &&
		    s[i] != '.' && s[i] != '_')
			return 0;
	return 1;
}

static int
write_key(EVP_PKEY *pkey, const char *path)
{
	FILE	*fp;
	int	 fd;

	if ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW,
	    0600)) == -1) {
		fprintf(stderr, "smtpctl: %s: %s\n", path, strerror(errno));
		return -1;
	}
	if ((fp = fdopen(fd, "w")) == NULL) {
		fprintf(stderr, "smtpctl: %s: %s\n", path, strerror(errno));
		close(fd);
		unlink(path);
		return -1;
	}
	if (PEM_write_PrivateKey(fp, pkey, NULL, NULL, 0, NULL, NULL) != 1 ||
	    fflush(fp) != 0 || fsync(fd) == -1) {
		fprintf(stderr, "smtpctl: %s: cannot write the key\n", path);
		fclose(fp);
		unlink(path);
		return -1;
	}
	if (fclose(fp) != 0) {
		fprintf(stderr, "smtpctl: %s: %s\n", path, strerror(errno));
		unlink(path);
		return -1;
	}
	return 0;
}

static void
print_record(const char *selector, const char *domain, const char *txt)
{
	size_t	len = strlen(txt), p, take;

	printf("%s._domainkey.%s.\tIN\tTXT\t(", selector, domain);
	for (p = 0; p < len; p += take) {
		take = len - p < TXT_STRING_MAX ? len - p : TXT_STRING_MAX;
		printf("%s\"%.*s\"", p == 0 ? " " : "\n\t\t", (int)take,
		    txt + p);
	}
	printf(" )\n");
}

static int
keygen(int argc, char **argv)
{
	const char	*type = "rsa", *domain = NULL, *selector = NULL;
	const char	*out = NULL, *bits_arg = NULL;
	char		 txt[2048], *end;
	EVP_PKEY	*pkey;
	long		 bits = 2048;
	int		 i;

	for (i = 1; i < argc; i++) {
		const char	**opt;

		if (strcmp(argv[i], "-t") == 0)
			opt = &type;
		else if (strcmp(argv[i], "-b") == 0)
			opt = &bits_arg;
		else if (strcmp(argv[i], "-d") == 0)
			opt = &domain;
		else if (strcmp(argv[i], "-s") == 0)
			opt = &selector;
		else if (strcmp(argv[i], "-o") == 0)
			opt = &out;
		else
			return keygen_usage();
		if (++i == argc)
			return keygen_usage();
		*opt = argv[i];
	}
	if (domain == NULL || selector == NULL || out == NULL)
		return keygen_usage();
	if (!dns_name_ok(domain) || !dns_name_ok(selector)) {
		fprintf(stderr, "smtpctl: invalid domain or selector\n");
		return 1;
	}
	if (strcmp(type, "rsa") == 0) {
		if (bits_arg != NULL) {
			errno = 0;
			bits = strtol(bits_arg, &end, 10);
			if (errno || *end != '\0' || bits < DKIM_RSA_MIN_SIGN ||
			    bits > DKIM_SIG_MAX * 8) {
				fprintf(stderr, "smtpctl: RSA keys are %d to "
				    "%d bits\n", DKIM_RSA_MIN_SIGN,
				    DKIM_SIG_MAX * 8);
				return 1;
			}
		}
		pkey = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)bits);
	} else if (strcmp(type, "ed25519") == 0) {
		if (bits_arg != NULL) {
			fprintf(stderr, "smtpctl: -b is for RSA keys\n");
			return 1;
		}
		pkey = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	} else
		return keygen_usage();
	if (pkey == NULL) {
		fprintf(stderr, "smtpctl: key generation failed\n");
		return 1;
	}
	if (dkim_key_txt(pkey, txt, sizeof(txt)) == -1) {
		fprintf(stderr, "smtpctl: key too large to publish\n");
		EVP_PKEY_free(pkey);
		return 1;
	}
	if (write_key(pkey, out) == -1) {
		EVP_PKEY_free(pkey);
		return 1;
	}
	EVP_PKEY_free(pkey);
	print_record(selector, domain, txt);
	return 0;
}

int
ctl_dkim(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "keygen") == 0)
		return keygen(argc - 1, argv + 1);
	return keygen_usage();
}
