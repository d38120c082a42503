/*
 * cabundle.c -- the CA bundle outbound TLS trusts, read once at start.
 *
 * The mta (certificates of the servers it delivers to) and lookup (the
 * MTA-STS policy servers) trust the same anchors: "mta ca-file", else
 * what OpenSSL's own tools would read ($SSL_CERT_FILE, then OpenSSL's
 * default file).  Both read the bytes before their sandbox closes (the
 * mta is chrooted) and parse them later, unprivileged.
 */
#include <sys/types.h>
#include <sys/stat.h>

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <openssl/x509.h>

#include "cabundle.h"
#include "log.h"

#define CABUNDLE_MAX	(64 * 1024 * 1024)

char *
cabundle_read(const char *configured, size_t *len, const char *without)
{
	const char	*file = configured;
	struct stat	 st;
	ssize_t		 n;
	size_t		 got;
	char		*pem;
	int		 fd;

	*len = 0;
	if (file == NULL || *file == '\0')
		file = getenv(X509_get_default_cert_file_env());
	if (file == NULL)
		file = X509_get_default_cert_file();
	if ((fd = open(file, O_RDONLY | O_CLOEXEC)) == -1 ||
	    fstat(fd, &st) == -1 || st.st_size <= 0 ||
	    st.st_size > CABUNDLE_MAX ||
	    (pem = malloc((size_t)st.st_size)) == NULL) {
		log_warnx("cannot read the CA bundle %s: %s", file, without);
		if (fd != -1)
			close(fd);
		return NULL;
	}
	for (got = 0; got < (size_t)st.st_size; got += (size_t)n)
		if ((n = read(fd, pem + got, (size_t)st.st_size - got)) <= 0)
			break;
	close(fd);
	*len = got;
	return pem;
}
