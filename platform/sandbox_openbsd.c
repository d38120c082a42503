/*
 * sandbox_openbsd.c -- pledge(2) promises per process (OpenBSD).
 *
 * The same profiles as the seccomp allow-lists (sandbox_linux.c), in
 * pledge's coarser terms.  Every process passes descriptors over its
 * imsg channels (recvfd, sendfd); none may exec (no execpromises), and
 * a call outside its promises kills it with SIGABRT.  W^X needs no
 * rule: OpenBSD refuses writable and executable mappings by itself.
 */
#if defined(__OpenBSD__)

#include <errno.h>
#include <unistd.h>

#include "log.h"
#include "platform.h"

static const char *const promises[] = {
	/* accepts clients, writes the spool file it is handed (fsync,
	 * ftruncate and pwrite are in stdio) */
	[SANDBOX_SMTP] = "stdio inet unix recvfd sendfd",
	/* owns the spool it is chrooted to */
	[SANDBOX_QUEUE] = "stdio rpath wpath cpath fattr chown flock "
	    "recvfd sendfd",
	/* tables, the password and group files, DNS to the resolvers */
	[SANDBOX_LOOKUP] = "stdio rpath flock getpw inet dns unix "
	    "recvfd sendfd",
	/* SMTP over TCP, LMTP over TCP or a unix socket */
	[SANDBOX_MTA] = "stdio inet unix recvfd sendfd",
	/* the smtpctl socket */
	[SANDBOX_CONTROL] = "stdio unix recvfd sendfd",
	/* writes mailboxes as the user, no exec */
	[SANDBOX_MDA] = "stdio rpath wpath cpath fattr chown flock "
	    "recvfd sendfd",
	/* reads the password database (getpwnam_shadow) */
	[SANDBOX_AUTH] = "stdio rpath getpw unix",
	/* keys: its channels only */
	[SANDBOX_KEYS] = "stdio",
};

static int	unveiled;

/* unveil(2): from the first call on, only what was unveiled is visible */
void
sandbox_read_only(const char *path)
{
	if (unveil(path, "r") == -1) {
		if (errno == ENOENT)
			return;
		fatal("unveil %s", path);
	}
	unveiled = 1;
}

/* lookup's MTA-STS cache: files made, renamed and removed there only */
static int	write_dir;

void
sandbox_write_dir(const char *path, int dirfd)
{
	(void)dirfd;
	if (unveil(path, "rwc") == -1)
		fatal("unveil %s", path);
	unveiled = write_dir = 1;
}

void
sandbox_enter(enum sandbox_profile profile)
{
	if ((size_t)profile >= sizeof(promises) / sizeof(promises[0]) ||
	    promises[profile] == NULL)
		fatalx("sandbox_enter: unknown profile %d", (int)profile);
	/* no more unveil(2) calls: the set is final */
	if (unveiled && unveil(NULL, NULL) == -1)
		fatal("unveil");
	if (pledge(profile == SANDBOX_LOOKUP && write_dir ?
	    "stdio rpath wpath cpath flock getpw inet dns unix recvfd sendfd" :
	    promises[profile], NULL) == -1)
		fatal("pledge");
}

#endif
