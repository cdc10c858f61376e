# sluice — top-level build.
#
# Each module directory owns a module.mk that appends to the lists below, so
# that modules can be added without editing this file. Everything is built
# out of tree into $(B) (build/ by default; build-san/ for `make sanitize`).
#
#   make            build every program and test binary
#   make check      run every test (unit + integration); ends with a summary line
#   make bench      run the benchmarks (separate from check: they take time)
#   make soak       16 readers for 10 minutes under reloads and publishing
#   make sanitize   ASan+UBSan build in build-san/, then the whole test suite against it
#   make memcheck   every unit test binary under valgrind's memcheck
#   make fuzz       libFuzzer campaigns, bounded in time (FUZZ_SECONDS each),
#                   growing their corpora under FUZZ_CORPUS (build-fuzz);
#                   FUZZ_ARGS: more libFuzzer flags
#   make deps       install the Debian packages a fresh machine needs
#   make install    PREFIX=/usr/local DESTDIR=

B        ?= build
FUZZ_CORPUS ?= build-fuzz
PREFIX   ?= /usr/local
DESTDIR  ?=
VERSION  := 0.1.0

CC       ?= cc
OPTFLAGS ?= -O2 -g
PKGS     := libpcre2-8 libmagic yaml-0.1 libhs openssl libzstd sqlite3 fuse3 cmocka libseccomp libisal
DEPS_DEB := build-essential pkg-config libfuse3-dev fuse3 libpcre2-dev pcre2-utils \
            libmagic-dev libmagic1 libsqlite3-dev sqlite3 libssl-dev libzstd-dev libyaml-dev \
            libvectorscan-dev libcmocka-dev libseccomp-dev libisal-dev bindfs udpcast \
            clang libclang-rt-14-dev iproute2 iptables python3 man-db groff xxd systemd \
            libpoppler-glib-dev libarchive-dev libxml2-dev libgmime-3.0-dev qpdf zstd time \
            python3-yaml python3-docx python3-openpyxl python3-odf python3-reportlab \
            strace docker-compose valgrind

PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

CFLAGS   += $(OPTFLAGS) -std=c17 -D_GNU_SOURCE -DSLUICE_VERSION='"$(VERSION)"' \
            -Wall -Wextra -Werror -Wshadow -Wno-missing-field-initializers \
            -fno-strict-aliasing -I. $(PKG_CFLAGS) $(SAN_FLAGS)
LDFLAGS  += $(SAN_FLAGS)
LDLIBS   += $(PKG_LIBS) -lpthread -lm

# The shared static libraries, named here because module.mk files are read in
# alphabetical order and a program's rule needs them before their module's file.
COMMON_LIB := $(B)/libcommon.a
DLP_LIB    := $(B)/libdlp.a
LEDGER_LIB := $(B)/libledger.a

# Filled in by the module.mk files.
LIBS      :=   # static archives, in link order (dependents first)
PROGRAMS  :=   # installed binaries
TESTBINS  :=   # unit test binaries run by `make check`
MANPAGES  :=

.PHONY: all check bench soak sanitize memcheck fuzz deps deps-ensure demo install clean
all:

include $(sort $(wildcard */module.mk */*/module.mk))

all: $(PROGRAMS) $(TESTBINS)

$(B)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c -o $@ $<

-include $(shell find $(B) -name '*.d' 2>/dev/null)

# Installs the Debian packages only when something is missing, so that each
# of the README's two commands works on a fresh machine by itself.
deps-ensure:
	@pkg-config --exists $(PKGS) poppler-glib libarchive libxml-2.0 gmime-3.0 2>/dev/null && \
	    command -v fusermount3 bindfs udp-sender pcre2grep sqlite3 clang qpdf groff xxd \
	    systemd-analyze valgrind >/dev/null && \
	    /usr/bin/python3 -c 'import yaml, docx, openpyxl, odf, reportlab' 2>/dev/null || $(MAKE) deps

demo: deps-ensure
	$(MAKE) all
	examples/demo/run.sh

check: deps-ensure
	$(MAKE) all
	tests/run $(B)

bench: all
	tests/bench/run $(B)

# 16 readers for SOAK_SECONDS (default 600) under policy reloads and diode
# publishing; reports ops/s, errors, sluicefs RSS, ledger completeness.
SOAK_SECONDS ?= 600
soak: all
	tests/soak/soak.sh $(SOAK_SECONDS)

# The whole suite against an ASan+UBSan build of everything, in its own
# directory (never mixed with build/'s objects). gcc's runtimes (libasan8,
# libubsan1) come with build-essential. tests/run sees the sanitized build and
# has every process write its reports to files it checks after each test.
# UBSan stops at the first error (-fno-sanitize-recover): a report is a
# failure, never a line lost in a log.
SAN_B     := build-san
SAN_OPT   := -O1 -g -fno-omit-frame-pointer
SAN_FLAGS_ALL := -fsanitize=address,undefined -fno-sanitize-recover=undefined
sanitize:
	$(MAKE) B=$(SAN_B) OPTFLAGS='$(SAN_OPT)' SAN_FLAGS='$(SAN_FLAGS_ALL)' check

# Every unit test binary (the test_* of TESTBINS) under valgrind's memcheck,
# built as `make` builds them (valgrind and ASan cannot share a process).
# A definite leak is an error; memory that libraries keep reachable until
# exit is not. tests/memcheck.supp: third-party noise only, each entry says
# why. Valgrind is 20 to over 100 times slower (the DLP engine's SIMD code):
# a longer per-test timeout, and SLUICE_MEMCHECK=1 lets a test thin out an
# exhaustive loop that make check and make sanitize run in full. A test that
# needs a system call valgrind cannot emulate (3.19: openat2, pidfd_open) is
# reported as skipped with the call's number, never silently.
MEMCHECK := valgrind --tool=memcheck --error-exitcode=99 --leak-check=full \
            --errors-for-leak-kinds=definite --suppressions=tests/memcheck.supp
memcheck: deps-ensure
	$(MAKE) all
	SLUICE_MEMCHECK=1 SLUICE_TEST_KINDS=unit SLUICE_TEST_WRAP='$(MEMCHECK)' SLUICE_TEST_TIMEOUT=3600 \
	    SLUICE_TEST_LOG_LINES=400 tests/run $(B)

deps:
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(DEPS_DEB)

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/sluice/rules
	install -m 0755 $(PROGRAMS) $(DESTDIR)$(PREFIX)/bin/
	install -m 0644 rules/*.yaml $(DESTDIR)$(PREFIX)/share/sluice/rules/
	for m in $(MANPAGES); do s=$${m##*.}; install -d $(DESTDIR)$(PREFIX)/share/man/man$$s && \
	    install -m 0644 $$m $(DESTDIR)$(PREFIX)/share/man/man$$s/ || exit 1; done

clean:
	rm -rf build build-san build-fuzz
