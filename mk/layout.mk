# mk/layout.mk -- the source tree as the builds see it (GNU make),
# included by the Makefile and by mk/fuzz.mk.
#
# The layout (README.md): one folder per process, the user programs in
# programs/, shared code in common/ (and the library folders config/ and
# table/).  Only the shared folders are on the include path: a process
# includes its own headers from its own folder, and another folder's
# header only by naming it ("mda/mda_proc.h"), so crossing is visible.
SHARED_DIRS	:= common config table platform
# Every top-level folder's C files; a file with a main() (KNF: "main(" at
# the start of a line) is a program named after it, everything else goes
# into one library each program takes what it needs from.  No list to
# keep by hand: a new file or folder is picked up as it is.
SRCS		:= $(wildcard */*.c)
SRC_DIRS	:= $(sort $(patsubst %/,%,$(dir $(SRCS))))
LPAREN		:= (
MAINS		:= $(shell grep -l '^main$(LPAREN)' $(SRCS))
PROGS		:= $(basename $(notdir $(MAINS)))
LIB_SRCS	:= $(filter-out $(MAINS),$(SRCS))
# tests and harnesses look inside every folder
TEST_CPPFLAGS	:= $(addprefix -I,$(SRC_DIRS))
