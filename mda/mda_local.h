#define MDA_BUFSIZE	(64 * 1024)

struct wbuf {
	int	 fd;
	char	*buf;
	size_t	 len;
	size_t	 size;
	off_t	 total;		/* bytes queued so far, flushed or not */
	int	 last;		/* last byte queued, -1 before the first */
};

/* what went wrong while copying: the spool side or the mailbox side */
enum copy_error {
	COPY_OK,
	COPY_READ,
	COPY_WRITE,
};

static int	fail(int, char *, size_t, const char *, ...)
		    __attribute__((format(printf, 4, 5)));
