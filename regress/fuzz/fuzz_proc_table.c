/*
 * fuzz_proc_table.c -- libFuzzer harness for table/proc.c's parser of
 * the lines a proc: table program writes (proc_table.h): each line of
 * the input is parsed as an answer and as a handshake registration.
 *
 * Checked beyond "does not crash": an accepted answer has a known
 * status, a value exactly when a lookup found something, text that lies
 * inside the line, and is written back to the very same line from its
 * fields (check's ignored value and error messages aside: the part
 * before them); an accepted registration is one of ours, an OpenSMTPD
 * one, or "ready", and names a service in range.
 */
#include <string.h>

#include "fuzz.h"

#include "proc_table.h"

static void
one_line(const char *line)
{
	static char		 again[PROC_LINE_MAX + 64];
	struct proc_answer	 a;
	enum table_service	 s;
	const char		*kind;
	int			 rc, n;

	if (proc_parse_answer(line, &a) == 0) {
		CHECK(a.status == TABLE_FOUND || a.status == TABLE_NOTFOUND ||
		    a.status == TABLE_ERROR);
		CHECK(a.op == PROC_OP_LOOKUP || a.op == PROC_OP_CHECK);
		CHECK((a.text != NULL) == ((a.op == PROC_OP_LOOKUP &&
		    a.status == TABLE_FOUND) || (a.status == TABLE_ERROR &&
		    a.text != NULL)));
		if (a.text != NULL)
			CHECK(a.text > line && a.text <= line + strlen(line));
		kind = a.op == PROC_OP_LOOKUP ? "lookup" : "check";
		if (a.status == TABLE_NOTFOUND)
			n = snprintf(again, sizeof(again),
			    "%s-result|%llx|not-found", kind,
			    (unsigned long long)a.id);
		else if (a.status == TABLE_ERROR)
			n = snprintf(again, sizeof(again), "%s-result|%llx|"
			    "error%s%s", kind, (unsigned long long)a.id,
			    a.text != NULL ? "|" : "",
			    a.text != NULL ? a.text : "");
		else if (a.op == PROC_OP_LOOKUP)
			n = snprintf(again, sizeof(again),
			    "%s-result|%llx|found|%s", kind,
			    (unsigned long long)a.id, a.text);
		else
			n = snprintf(again, sizeof(again),
			    "%s-result|%llx|found", kind,
			    (unsigned long long)a.id);
		CHECK(n > 0 && (size_t)n < sizeof(again));
		CHECK(strncmp(again, line, (size_t)n) == 0);
		CHECK(line[n] == '\0' || (a.op == PROC_OP_CHECK &&
		    a.status == TABLE_FOUND && line[n] == '|'));
	}
	rc = proc_parse_register(line, &s);
	CHECK(rc == -1 || rc == PROC_REG_SERVICE || rc == PROC_REG_OTHER ||
	    rc == PROC_REG_READY);
	if (rc == PROC_REG_SERVICE)
		CHECK((unsigned)s < TS_COUNT && strcmp(line + 9,
		    table_service_name(s)) == 0);
	if (rc != -1)
		CHECK(strncmp(line, "register|", 9) == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char	line[PROC_LINE_MAX + 1];
	size_t		i, start = 0, n;

	for (i = 0; i <= size; i++) {
		if (i < size && data[i] != '\n')
			continue;
		n = i - start;
		if (n <= PROC_LINE_MAX) {
			memcpy(line, data + start, n);
			line[n] = '\0';	/* a NUL inside cuts it, as strlen */
			one_line(line);
		}
		start = i + 1;
	}
	return 0;
}
