/*
 * test_platform.c -- what platform/ does that a test can see from the
 * outside: descriptor ranges closed and the others kept, descriptors
 * born non-blocking and close-on-exec, peer credentials over real unix
 * sockets (the uid of a stream peer, the pid of a datagram's sender),
 * crypt settings that are fresh each time and hash as crypt(3) does,
 * syncfs where the platform says it has one, asprintf.
 *
 * The sandboxes are tested against the real daemon (test_sandbox.py).
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "platform.h"

static int
fd_open(int fd)
{
	return fcntl(fd, F_GETFD) != -1;
}

/* descriptors at fixed numbers, well above what the runner holds open */
static void
test_close_range(void **state)
{
	int	base = 200, i, fd;

	(void)state;
	for (i = 0; i < 6; i++) {
		if ((fd = open("/dev/null", O_RDONLY)) == -1)
			fail();
		assert_int_equal(dup2(fd, base + i), base + i);
		close(fd);
	}
	/* [base+1, base+3]: closed; base, base+4, base+5 kept */
	assert_int_equal(platform_close_range(base + 1, base + 3), 0);
	assert_true(fd_open(base));
	for (i = 1; i <= 3; i++) {
		assert_false(fd_open(base + i));
		assert_int_equal(errno, EBADF);
	}
	assert_true(fd_open(base + 4));
	assert_true(fd_open(base + 5));
	/* from base+4 on, all */
	assert_int_equal(platform_close_range(base + 4, ~0U), 0);
	assert_true(fd_open(base));
	assert_false(fd_open(base + 4));
	assert_false(fd_open(base + 5));
	close(base);
}

static void
assert_nb_cloexec(int fd)
{
	int	fl, fdfl;

	assert_true((fl = fcntl(fd, F_GETFL)) != -1);
	assert_true((fdfl = fcntl(fd, F_GETFD)) != -1);
	assert_true(fl & O_NONBLOCK);
	assert_true(fdfl & FD_CLOEXEC);
}

static void
test_accept_nb(void **state)
{
	struct sockaddr_un	 sun;
	char			 dir[] = "/tmp/test_platform.XXXXXX";
	int			 lfd, cfd, afd;

	(void)state;
	assert_non_null(mkdtemp(dir));
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s/s", dir);
	assert_true((lfd = socket(AF_UNIX, SOCK_STREAM, 0)) != -1);
	assert_int_equal(bind(lfd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	assert_int_equal(listen(lfd, 1), 0);
	assert_true((cfd = socket(AF_UNIX, SOCK_STREAM, 0)) != -1);
	assert_int_equal(connect(cfd, (struct sockaddr *)&sun, sizeof(sun)),
	    0);
	assert_true((afd = platform_accept_nb(lfd, NULL, NULL)) != -1);
	assert_nb_cloexec(afd);
	close(afd);
	/* nothing more to accept: a non-blocking listener says so */
	assert_int_equal(fcntl(lfd, F_SETFL, O_NONBLOCK), 0);
	assert_int_equal(platform_accept_nb(lfd, NULL, NULL), -1);
	assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
	close(cfd);
	close(lfd);
	unlink(sun.sun_path);
	rmdir(dir);
}

static void
test_pipe2(void **state)
{
	int	p[2];

	(void)state;
	assert_int_equal(platform_pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
	assert_nb_cloexec(p[0]);
	assert_nb_cloexec(p[1]);
	close(p[0]);
	close(p[1]);
	assert_int_equal(platform_pipe2(p, O_CLOEXEC), 0);
	assert_false(fcntl(p[0], F_GETFL) & O_NONBLOCK);
	assert_true(fcntl(p[1], F_GETFD) & FD_CLOEXEC);
	close(p[0]);
	close(p[1]);
}

/*
 * The uid of a stream peer: our own over a socketpair; as root, that of
 * a child that became nobody (65534) before it connected.
 */
static void
test_peer_uid(void **state)
{
	struct sockaddr_un	 sun;
	char			 dir[] = "/tmp/test_platform.XXXXXX";
	uid_t			 uid = (uid_t)-1;
	pid_t			 pid;
	int			 sv[2], lfd, fd, status;
	char			 c;

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(platform_peer_uid(sv[0], &uid), 0);
	assert_int_equal(uid, geteuid());
	close(sv[0]);
	close(sv[1]);
	if (geteuid() != 0)
		return;
	assert_non_null(mkdtemp(dir));
	assert_int_equal(chmod(dir, 0755), 0);
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s/s", dir);
	assert_true((lfd = socket(AF_UNIX, SOCK_STREAM, 0)) != -1);
	assert_int_equal(bind(lfd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	assert_int_equal(chmod(sun.sun_path, 0666), 0);
	assert_int_equal(listen(lfd, 1), 0);
	assert_true((pid = fork()) != -1);
	if (pid == 0) {
		if (platform_setresgid(65534, 65534, 65534) == -1 ||
		    platform_setresuid(65534, 65534, 65534) == -1 ||
		    (fd = socket(AF_UNIX, SOCK_STREAM, 0)) == -1 ||
		    connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1 ||
		    read(fd, &c, 1) != 0)
			_exit(1);
		_exit(0);
	}
	assert_true((fd = accept(lfd, NULL, NULL)) != -1);
	assert_int_equal(platform_peer_uid(fd, &uid), 0);
	assert_int_equal(uid, 65534);
	close(fd);	/* the child reads EOF and exits */
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	close(lfd);
	unlink(sun.sun_path);
	rmdir(dir);
}

/* the pid on each datagram is the sender's, from the kernel */
static void
test_cred_pid(void **state)
{
	union {
		struct cmsghdr	hdr;
		char		buf[PLATFORM_CRED_SPACE];
	}		 cbuf;
	struct msghdr	 mh;
	struct iovec	 iov;
	char		 buf[16];
	pid_t		 pid, got;
	int		 sv[2], status;

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_DGRAM, 0, sv), 0);
	assert_int_equal(platform_passcred(sv[0]), 0);
	assert_true((pid = fork()) != -1);
	if (pid == 0) {
		close(sv[0]);
		_exit(send(sv[1], "x", 1, 0) == 1 ? 0 : 1);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	memset(&mh, 0, sizeof(mh));
	iov.iov_base = buf;
	iov.iov_len = sizeof(buf);
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = cbuf.buf;
	mh.msg_controllen = sizeof(cbuf.buf);
	assert_int_equal(recvmsg(sv[0], &mh, 0), 1);
	got = platform_cred_pid(&mh);
	/* 0 only where the system does not tell (OpenBSD) */
	if (got != 0)
		assert_int_equal(got, pid);
	if (PLATFORM_HAS_SYNCFS)	/* i.e. Linux, which does tell */
		assert_int_equal(got, pid);
	close(sv[0]);
	close(sv[1]);
}

static void
test_crypt(void **state)
{
	char		 a[PLATFORM_CRYPT_SETTING_MAX];
	char		 b[PLATFORM_CRYPT_SETTING_MAX];
	char		 hash[256];
	const char	*h;

	(void)state;
	/* SHA-512-crypt, a fresh salt each time */
	assert_int_equal(platform_crypt_setting("$6$", a, sizeof(a)), 0);
	assert_int_equal(platform_crypt_setting("$6$", b, sizeof(b)), 0);
	assert_int_equal(strncmp(a, "$6$", 3), 0);
	assert_true(strlen(a) > 3 + 8);
	assert_string_not_equal(a, b);
	/* hashing with the setting, then checking with the hash */
	assert_non_null(h = platform_crypt("secret", a));
	assert_true(h[0] != '*');
	assert_int_equal(strncmp(h, a, strlen(a) - 1), 0);
	assert_true(strlen(h) < sizeof(hash));
	snprintf(hash, sizeof(hash), "%s", h);
	assert_non_null(h = platform_crypt("secret", hash));
	assert_string_equal(h, hash);
	assert_non_null(h = platform_crypt("Secret", hash));
	assert_string_not_equal(h, hash);
	platform_crypt_wipe();
	/* the system's default method, whatever it is, works the same */
	assert_int_equal(platform_crypt_setting(NULL, a, sizeof(a)), 0);
	assert_true(a[0] == '$');
	assert_non_null(h = platform_crypt("secret", a));
	snprintf(hash, sizeof(hash), "%s", h);
	assert_non_null(h = platform_crypt("secret", hash));
	assert_string_equal(h, hash);
	platform_crypt_wipe();
	/* too small a buffer is an error, not a truncated salt */
	assert_int_equal(platform_crypt_setting("$6$", a, 4), -1);
}

static void
test_syncfs(void **state)
{
	char	path[] = "/tmp/test_platform.XXXXXX";
	int	fd;

	(void)state;
	assert_true((fd = mkstemp(path)) != -1);
	unlink(path);
	if (PLATFORM_HAS_SYNCFS)
		assert_int_equal(platform_syncfs(fd), 0);
	else {
		assert_int_equal(platform_syncfs(fd), -1);
		assert_int_equal(errno, ENOSYS);
	}
	close(fd);
}

static void
test_asprintf(void **state)
{
	char	*s;

	(void)state;
	assert_int_equal(platform_asprintf(&s, "%s=%d", "x", 42), 4);
	assert_string_equal(s, "x=42");
	free(s);
}

/* the running program: this test's own binary */
static void
test_self_path(void **state)
{
	char		 path[4096];
	const char	*base;

	(void)state;
	assert_int_equal(platform_self_path(path, sizeof(path)), 0);
	assert_true(path[0] == '/');
	base = strrchr(path, '/') + 1;
	assert_string_equal(base, "test_platform");
	/* too small a buffer is a failure, never a truncated path */
	assert_int_equal(platform_self_path(path, 0), -1);
}

/*
 * A system account's hash: as root, root's entry in /etc/shadow is read
 * (a hash, "!" or "*", never the passwd file's "x"); an account that
 * has none keeps its passwd entry's field.
 */
static void
test_shadow(void **state)
{
	struct passwd	 pw;
	const char	*hash;
	int		 expired;

	(void)state;
	if (geteuid() != 0)
		skip();
	memset(&pw, 0, sizeof(pw));
	pw.pw_name = "root";
	pw.pw_passwd = "x";
	assert_int_equal(platform_shadow(&pw, &hash, &expired), 0);
	assert_non_null(hash);
	assert_string_not_equal(hash, "x");
	assert_int_equal(expired, 0);
	pw.pw_name = "posthaste-no-such-user";
	assert_int_equal(platform_shadow(&pw, &hash, &expired), 0);
	assert_string_equal(hash, "x");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_close_range),
		cmocka_unit_test(test_accept_nb),
		cmocka_unit_test(test_pipe2),
		cmocka_unit_test(test_peer_uid),
		cmocka_unit_test(test_cred_pid),
		cmocka_unit_test(test_crypt),
		cmocka_unit_test(test_syncfs),
		cmocka_unit_test(test_asprintf),
		cmocka_unit_test(test_self_path),
		cmocka_unit_test(test_shadow),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
