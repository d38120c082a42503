# mk/fuzz.mk -- build and smoke-run the libFuzzer harnesses (GNU make).
#
#   make -f mk/fuzz.mk              build obj-fuzz/fuzz_* from regress/fuzz/
#   make -f mk/fuzz.mk fuzz-smoke   build, then run each for a bounded time
#   make -f mk/fuzz.mk fuzz-long    run each for FUZZ_TIME s (make fuzz-long:
#                                   600 s), then a table of execs/s and
#                                   coverage (-j2: two at a time)
#   make -f mk/fuzz.mk fuzz-clean
#
# Each harness links against a library of every source the daemons are
# built from, compiled with coverage instrumentation and ASan+UBSan, so a
# harness exercises the same code that runs in production.  While the
# tree is half-built, the library can be narrowed, e.g.
#
#   make -f mk/fuzz.mk FUZZ_LIB_SRCS='$(wildcard common/*.c)'
#
# Knobs: FUZZ_CC (clang), FUZZ_OBJDIR (obj-fuzz), FUZZ_WERROR (-Werror),
# FUZZ_TIME (seconds per harness, 20), FUZZ_RUNS (cap on executions),
# FUZZ_ARGS (extra libFuzzer flags).
#
# Seed corpus for regress/fuzz/fuzz_NAME.c: regress/fuzz/corpus/NAME/
# (or corpus/fuzz_NAME/); a dictionary: regress/fuzz/NAME.dict.  The seeds
# are only read: new inputs go to $(FUZZ_OBJDIR)/corpus/NAME/ and crash
# reproducers to $(FUZZ_OBJDIR)/artifacts/.

FUZZ_CC		?= clang
FUZZ_OBJDIR	?= obj-fuzz
FUZZ_WERROR	?= -Werror
FUZZ_TIME	?= 20
FUZZ_RUNS	?= 10000000
FUZZ_ARGS	?=

WARNINGS	= -Wall -Wextra $(FUZZ_WERROR) -Wshadow -Wpointer-arith \
		  -Wmissing-prototypes -Wstrict-prototypes -Wformat=2 \
		  -Wno-unused-parameter

PKGS		= libevent libevent_openssl openssl libseccomp libbsd-overlay \
		  libpsl zlib libcurl hiredis libpq
PKG_CFLAGS	:= $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS	:= $(shell pkg-config --libs $(PKGS) 2>/dev/null)

# Library objects get coverage instrumentation but no main(); the
# harness link adds libFuzzer's main.
SAN_COMMON	= -fsanitize=address,undefined -fno-sanitize-recover=undefined
SAN_COMPILE	= -fsanitize=fuzzer-no-link $(SAN_COMMON)
SAN_LINK	= -fsanitize=fuzzer $(SAN_COMMON)

# POSTHASTE_FUZZ: the few test-only seams in production code (grep for
# it); never set by the main Makefile, so no installed binary has them.
include mk/layout.mk
FUZZ_CPPFLAGS	= -I. $(TEST_CPPFLAGS) -D_DEFAULT_SOURCE \
		  -DSMTPD_SYSCONFDIR=\"/etc\" -DPOSTHASTE_FUZZ
FUZZ_CFLAGS	= -std=c11 -O1 -g -fno-omit-frame-pointer $(WARNINGS) \
		  $(SAN_COMPILE) $(PKG_CFLAGS)
FUZZ_LDLIBS	= $(PKG_LIBS) -ldb -lunbound -lcrypt -lresolv
# OpenLDAP's client library (table/ldap.c)
FUZZ_LDLIBS	+= -lldap -llber

# Same split as the main Makefile (mk/layout.mk): files with a main()
# stay out.
FUZZ_LIB_SRCS	?= $(LIB_SRCS)
FUZZ_LIB_OBJS	:= $(patsubst %.c,$(FUZZ_OBJDIR)/%.o,$(FUZZ_LIB_SRCS))
FUZZ_LIB	:= $(FUZZ_OBJDIR)/libposthaste-fuzz.a

FUZZ_SRCS	:= $(wildcard regress/fuzz/fuzz_*.c)
FUZZ_NAMES	:= $(patsubst regress/fuzz/%.c,%,$(FUZZ_SRCS))
FUZZ_OBJS	:= $(patsubst %,$(FUZZ_OBJDIR)/regress/fuzz/%.o,$(FUZZ_NAMES))
FUZZ_BINS	:= $(patsubst %,$(FUZZ_OBJDIR)/%,$(FUZZ_NAMES))

# The archive must be rebuilt when the set of sources changes (say,
# FUZZ_LIB_SRCS is narrowed), not only when an object is newer, or a
# stale object from the wider set would stay in it.  The list file is
# rewritten only when its contents differ.
FUZZ_LIB_LIST	:= $(FUZZ_OBJDIR)/lib-srcs.txt
$(shell mkdir -p $(FUZZ_OBJDIR) && \
	echo '$(sort $(FUZZ_LIB_SRCS))' | cmp -s - $(FUZZ_LIB_LIST) || \
	echo '$(sort $(FUZZ_LIB_SRCS))' > $(FUZZ_LIB_LIST))

.PHONY: fuzz-all fuzz-smoke fuzz-long fuzz-clean
.DELETE_ON_ERROR:
# Reached only through pattern rules, these would count as intermediate
# and be deleted after each build, forcing a rebuild every time.
.SECONDARY: $(FUZZ_OBJS) $(FUZZ_BINS)

fuzz-all: $(FUZZ_BINS)

$(FUZZ_LIB): $(FUZZ_LIB_OBJS) $(FUZZ_LIB_LIST)
	rm -f $@
	ar rcs $@ $(FUZZ_LIB_OBJS)

$(FUZZ_OBJDIR)/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CPPFLAGS) $(FUZZ_CFLAGS) -MMD -MP -c -o $@ $<

# Harnesses define LLVMFuzzerTestOneInput without needing a header.  The
# library is built as the daemon is (no _GNU_SOURCE); the harnesses are
# Linux test code and may use memfd_create(), memmem(), accept4().
$(FUZZ_OBJDIR)/regress/fuzz/%.o: regress/fuzz/%.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CPPFLAGS) -D_GNU_SOURCE $(FUZZ_CFLAGS) \
	    -Wno-missing-prototypes \
	    -MMD -MP -c -o $@ $<

$(FUZZ_OBJDIR)/fuzz_%: $(FUZZ_OBJDIR)/regress/fuzz/fuzz_%.o $(FUZZ_LIB)
	$(FUZZ_CC) $(SAN_LINK) -o $@ $< $(FUZZ_LIB) $(FUZZ_LDLIBS)

-include $(shell find $(FUZZ_OBJDIR) -name '*.d' 2>/dev/null)

# The command line of harness fuzz_$* on its scratch corpus (written to,
# first) and its seeds (only read), with its dictionary if it has one:
# shared by the smoke and the long runs.
FUZZ_CMD = name=$(patsubst fuzz_%,%,$*); \
	work=$(FUZZ_OBJDIR)/corpus/$$name; \
	mkdir -p $$work $(FUZZ_OBJDIR)/artifacts $(FUZZ_OBJDIR)/long || exit 1; \
	seeds=; \
	for d in regress/fuzz/corpus/$$name regress/fuzz/corpus/$*; do \
		if [ -d $$d ]; then seeds="$$seeds $$d"; fi; \
	done; \
	dict=; \
	if [ -f regress/fuzz/$$name.dict ]; then \
		dict=-dict=regress/fuzz/$$name.dict; \
	fi; \
	echo "==> $* ($(FUZZ_TIME)s)"; \
	$(FUZZ_OBJDIR)/$* -max_total_time=$(FUZZ_TIME) -timeout=10 $$dict \
	    -artifact_prefix=$(FUZZ_OBJDIR)/artifacts/$*- $(FUZZ_ARGS)

# One target per harness, so "make -j -f mk/fuzz.mk fuzz-smoke" runs them
# side by side.  -runs caps a very fast harness, -max_total_time a slow
# one; either way the run ends and a crash makes make fail.
fuzz-smoke: $(patsubst %,fuzz-smoke-%,$(FUZZ_NAMES))

fuzz-smoke-%: $(FUZZ_OBJDIR)/%
	@$(FUZZ_CMD) -runs=$(FUZZ_RUNS) $$work $$seeds

# The long run: each harness alone (or two with -j2) for FUZZ_TIME
# seconds, its log kept in $(FUZZ_OBJDIR)/long/, then one table.  New
# inputs go to the scratch corpus (the first directory), never to the
# seeds.  A harness that crashes still gets its line (and the run fails).
FUZZ_LONG_LOGS	:= $(patsubst %,$(FUZZ_OBJDIR)/long/%.log,$(FUZZ_NAMES))

fuzz-long: $(FUZZ_BINS)
	@rm -f $(FUZZ_LONG_LOGS)
	@$(MAKE) --no-print-directory -f mk/fuzz.mk -k $(FUZZ_LONG_LOGS); \
	rc=$$?; sh mk/fuzz-table.sh $(FUZZ_LONG_LOGS); \
	test $$rc -eq 0

$(FUZZ_OBJDIR)/long/%.log: $(FUZZ_OBJDIR)/%
	@$(FUZZ_CMD) -print_final_stats=1 $$work $$seeds > $@.tmp 2>&1; \
	rc=$$?; echo "exit: $$rc" >> $@.tmp; mv $@.tmp $@; \
	test $$rc -eq 0

fuzz-clean:
	rm -rf $(FUZZ_OBJDIR)
