/*
 * imsg.c -- framing, descriptor passing and buffering for IPC.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "imsg.h"

#define RBUF_MIN	65536
#define WRITE_IOV_MAX	64

void
imsgbuf_init(struct imsgbuf *ib, int fd)
{
	memset(ib, 0, sizeof(*ib));
	ib->fd = fd;
	TAILQ_INIT(&ib->wq);
}

void
imsgbuf_clear(struct imsgbuf *ib)
{
	struct imsg_chunk	*c;
	size_t			 i;

	while ((c = TAILQ_FIRST(&ib->wq)) != NULL) {
		TAILQ_REMOVE(&ib->wq, c, entry);
		if (c->fd != -1)
			close(c->fd);
		free(c);
	}
	for (i = 0; i < ib->nrfds; i++)
		close(ib->rfds[i]);
	ib->nrfds = 0;
	free(ib->rbuf);
	ib->rbuf = NULL;
	ib->rlen = ib->rpos = ib->rcap = 0;
	ib->wqlen = 0;
}

/*
 * The sender's pid goes into every header (for logs).  Asking the kernel
 * each time costs a system call per message, so it is kept; a process
 * forked from one that already used it calls imsg_pid_reset().
 */
static pid_t	imsg_pid;

void
imsg_pid_reset(void)
{
	imsg_pid = getpid();
}

int
imsg_compose(struct imsgbuf *ib, uint32_t type, uint32_t peerid, int fd,
    const void *data, size_t len)
{
	struct imsg_chunk	*c;
	struct imsg_hdr		 hdr;

	if (len > IMSG_MAX_PAYLOAD) {
		errno = EMSGSIZE;
		return -1;
	}
	if ((c = malloc(sizeof(*c) + sizeof(hdr) + len)) == NULL)
		return -1;
	hdr.type = type;
	hdr.len = (uint32_t)len;
	hdr.peerid = peerid;
	if (imsg_pid == 0)
		imsg_pid = getpid();
	hdr.pid = (uint32_t)imsg_pid;
	hdr.flags = fd != -1 ? IMSGF_HASFD : 0;
	memcpy(c->data, &hdr, sizeof(hdr));
	if (len)
		memcpy(c->data + sizeof(hdr), data, len);
	c->fd = fd;
	c->off = 0;
	c->len = sizeof(hdr) + len;
	TAILQ_INSERT_TAIL(&ib->wq, c, entry);
	ib->wqlen += c->len;
	return 0;
}

/*
 * One sendmsg().  The descriptors of the messages it carries go with it
 * (up to IMSG_FDS_PER_WRITE): they reach the reader with the first bytes
 * it receives of this write, before or with their own messages, and
 * imsg_get() pairs them in order.  A partial write has sent them all;
 * the rest of the bytes follow without.
 */
static ssize_t
imsg_write_once(struct imsgbuf *ib)
{
	struct iovec		 iov[WRITE_IOV_MAX];
	struct imsg_chunk	*sent[IMSG_FDS_PER_WRITE];
	union {
		struct cmsghdr	hdr;
		char		buf[CMSG_SPACE(sizeof(int) *
				    IMSG_FDS_PER_WRITE)];
	}			 cmsgbuf;
	struct msghdr		 msg;
	struct cmsghdr		*cm;
	struct imsg_chunk	*c;
	ssize_t			 n;
	int			 niov = 0, nfds = 0, i;

	memset(&msg, 0, sizeof(msg));
	memset(&cmsgbuf, 0, sizeof(cmsgbuf));
	TAILQ_FOREACH(c, &ib->wq, entry) {
		if (niov == WRITE_IOV_MAX)
			break;
		/* a chunk's descriptor is gone once any of it was sent */
		if (c->fd != -1) {
			if (nfds == IMSG_FDS_PER_WRITE)
				break;
			sent[nfds] = c;
			memcpy(CMSG_DATA(&cmsgbuf.hdr) + nfds * sizeof(int),
			    &c->fd, sizeof(int));
			nfds++;
		}
		iov[niov].iov_base = c->data + c->off;
		iov[niov].iov_len = c->len - c->off;
		niov++;
	}
	msg.msg_iov = iov;
	msg.msg_iovlen = niov;
	if (nfds > 0) {
		msg.msg_control = cmsgbuf.buf;
		msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		cm = CMSG_FIRSTHDR(&msg);
		cm->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
	}
	do {
		n = sendmsg(ib->fd, &msg, MSG_NOSIGNAL);
	} while (n == -1 && errno == EINTR);
	if (n == -1)
		return -1;
	/* the receiver has its own copies now */
	for (i = 0; i < nfds; i++) {
		close(sent[i]->fd);
		sent[i]->fd = -1;
	}
	ib->wqlen -= n;
	ib->wtotal += n;
	while (n > 0 && (c = TAILQ_FIRST(&ib->wq)) != NULL) {
		size_t	left = c->len - c->off;

		if ((size_t)n < left) {
			c->off += n;
			break;
		}
		n -= left;
		TAILQ_REMOVE(&ib->wq, c, entry);
		free(c);
	}
	return 0;
}

int
imsg_flush_nb(struct imsgbuf *ib)
{
	while (!TAILQ_EMPTY(&ib->wq)) {
		if (imsg_write_once(ib) == -1) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			return -1;
		}
	}
	return 1;
}

int
imsg_flush(struct imsgbuf *ib)
{
	while (!TAILQ_EMPTY(&ib->wq))
		if (imsg_write_once(ib) == -1)
			return -1;
	return 0;
}

ssize_t
imsg_read(struct imsgbuf *ib)
{
	union {
		struct cmsghdr	hdr;
		char		buf[CMSG_SPACE(sizeof(int) *
				    IMSG_FDS_PER_WRITE)];
	}			 cmsgbuf;
	struct msghdr		 msg;
	struct iovec		 iov;
	struct cmsghdr		*cm;
	ssize_t			 n;

	/* compact, then make room */
	if (ib->rpos > 0) {
		memmove(ib->rbuf, ib->rbuf + ib->rpos, ib->rlen - ib->rpos);
		ib->rlen -= ib->rpos;
		ib->rpos = 0;
	}
	if (ib->rcap - ib->rlen < RBUF_MIN / 2) {
		size_t		 ncap = ib->rcap ? ib->rcap * 2 : RBUF_MIN;
		unsigned char	*p;

		if (ncap > IMSG_MAX_PAYLOAD * 4 + RBUF_MIN) {
			errno = EMSGSIZE;
			return -1;
		}
		if ((p = realloc(ib->rbuf, ncap)) == NULL)
			return -1;
		ib->rbuf = p;
		ib->rcap = ncap;
	}
	memset(&msg, 0, sizeof(msg));
	iov.iov_base = ib->rbuf + ib->rlen;
	iov.iov_len = ib->rcap - ib->rlen;
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = cmsgbuf.buf;
	msg.msg_controllen = sizeof(cmsgbuf.buf);
	do {
		n = recvmsg(ib->fd, &msg, MSG_CMSG_CLOEXEC);
	} while (n == -1 && errno == EINTR);
	if (n == -1)
		return -1;
	for (cm = CMSG_FIRSTHDR(&msg); cm != NULL; cm = CMSG_NXTHDR(&msg, cm)) {
		int	*fds, nfds, i;

		if (cm->cmsg_level != SOL_SOCKET ||
		    cm->cmsg_type != SCM_RIGHTS)
			continue;
		fds = (int *)CMSG_DATA(cm);
		nfds = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (i = 0; i < nfds; i++) {
			int	fd;

			memcpy(&fd, &fds[i], sizeof(fd));
			if (ib->nrfds == IMSG_MAX_FDS) {
				close(fd);
				errno = EMFILE;
				return -1;
			}
			ib->rfds[ib->nrfds++] = fd;
		}
	}
	if (msg.msg_flags & MSG_CTRUNC) {
		errno = EBADMSG;
		return -1;
	}
	/*
	 * Short and without a descriptor (which ends a read early): the
	 * socket was empty, and another read would only say EAGAIN.
	 */
	ib->rdrained = (size_t)n < iov.iov_len && msg.msg_controllen == 0;
	ib->rlen += n;
	return n;
}

int
imsg_get(struct imsgbuf *ib, struct imsg *m)
{
	struct imsg_hdr	hdr;
	size_t		avail = ib->rlen - ib->rpos;

	if (avail < sizeof(hdr))
		return 0;
	memcpy(&hdr, ib->rbuf + ib->rpos, sizeof(hdr));
	if (hdr.len > IMSG_MAX_PAYLOAD || (hdr.flags & ~IMSGF_HASFD)) {
		errno = EBADMSG;
		return -1;
	}
	if (avail < sizeof(hdr) + hdr.len)
		return 0;
	m->hdr = hdr;
	m->fd = -1;
	if (hdr.flags & IMSGF_HASFD) {
		if (ib->nrfds == 0) {
			errno = EBADMSG;
			return -1;
		}
		m->fd = ib->rfds[0];
		memmove(ib->rfds, ib->rfds + 1,
		    (ib->nrfds - 1) * sizeof(int));
		ib->nrfds--;
	}
	m->data = ib->rbuf + ib->rpos + sizeof(hdr);
	m->len = hdr.len;
	ib->rpos += sizeof(hdr) + hdr.len;
	return 1;
}
