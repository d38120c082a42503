# Posthaste -- GNU make build.
#
#   make            build every program, and copy each beside its main()
#                   (smtpd/smtpd, programs/smtpctl ...)
#   make strict     compile every source as C11 + POSIX + BSD, without
#                   _GNU_SOURCE (obj-strict/, not linked)
#   make check      install missing Debian packages, build, run unit and
#                   integration tests, then again under ASan+UBSan
#   make check-fresh  the same on a new debootstrapped Debian 12 under /root
#   make run        install missing packages, build, run in the foreground on
#                   the safe default configuration (etc/smtpd.conf)
#   make install    PREFIX=/usr/local DESTDIR= SYSCONFDIR=/etc
#   make fuzz       build the libFuzzer harnesses (clang)
#   make fuzz-long  run each harness FUZZ_TIME seconds (600), then print a
#                   table of execs/s and coverage (-j2: two at a time)
#   make bench      run ../shared/bench against Posthaste and Postfix
#   make clean

PREFIX		?= /usr/local
SYSCONFDIR	?= /etc
SBINDIR		?= $(PREFIX)/sbin
BINDIR		?= $(PREFIX)/bin
MANDIR		?= $(PREFIX)/share/man
LIBEXECDIR	?= $(PREFIX)/libexec/posthaste
DESTDIR		?=

CC		?= cc
SAN		?=
# A sanitizer build's sandboxes allow more (platform/sandbox_linux.c,
# POSTHASTE_SAN): it lives in obj-san, never in obj, which holds what is
# installed.
ifeq ($(SAN),1)
OBJDIR		?= obj-san
else
OBJDIR		?= obj
endif
ifeq ($(SAN)$(OBJDIR),1obj)
$(error SAN=1 builds into obj-san, never into obj (what make install takes))
endif
ifneq ($(SAN),)
ifneq ($(filter install,$(MAKECMDGOALS)),)
$(error a sanitizer build (SAN=1) is never installed (mk/install.sh too))
endif
endif

WARNINGS	= -Wall -Wextra -Werror -Wshadow -Wpointer-arith \
		  -Wmissing-prototypes -Wstrict-prototypes -Wformat=2 \
		  -Wno-unused-parameter
HARDEN		= -fstack-protector-strong -fPIE -D_FORTIFY_SOURCE=2 \
		  -fstack-clash-protection
HARDEN_LD	= -pie -Wl,-z,relro -Wl,-z,now -Wl,-z,noexecstack

PKGS		= libevent libevent_openssl openssl libseccomp libbsd-overlay \
		  libpsl zlib libcurl hiredis libpq
PKG_CFLAGS	:= $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS	:= $(shell pkg-config --libs $(PKGS) 2>/dev/null)

OPT		?= -O2 -g
ifeq ($(SAN),1)
OPT		= -O1 -g -fno-omit-frame-pointer
SANFLAGS	= -fsanitize=address,undefined -fno-sanitize-recover=undefined
HARDEN		= -fstack-protector-strong -fPIE
endif

# smtpd -V: the version of the newest debian/changelog entry
POSTHASTE_VERSION ?= $(shell sed -n '1s/^[^(]*(\([^)]*\)).*/\1/p' debian/changelog 2>/dev/null)
include mk/layout.mk
CPPFLAGS	+= -I. $(addprefix -I,$(SHARED_DIRS)) -D_DEFAULT_SOURCE \
		   -DSMTPD_SYSCONFDIR=\"$(SYSCONFDIR)\" $(if $(SAN),-DPOSTHASTE_SAN=1) \
		   $(if $(POSTHASTE_VERSION),-DSMTPD_VERSION=\"$(POSTHASTE_VERSION)\")
CFLAGS		+= -std=c11 $(OPT) $(WARNINGS) $(HARDEN) $(SANFLAGS) $(PKG_CFLAGS)
LDFLAGS		+= $(HARDEN_LD) $(SANFLAGS)
LDLIBS		+= $(PKG_LIBS) -ldb -lunbound -lcrypt -lresolv -pthread
# OpenLDAP's client library (table/ldap.c: ldap: shared tables)
LDLIBS		+= -lldap -llber

# POSIX and the BSD extensions (-D_DEFAULT_SOURCE: what glibc needs under
# -std=c11, and what the BSDs give by default).  Only platform/ may need
# glibc's GNU extensions, and defines _GNU_SOURCE itself (platform.h).

LIB_OBJS	:= $(patsubst %.c,$(OBJDIR)/%.o,$(LIB_SRCS))
LIB		:= $(OBJDIR)/libposthaste.a

UNIT_SRCS	:= $(wildcard regress/unit/test_*.c)
UNIT_BINS	:= $(patsubst regress/unit/%.c,$(OBJDIR)/regress/%,$(UNIT_SRCS))
FUZZ_SRCS	:= $(wildcard regress/fuzz/fuzz_*.c)

.PHONY: all deps pkgcheck strict check check-fresh check-unit check-integration check-san run install \
	uninstall clean fuzz fuzz-long bench lint

BINS		:= $(patsubst %,$(OBJDIR)/bin/%,$(PROGS))

# each program is also copied beside its main (smtpd/smtpd ...)
IN_TREE		:= $(basename $(MAINS))
all: $(BINS) $(if $(SAN),,$(IN_TREE))

define program_rules
$(basename $(1)): $$(OBJDIR)/bin/$(notdir $(basename $(1)))
	cp -f $$< $$@

$$(OBJDIR)/bin/$(notdir $(basename $(1))): $$(OBJDIR)/$(basename $(1)).o $$(LIB) | pkgcheck
	@mkdir -p $$(dir $$@)
	$$(CC) $$(LDFLAGS) -o $$@ $$< $$(LIB) $$(LDLIBS)
endef
$(foreach m,$(MAINS),$(eval $(call program_rules,$(m))))

$(LIB): $(LIB_OBJS)
	rm -f $@
	ar rcs $@ $^

$(OBJDIR)/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	@$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP -c -o $@ $<

$(OBJDIR)/regress/%: regress/unit/%.c $(LIB)
	@mkdir -p $(dir $@)
	@echo "  CCLD    $@"
	@$(CC) $(CPPFLAGS) $(TEST_CPPFLAGS) $(CFLAGS) -Wno-missing-prototypes -o $@ $< $(LIB) \
	    $(LDFLAGS) $(LDLIBS) -lcmocka

-include $(shell find $(OBJDIR) -name '*.d' 2>/dev/null)

deps:
	@sh mk/deps.sh

# pkg-config is asked once, when make reads this file: say so plainly when
# it found nothing instead of failing later with missing symbols.
pkgcheck:
	@[ -n "$(PKG_LIBS)" ] || { echo "make: pkg-config finds no" \
	    "$(PKGS); run 'make deps' as root first" >&2; exit 1; }

# a worker that forges destinations, for test_privsep.py only
FORGE		:= $(OBJDIR)/regress/smtpd-forge

$(OBJDIR)/regress/forge/smtp_data.o: smtp/smtp_data.c
	@mkdir -p $(dir $@)
	@echo "  CC      $< (forging worker)"
	@$(CC) $(CPPFLAGS) -DPOSTHASTE_TEST_FORGE $(CFLAGS) -MMD -MP -c -o $@ $<

$(FORGE): $(OBJDIR)/smtpd/smtpd.o $(OBJDIR)/regress/forge/smtp_data.o $(LIB)
	@echo "  CCLD    $@"
	@$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# every sandboxed process tries a forbidden call on request, for
# test_sandbox.py only (platform/sandbox_linux.c, POSTHASTE_SANDBOX_TRY)
SANDBOX_TEST	:= $(OBJDIR)/regress/smtpd-sandbox

$(OBJDIR)/regress/sandbox/sandbox_linux.o: platform/sandbox_linux.c
	@mkdir -p $(dir $@)
	@echo "  CC      $< (sandbox test build)"
	@$(CC) $(CPPFLAGS) -DPOSTHASTE_TEST_SANDBOX $(CFLAGS) -MMD -MP -c -o $@ $<

$(SANDBOX_TEST): $(OBJDIR)/smtpd/smtpd.o \
    $(OBJDIR)/regress/sandbox/sandbox_linux.o $(LIB)
	@echo "  CCLD    $@"
	@$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# signs and verifies message files through common/dkim.h, for
# test_dkim_codec.py (built by the regress/unit rule above)
DKIM_TOOL	:= $(OBJDIR)/regress/dkim_tool
# speaks to a real milter through common/milter.h, for
# test_milter_codec.py (built by the same rule)
MILTER_PROBE	:= $(OBJDIR)/regress/milter_probe
# asks a shared table through lookup's own path (table/remote.c), for
# test_table_pgsql.py (built by the same rule)
TABLE_PROBE	:= $(OBJDIR)/regress/table_probe

unit: $(UNIT_BINS) $(FORGE) $(SANDBOX_TEST) $(DKIM_TOOL) $(MILTER_PROBE) \
    $(TABLE_PROBE)

# Compile (no link) every library and program source as strict C11 and
# POSIX.1-2008 with the BSD extensions (_DEFAULT_SOURCE) and nothing of
# GNU: what a BSD libc offers, so the Linux-only calls are caught here,
# outside platform/.  Objects go to obj-strict/, never linked.
STRICT_DIR	:= obj-strict
STRICT_FLAGS	:= -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE \
		   -Wall -Wextra -Werror -Wno-unused-parameter
STRICT_CPPFLAGS	:= -I. $(addprefix -I,$(SHARED_DIRS)) \
		   -DSMTPD_SYSCONFDIR=\"$(SYSCONFDIR)\" $(PKG_CFLAGS)
STRICT_OBJS	:= $(patsubst %.c,$(STRICT_DIR)/%.o,$(SRCS))

strict: $(STRICT_OBJS)
	@echo "strict: $(words $(STRICT_OBJS)) files compile as C11 + POSIX +" \
	    "BSD without _GNU_SOURCE"

$(STRICT_DIR)/%.o: %.c | pkgcheck
	@mkdir -p $(dir $@)
	@echo "  CC      $< (strict)"
	@$(CC) $(STRICT_FLAGS) $(STRICT_CPPFLAGS) \
	    -MMD -MP -c -o $@ $<

-include $(shell find $(STRICT_DIR) -name '*.d' 2>/dev/null)

check-unit: $(UNIT_BINS)
	@sh mk/run-unit.sh $(UNIT_BINS)

check-integration: all
	@/usr/bin/python3 regress/integration/run.py --bindir $(OBJDIR)/bin

# The whole suite: normal build, then again under ASan+UBSan.
check: deps
	@sh mk/check.sh

# The README's two commands on a freshly bootstrapped Debian 12 (root,
# network to the mirror, 15-25 minutes; not part of check or CI).
check-fresh:
	@sh mk/check-fresh.sh

# deps may install pkg-config and the -dev packages this Makefile asked
# pkg-config about when it was read: build in a make that reads it anew.
run: deps
	@$(MAKE) --no-print-directory all
	@sh mk/run.sh

fuzz:
	@$(MAKE) --no-print-directory -f mk/fuzz.mk

FUZZ_TIME	?= 600
fuzz-long:
	@$(MAKE) --no-print-directory -f mk/fuzz.mk fuzz-long \
	    FUZZ_TIME=$(FUZZ_TIME)

bench: all
	@sh mk/bench.sh

install: all
	OBJDIR=$(OBJDIR) sh mk/install.sh "$(DESTDIR)" "$(SBINDIR)" "$(BINDIR)" "$(MANDIR)" \
	    "$(SYSCONFDIR)" "$(LIBEXECDIR)"

clean:
	rm -rf obj obj-san obj-fuzz obj-strict $(IN_TREE) regress/results
