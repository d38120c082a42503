/*
 * smtp_tls.c -- TLS for smtp workers (STARTTLS and smtps).
 */
#include "smtp_session.h"

void
smtp_tls_init(void)
{
}
