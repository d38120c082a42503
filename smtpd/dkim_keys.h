/*
 * dkim_keys.h -- the DKIM signing keys, from the parent to the keys
 * process (dkim_keys.c).
 */
#ifndef POSTHASTE_DKIM_KEYS_H
#define POSTHASTE_DKIM_KEYS_H

struct mproc;

/*
 * Open every key of the "dkim sign" table and send it to keys, then
 * IMSG_KEYS_DKIM_DONE (nothing when the table cannot be read: keys
 * keeps its set).  reload: read the table afresh first.
 */
void	dkim_keys_send(struct mproc *keys, int reload);

#endif
