/*
 * dkim.h -- the DKIM codec (RFC 6376, RFC 8463 ed25519-sha256, RFC 8301):
 * canonicalization, tag-lists, the streaming hasher, and the sign and
 * verify primitives.  Pure code on OpenSSL: no DNS, no imsg, no state
 * beyond the struct dkim_msg the caller holds.
 *
 * Who calls what, from which process (issue 18):
 *
 *  smtp worker, as it spools a message:
 *	m = dkim_msg_new(want_sign);
 *	dkim_msg_line(m, line, len);	every line written to the spool,
 *					dot-unstuffed, WITHOUT its line end
 *					(exactly what smtp_data.c msg_line()
 *					has); the headers the worker adds
 *					(Received, Message-ID, Date) are
 *					lines like the others, fed before
 *					the empty line that ends the header
 *					section, in the order they are
 *					written
 *	dkim_msg_end(m);		after the last line
 *	then, for verification: n = dkim_msg_nsigs(m) and each
 *	dkim_msg_vsig(m, k) -- a flat struct dkim_vsig that goes in an imsg
 *	to lookup as it is.  For signing: dkim_msg_from_domain(m) to choose
 *	a key, dkim_sign_prepare() for the 32-byte digest the keys process
 *	signs, dkim_sign_header() for the header to prepend.
 *  lookup: dkim_vsig_valid() on what a worker sent (a struct dkim_vsig
 *	is about 1.3 KB: one per imsg, or all of them in one), then
 *	dkim_vsig_precheck() (a result that needs no key: syntax, rsa-sha1,
 *	x=, t=, body hash), else a TXT query for dkim_vsig_keyname() and
 *	dkim_verify() on the answer.  A DNS failure is temperror and
 *	NXDOMAIN or no TXT record permerror ("no key"): lookup decides
 *	those without calling here.  Several TXT records at the name (RFC
 *	6376 3.6.2.2 lets the verifier try each): dkim_verify() on each
 *	until one is not permerror (a record that is not a usable key).
 *  keys: dkim_sign_digest() with the private key.
 *  smtpctl dkim keygen (programs/ctl_dkim.c): dkim_key_txt().
 *
 * Limits (beyond them the message is neither signed nor verified, and
 * dkim_msg_overflow() says so): DKIM_HDR_MAX bytes of header section
 * (the header hashes need all of it; the body is never kept).  Only the
 * first DKIM_MAX_SIGS DKIM-Signature fields (top down) are verified;
 * dkim_msg_nsigs_ignored() counts the rest (suggested A-R: none for
 * them, they are not evaluated).  A message whose signed fields have
 * more instances than fit 1 KB of h= is not signed (dkim_sign_prepare()
 * says why).  The body costs one SHA-256 pass per distinct (body
 * canonicalization, l=) asked for, at most DKIM_MAX_SIGS + 1.
 *
 * Result words (RFC 8601 2.7.1) and which failure gets which:
 *	pass		signature and body hash verified
 *	fail		body hash or signature mismatch; key revoked (p=
 *			empty: RFC 6376 6.1.2 says "a failed signature
 *			check"); rsa-sha1 (RFC 8301 3.1: MUST NOT be used
 *			for verifying); RSA key < 1024 bits (RFC 8301 3.2:
 *			MUST NOT be considered valid); l= beyond the body
 *	policy		x= in the past, t= in the future (more than
 *			DKIM_CLOCK_SKEW): RFC 6376 3.5 makes both a MAY,
 *			i.e. the verifier's own policy, which is what
 *			"policy" means in RFC 8601
 *	neutral		the signature has a syntax error or cannot be
 *			processed (missing/duplicate tag, v= not 1, bad
 *			base64, unknown a= or c=, h= without From, i= not
 *			in d=, x= before t=): RFC 8601's word for those
 *	permerror	the key record is unusable (syntax, v=, k= or h=
 *			mismatch, s= not email, t=s and i= in a subdomain,
 *			not a key) or absent (lookup)
 *	temperror	DNS failure (lookup), out of memory
 *	none		the message has no signature (the caller's word)
 */
#ifndef POSTHASTE_DKIM_H
#define POSTHASTE_DKIM_H

#include <sys/types.h>

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define DKIM_HDR_MAX		65536	/* header section bytes kept */
#define DKIM_MAX_SIGS		8	/* signatures verified */
#define DKIM_MAX_TAGS		32	/* tags in one tag-list */
#define DKIM_SIG_MAX		512	/* b= bytes: RSA <= 4096 bits;
					   a longer b= is neutral */
#define DKIM_CLOCK_SKEW		300	/* seconds t= may be ahead */
#define DKIM_RSA_MIN_VERIFY	1024	/* RFC 8301 3.2 */
#define DKIM_RSA_MIN_SIGN	2048
#define DKIM_DOMAIN_MAX		256	/* d=, with its NUL */
#define DKIM_SELECTOR_MAX	128	/* s=, with its NUL */
#define DKIM_AUID_MAX		320	/* i=, with its NUL */
#define DKIM_WHY_MAX		96
#define DKIM_HEADER_MAX		8192	/* our DKIM-Signature */

enum dkim_result {
	DKIM_NONE = 0,
	DKIM_PASS,
	DKIM_FAIL,
	DKIM_POLICY,
	DKIM_NEUTRAL,
	DKIM_TEMPERROR,
	DKIM_PERMERROR
};

enum dkim_alg {
	DKIM_ALG_UNKNOWN = 0,
	DKIM_ALG_RSA_SHA256,
	DKIM_ALG_ED25519_SHA256,
	DKIM_ALG_RSA_SHA1	/* parsed only to be refused (RFC 8301) */
};

enum dkim_canon {
	DKIM_CANON_SIMPLE = 0,
	DKIM_CANON_RELAXED
};

/*
 * One received signature, as the worker found it: flat, fixed size, no
 * pointers, so it travels in an imsg as it is (lookup checks it with
 * dkim_vsig_valid()).  Strings are NUL-terminated.  status is DKIM_NONE
 * when the signature parsed and needs its key; anything else is the
 * final result, with why.
 */
struct dkim_vsig {
	uint8_t		status;		/* enum dkim_result */
	uint8_t		alg;		/* enum dkim_alg */
	uint8_t		bh_ok;		/* body hash matched bh= */
	uint8_t		hcanon, bcanon;	/* enum dkim_canon */
	uint8_t		pad[1];
	uint16_t	blen;		/* bytes in b */
	int64_t		t, x;		/* -1 when absent */
	char		d[DKIM_DOMAIN_MAX];
	char		s[DKIM_SELECTOR_MAX];
	char		i[DKIM_AUID_MAX];	/* "@d" when absent */
	char		bprefix[16];	/* b= start: RFC 8601 header.b */
	char		why[DKIM_WHY_MAX];
	uint8_t		hh[32];		/* SHA-256, signed headers */
	uint8_t		b[DKIM_SIG_MAX];	/* b= decoded */
};

/* what dkim_verify() found */
struct dkim_vres {
	enum dkim_result result;
	int		 testing;	/* key record t=y */
	int		 keybits;	/* 0 when no key was read */
	char		 why[DKIM_WHY_MAX];
};

struct dkim_msg;

/* ---- the streaming hasher (smtp worker) ---- */

/*
 * A new hasher.  want_sign: also hash the body relaxed/sha256 for our
 * own signature.  NULL when out of memory.
 */
struct dkim_msg	*dkim_msg_new(int want_sign);
void		 dkim_msg_free(struct dkim_msg *);

/*
 * One line of the message, without its line end (CRLF is implied: the
 * spool's LF and the wire's CRLF both end every line, and the last line
 * of a message always has one on the wire).  Never fails: past the
 * limits the hasher stops hashing and dkim_msg_overflow() says so.
 */
void		 dkim_msg_line(struct dkim_msg *, const char *, size_t);

/* the header section is over (after its empty line, or at the end) */
int		 dkim_msg_headers_done(const struct dkim_msg *);

/* finish the body hashes; no line may follow */
void		 dkim_msg_end(struct dkim_msg *);

/* 1 when the header section passed DKIM_HDR_MAX: nothing signed/verified */
int		 dkim_msg_overflow(const struct dkim_msg *);

/*
 * The domain of the single address in the single From: field, in lower
 * case; NULL before the headers are done, or when there is no From:,
 * several, or several addresses in it.
 */
const char	*dkim_msg_from_domain(const struct dkim_msg *);

/* received signatures (valid after dkim_msg_end()), top down */
size_t		 dkim_msg_nsigs(const struct dkim_msg *);
size_t		 dkim_msg_nsigs_ignored(const struct dkim_msg *);
const struct dkim_vsig *dkim_msg_vsig(const struct dkim_msg *, size_t);

/* ---- verification (lookup) ---- */

/* 0 when a vsig from a worker is well formed (strings terminated ...) */
int		 dkim_vsig_valid(const struct dkim_vsig *);

/*
 * The result that needs no key (a syntax error, rsa-sha1, the times,
 * the body hash), or DKIM_NONE: fetch the key, then dkim_verify().
 */
enum dkim_result dkim_vsig_precheck(const struct dkim_vsig *, time_t now,
		    struct dkim_vres *);

/* "s._domainkey.d" in out; -1 when it does not fit */
int		 dkim_vsig_keyname(const struct dkim_vsig *, char *, size_t);

/*
 * The verdict on one signature given the text of ONE TXT record found
 * at its key name (the record's strings joined, RFC 6376 3.6.2.2).  Runs
 * the precheck first.  Fills res and returns res->result.
 */
enum dkim_result dkim_verify(const struct dkim_vsig *, const char *keytxt,
		    size_t keylen, time_t now, struct dkim_vres *res);

/* ---- signing (smtp worker, keys) ---- */

/* what dkim_sign_prepare() keeps for dkim_sign_header() */
struct dkim_sign {
	enum dkim_alg	alg;
	size_t		len;		/* of hdr, up to "b=" */
	size_t		col;		/* its last line's width */
	char		hdr[DKIM_HEADER_MAX];
};

/*
 * After dkim_msg_end(): build our DKIM-Signature (c=relaxed/relaxed,
 * the RFC 6376 5.4.1 fields present, From Subject Date To Cc Message-ID
 * MIME-Version Content-Type Content-Transfer-Encoding over-signed, no
 * l=) with b= empty, and the SHA-256 digest the keys process signs
 * (RFC 6376 3.7).  alg: DKIM_ALG_RSA_SHA256 or DKIM_ALG_ED25519_SHA256.
 * -1 (why set) when the message cannot be signed: no hasher for
 * signing, overflow, not exactly one From:, bad domain or selector.
 */
int		 dkim_sign_prepare(const struct dkim_msg *,
		    const char *domain, const char *selector, enum dkim_alg,
		    time_t, struct dkim_sign *, uint8_t digest[32], char *why,
		    size_t whylen);

/*
 * The complete field, "DKIM-Signature: ...\r\n" with b= folded, to be
 * put before the message.  Returns its length, or -1 when out is short.
 */
ssize_t		 dkim_sign_header(const struct dkim_sign *,
		    const uint8_t *sig, size_t siglen, char *out,
		    size_t outlen);

/*
 * The private-key operation the keys process performs: rsa-sha256 is
 * PKCS#1 v1.5 over the SHA-256 DigestInfo, ed25519-sha256 PureEdDSA
 * over the 32 digest bytes (RFC 8463 3).  pkey is an EVP_PKEY * (void *
 * here so that this header does not need OpenSSL's).  0 or -1.
 */
int		 dkim_sign_digest(void *pkey, enum dkim_alg,
		    const uint8_t digest[32], uint8_t *sig, size_t *siglen);

/*
 * The TXT record text for a public key ("v=DKIM1; k=rsa; p=..."), for
 * keygen.  pkey as above.  -1 when it does not fit or is not RSA/Ed25519.
 */
int		 dkim_key_txt(void *pkey, char *out, size_t outlen);

/* ---- codecs, exported for the tests and the fuzz harness ---- */

struct dkim_tag {
	char		name[16];
	const char	*value;		/* into the parsed text */
	size_t		 len;		/* without FWS around it */
};

/*
 * RFC 6376 3.2 tag-list: fills tags, returns how many, or -1 on a syntax
 * error, a duplicate tag, or more than max tags.
 */
int		 dkim_tags_parse(const char *, size_t, struct dkim_tag *,
		    size_t max);

/* what the hasher needs of a signature besides the vsig */
struct dkim_sigtags {
	uint8_t		 bh[32];
	int		 has_l;
	uint64_t	 l;		/* UINT64_MAX: too large */
	const char	*h;		/* h= as written, in the text */
	size_t		 hlen;
	const char	*bval;		/* b= value, in the text */
	size_t		 blen;
};

/*
 * Parse one DKIM-Signature field value (after the colon) into v and
 * tags; v->status is DKIM_NONE when it is usable, else the result
 * (neutral) with v->why.
 */
void		 dkim_sig_parse(const char *, size_t, struct dkim_vsig *,
		    struct dkim_sigtags *);

/*
 * Base64 with folding whitespace (RFC 6376 2.4), strict padding.  The
 * decoded length, or -1.
 */
ssize_t		 dkim_b64_decode(const char *, size_t, uint8_t *,
		    size_t);
/* plain base64; out must hold 4 * ((len + 2) / 3) + 1; returns its length */
size_t		 dkim_b64_encode(const uint8_t *, size_t, char *);

/* relaxed header canonicalization of one raw field (CRLF between its
 * lines, none at its end): out gets "name:value\r\n", returns its length;
 * out must hold len + 2 bytes */
size_t		 dkim_canon_header_relaxed(const char *, size_t, char *);

/* relaxed body canonicalization of one line (no line end): in place, new
 * length */
size_t		 dkim_canon_body_relaxed(char *, size_t);

const char	*dkim_result_str(enum dkim_result);

#endif /* POSTHASTE_DKIM_H */
