/*
 * fuzz_offline.c -- libFuzzer harness for the offline-file reader,
 * submit_offline_read() in common/submit.c: what the daemon's pick-up
 * (offline.c) reads from the world-writable offline directory, so
 * anything any local user can write.
 *
 * Beyond "does not crash": the result is 0, 1 (incomplete) or -1 with
 * a reason; a refused file leaves an empty submission; an accepted one
 * has a sender and at least one recipient, all of them printable one-line
 * text that parses as a mailbox, and a message of the size it announced.
 * And what was accepted survives a round trip: submit_offline_write()
 * of it, read back, gives the same submission.
 */
#include <sys/mman.h>
#include <sys/stat.h>

#include <dirent.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "fuzz.h"

#include "addr.h"
#include "submit.h"

#define MAXSIZE		(64 * 1024)

static char	spool[64];

/* the scratch spool goes when libFuzzer is done */
static void
cleanup(void)
{
	char	dir[128];

	snprintf(dir, sizeof(dir), "%s/%s", spool, SUBMIT_OFFLINE_DIR);
	rmdir(dir);
	rmdir(spool);
}

static int
memfd_of(const void *data, size_t len)
{
	int	fd;

	if ((fd = memfd_create("offline", MFD_CLOEXEC)) == -1)
		abort();
	if (len > 0 && write(fd, data, len) != (ssize_t)len)
		abort();
	if (lseek(fd, 0, SEEK_SET) == -1)
		abort();
	return fd;
}

static void
check_text(const char *s)
{
	for (; *s; s++)
		CHECK((unsigned char)*s >= 0x20 && (unsigned char)*s <= 0x7e);
}

static void
check_accepted(const struct submission *s)
{
	struct mailaddr	a;
	size_t		i, j;

	CHECK(s->nrcpts > 0 && s->nrcpts <= SUBMIT_RCPT_MAX);
	CHECK(s->msg != NULL && s->msglen <= MAXSIZE);
	CHECK(s->msg[s->msglen] == '\0');
	check_text(s->sender);
	if (s->sender[0])
		CHECK(addr_parse_mailbox(s->sender, &a, ADDR_ALLOW_UTF8) ==
		    ADDR_OK);
	check_text(s->notify);
	check_text(s->ret);
	check_text(s->envid);
	CHECK(s->ret[0] == '\0' || strcmp(s->ret, "FULL") == 0 ||
	    strcmp(s->ret, "HDRS") == 0);
	for (i = 0; i < s->nrcpts; i++) {
		check_text(s->rcpts[i]);
		CHECK(addr_parse_mailbox(s->rcpts[i], &a, ADDR_ALLOW_UTF8) ==
		    ADDR_OK);
		for (j = 0; j < i && s->nrcpts < 64; j++)
			CHECK(strcasecmp(s->rcpts[i], s->rcpts[j]) != 0);
	}
}

static void
check_same(const struct submission *a, const struct submission *b)
{
	size_t	i;

	CHECK(strcmp(a->sender, b->sender) == 0);
	CHECK(strcmp(a->notify, b->notify) == 0);
	CHECK(strcmp(a->ret, b->ret) == 0);
	CHECK(strcmp(a->envid, b->envid) == 0);
	CHECK(a->eightbit == b->eightbit);
	CHECK(a->nrcpts == b->nrcpts);
	for (i = 0; i < a->nrcpts; i++)
		CHECK(strcmp(a->rcpts[i], b->rcpts[i]) == 0);
	CHECK(a->msglen == b->msglen);
	CHECK(memcmp(a->msg, b->msg, a->msglen) == 0);
}

/* write s into the scratch spool, read it back, remove the file */
static void
round_trip(const struct submission *s)
{
	struct submission	 again;
	struct dirent		*de;
	char			 dir[128], path[512], err[256];
	DIR			*d;
	int			 fd, found = 0;

	CHECK(submit_offline_write(spool, s, err, sizeof(err)) == 0);
	snprintf(dir, sizeof(dir), "%s/%s", spool, SUBMIT_OFFLINE_DIR);
	if ((d = opendir(dir)) == NULL)
		abort();
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
			abort();
		CHECK(submit_offline_read(fd, MAXSIZE, &again, err,
		    sizeof(err)) == 0);
		close(fd);
		unlink(path);
		check_same(s, &again);
		submission_free(&again);
		found++;
	}
	closedir(d);
	CHECK(found == 1);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	struct submission	s;
	char			err[256], dir[128];
	int			fd, rc;

	if (spool[0] == '\0') {
		/* tmpfs when there is one: the writer fsyncs */
		snprintf(spool, sizeof(spool), "%s/posthaste-fuzz-XXXXXX",
		    access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
		if (mkdtemp(spool) == NULL)
			abort();
		snprintf(dir, sizeof(dir), "%s/%s", spool, SUBMIT_OFFLINE_DIR);
		if (mkdir(dir, 0700) == -1)
			abort();
		atexit(cleanup);
	}
	if (len > MAXSIZE + 4096)
		return 0;
	fd = memfd_of(data, len);
	err[0] = '\0';
	rc = submit_offline_read(fd, MAXSIZE, &s, err, sizeof(err));
	close(fd);
	CHECK(rc == 0 || rc == 1 || rc == -1);
	if (rc != 0) {
		CHECK(err[0] != '\0');
		CHECK(s.nrcpts == 0 && s.rcpts == NULL && s.msg == NULL);
		return 0;
	}
	check_accepted(&s);
	round_trip(&s);
	submission_free(&s);
	return 0;
}
