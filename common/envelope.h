/*
 * envelope.h -- one recipient of one message, as the queue keeps it.
 *
 * The struct travels between processes of the same binary (fixed-size,
 * no pointers) and is stored on disk as versioned "key: value" text
 * (envelope.c), escaped on write and validated on read.
 */
#ifndef POSTHASTE_ENVELOPE_H
#define POSTHASTE_ENVELOPE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "addr.h"
#include "destmac.h"

#define ENVELOPE_VERSION	1
#define ENV_NAME_MAX		128
#define ENV_TEXT_MAX		512
#define ENV_PATH_MAX		1024

/* what the final recipient is, after alias/virtual expansion */
enum dest_type {
	DEST_MAILBOX = 1,	/* a local user's mailbox per the action */
	DEST_FILE,		/* "/path" from aliases or .forward */
	DEST_PROGRAM,		/* "|command" from aliases or .forward */
	DEST_REMOTE,		/* relay to dest address */
};

/* envelope flags */
#define EF_SMTPUTF8		0x0001
#define EF_8BITMIME		0x0002
#define EF_BOUNCE		0x0004	/* this message is a DSN we made */
#define EF_DSN_RET_FULL		0x0010
#define EF_DSN_RET_HDRS		0x0020
#define EF_NOTIFY_NEVER		0x0100
#define EF_NOTIFY_SUCCESS	0x0200
#define EF_NOTIFY_FAILURE	0x0400
#define EF_NOTIFY_DELAY		0x0800
#define EF_AUTHENTICATED	0x1000
#define EF_TLS			0x2000
#define EF_WARNED		0x4000	/* delay DSN already sent */
#define EF_PAUSED		0x8000	/* smtpctl pause envelope */
#define EF_DOUBLE_BOUNCE	0x10000	/* a failed DSN, sent to postmaster */
#define EF_LOCAL		0x20000	/* local submission; uid is set */
/*
 * Set by the smtp worker, which sees every line as it spools it: the
 * message's size on the wire (CRLF, dot-stuffed) is in wire_size and the
 * two flags below say where it has 8-bit bytes.  Without EF_MEASURED
 * (bounces, older envelopes) the mta reads the message to find out.
 */
#define EF_MEASURED		0x40000
#define EF_HEADER_8BIT		0x80000
#define EF_BODY_8BIT		0x100000
/* DMARC p=quarantine failed: the maildir "junk" option files it apart */
#define EF_QUARANTINE		0x200000
/*
 * Held in the queue (a milter's quarantine, or smtpctl hold): not
 * delivered, not bounced for its age, until smtpctl release; the reason
 * is in hold_reason.  Durable, unlike EF_PAUSED.
 */
#define EF_HOLD			0x400000
/*
 * RFC 8689: MAIL FROM ... REQUIRETLS (only accepted over TLS): relayed
 * only to a peer whose certificate verified (PKIX or DANE) and that
 * offers REQUIRETLS, else bounced (5.7.30 / 5.7.10) with a DSN that
 * leaves the original out.  EF_TLS_OPTIONAL: the message had
 * "TLS-Required: No" and no REQUIRETLS (section 3): relayed even when
 * the peer's certificate or TLS policy (verify, DANE, MTA-STS) fails.
 * Never both.  Stored in "flags" like the others, so older files load
 * (without them) and an older queue reads newer files (it ignores them).
 */
#define EF_REQUIRETLS		0x800000
#define EF_TLS_OPTIONAL		0x1000000

struct envelope {
	uint64_t	 id;		/* msgid << 32 | random */
	int64_t		 ctime;		/* when queued */
	int64_t		 lasttry;
	int64_t		 nexttry;
	uint32_t	 tries;
	uint32_t	 flags;
	uint32_t	 dest_type;	/* enum dest_type */
	uint32_t	 uid;		/* EF_LOCAL: who submitted it */
	int64_t		 wire_size;	/* EF_MEASURED: bytes on the wire */
	struct mailaddr	 sender;	/* envelope sender, empty = <> */
	struct mailaddr	 rcpt;		/* as the client gave it */
	struct mailaddr	 dest;		/* after expansion */
	char		 action[ENV_NAME_MAX];	/* smtpd.conf action */
	char		 user[ENV_NAME_MAX];	/* system user to deliver as */
	char		 path[ENV_PATH_MAX];	/* DEST_FILE/DEST_PROGRAM */
	char		 helo[ENV_NAME_MAX * 2];
	char		 client[ENV_NAME_MAX];	/* client address text */
	char		 authname[ENV_NAME_MAX];
	char		 envid[ENV_TEXT_MAX / 4];	/* DSN ENVID, xtext */
	char		 orcpt[ENV_TEXT_MAX];	/* DSN ORCPT, as given */
	char		 errorline[ENV_TEXT_MAX];	/* last error */
	char		 hold_reason[ENV_TEXT_MAX / 4];	/* EF_HOLD: why */
	/*
	 * Not stored: set by the queue when it hands the message file to a
	 * delivery.  The file goes on after the message (spool footer
	 * below): body_size is where the message ends, head_size how many
	 * bytes of added headers follow it; every reader reads the two
	 * through spool_msg_pread() (spool_msg.h), never past them.
	 */
	int64_t		 body_size;
	int64_t		 head_size;
	/*
	 * Not stored either: lookup's tag on the destination (dest_type,
	 * dest, action, user, path, and the sender if lookup chose it),
	 * from the worker to the queue, which checks it (destmac.h).
	 */
	uint8_t		 dest_mac[DESTMAC_LEN];
};

#define msgid_of(evpid)		((uint32_t)((evpid) >> 32))

/* text form; returns bytes written, or -1 if it did not fit */
int	envelope_dump(const struct envelope *, char *buf, size_t len);
/* parse and validate; -1 on anything unknown, duplicate or malformed */
int	envelope_load(const char *buf, size_t len, struct envelope *);
/* check every field of a struct received from another process */
int	envelope_valid(const struct envelope *);

/*
 * A committed message file in the spool is the message, then the headers
 * added after its body was seen (spool_msg.h; most messages have none),
 * then the envelope of a message with one recipient (envelope_dump()
 * text; none for several recipients, whose envelopes are files of their
 * own), then this footer, which the queue writes last, always:
 *
 *	"#posthaste-spool 1 body=%020llu envelope=%06u mac=%64x\n"
 *	"#posthaste-spool 2 body=%020llu head=%05u envelope=%06u mac=%64x\n"
 *
 * Version 2 when there are added headers (head= their length, 1 to
 * SPOOL_HEAD_MAX), version 1 when not: a file without added headers is
 * byte for byte what it was before they existed, so an older queue still
 * reads it.  Both load.  The footer ends every committed file, so no
 * message text can pass for one.  The mac (spool_footer_mac(),
 * destmac.h) is over the sizes and the envelope, under a key in queue/
 * that only the queue can read: the smtp worker keeps a writable
 * descriptor of its file, and without the key it cannot rewrite the tail
 * into an envelope, or a head length, the queue would load.
 */
#define SPOOL_FOOTER_LEN	130	/* version 1 */
#define SPOOL_FOOTER2_LEN	141	/* version 2 */
#define SPOOL_FOOTER_MAX	SPOOL_FOOTER2_LEN
#define SPOOL_ENVELOPE_MAX	8192
#define SPOOL_MAC_LEN		32

struct spool_footer {
	uint64_t	 body;		/* the message's size */
	size_t		 head;		/* the added headers', 0: version 1 */
	size_t		 envlen;	/* the envelope's, 0: none */
	size_t		 len;		/* the footer's own */
	uint8_t		 mac[SPOOL_MAC_LEN];
};

/*
 * The footer of f (its body, head, envlen and mac) into buf, version 1 or
 * 2 by f->head; returns its length (also set in f->len).
 */
size_t	spool_footer_format(char buf[SPOOL_FOOTER_MAX + 1],
	    struct spool_footer *f);
/*
 * buf holds the last len bytes of a file of filesize bytes (len is
 * SPOOL_FOOTER_MAX, or less for a file that short): 0 and f filled in if
 * they end in a footer of either version that fits the file exactly, -1
 * if not.  The caller checks the mac.
 */
int	spool_footer_parse(const char *buf, size_t len, uint64_t filesize,
	    struct spool_footer *f);

#endif
