/*
 * imsg.h -- message framing between Posthaste processes.
 *
 * A message is a fixed header followed by `len' bytes of payload, on a
 * Unix stream socket.  At most one file descriptor travels with a
 * message (SCM_RIGHTS); the header says whether one does, and
 * descriptors are paired with those messages in the order they were
 * sent, so a message and its descriptor can never be paired wrongly.
 */
#ifndef POSTHASTE_IMSG_H
#define POSTHASTE_IMSG_H

#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#define IMSG_MAX_PAYLOAD	(256 * 1024)
#define IMSG_MAX_FDS		64	/* received but not yet consumed */
/*
 * Descriptors sent with one sendmsg(), each with its own message: the
 * kernel hands over each write's descriptors in one recvmsg(), so a
 * burst of messages with descriptors costs a call or two, not one each.
 * A reader reads only with this much room left in rfds.
 */
#define IMSG_FDS_PER_WRITE	8

#define IMSGF_HASFD		0x1

struct imsg_hdr {
	uint32_t	type;
	uint32_t	len;		/* payload bytes, excluding header */
	uint32_t	peerid;		/* request id, echoed in the reply */
	uint32_t	pid;		/* sender's pid, for logs */
	uint32_t	flags;
};

struct imsg {
	struct imsg_hdr	 hdr;
	int		 fd;		/* -1 when none */
	const void	*data;		/* valid until the next imsg_get() */
	size_t		 len;
};

struct imsg_chunk {
	TAILQ_ENTRY(imsg_chunk) entry;
	int		 fd;		/* sent with the first byte, or -1 */
	size_t		 off;		/* bytes already written */
	size_t		 len;
	unsigned char	 data[];
};

struct imsgbuf {
	int		 fd;
	unsigned char	*rbuf;
	size_t		 rlen;		/* bytes buffered */
	size_t		 rpos;		/* start of unconsumed bytes */
	size_t		 rcap;
	int		 rfds[IMSG_MAX_FDS];
	size_t		 nrfds;
	int		 rdrained;	/* the last read emptied the socket */
	TAILQ_HEAD(, imsg_chunk) wq;
	size_t		 wqlen;		/* bytes queued */
	uint64_t	 wtotal;	/* bytes written, ever: progress */
};

void	imsgbuf_init(struct imsgbuf *, int fd);
/* after fork(), in the child: the pid written into headers */
void	imsg_pid_reset(void);
void	imsgbuf_clear(struct imsgbuf *);	/* frees, closes queued fds */
/* queue a message; fd (or -1) is owned by the buffer from now on */
int	imsg_compose(struct imsgbuf *, uint32_t type, uint32_t peerid,
	    int fd, const void *data, size_t len);
/* write what can be written: 1 done, 0 more pending, -1 error */
int	imsg_flush_nb(struct imsgbuf *);
/* blocking flush, for simple processes without an event loop */
int	imsg_flush(struct imsgbuf *);
/* read what is available: bytes read, 0 on EOF, -1 error (EAGAIN too) */
ssize_t	imsg_read(struct imsgbuf *);
/*
 * Next complete message: 1 and *m filled, 0 none yet, -1 malformed
 * stream (oversized, or a descriptor promised but not received).
 */
int	imsg_get(struct imsgbuf *, struct imsg *m);

#endif
