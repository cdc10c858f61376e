# extract/: text extraction from documents (issue 6).
#
# Two archives, on purpose:
#   $(EXTRACT_LIB)   the public API (extract/extract.h): runs the helper with
#                    posix_spawn; needs libc only, so sluicefs and the diode
#                    link no document parser.
#   $(EXTRACT_CORE)  the parsers (poppler-glib, libarchive, libxml2, GMime),
#                    linked only into the sluice-extract helper, the unit tests
#                    and the fuzz target.
# Debian packages: libpoppler-glib-dev libarchive-dev libxml2-dev libgmime-3.0-dev
EXTRACT_PKGS        := poppler-glib libarchive libxml-2.0 gmime-3.0
EXTRACT_PKG_CFLAGS  := $(shell pkg-config --cflags $(EXTRACT_PKGS) 2>/dev/null)
EXTRACT_PKG_LIBS    := $(shell pkg-config --libs $(EXTRACT_PKGS) 2>/dev/null)

EXTRACT_LIB      := $(B)/libextract.a
EXTRACT_CORE     := $(B)/libextract-core.a
EXTRACT_BIN      := $(B)/sluice-extract
EXTRACT_CORE_SRC := extract/core.c extract/pdf.c extract/zip.c extract/xml.c extract/zipdoc.c \
                    extract/html.c extract/rtf.c extract/eml.c
EXTRACT_CORE_OBJ := $(EXTRACT_CORE_SRC:%.c=$(B)/%.o)

PROGRAMS += $(EXTRACT_BIN)
MANPAGES += man/sluice-documents.7

$(EXTRACT_CORE_OBJ) $(B)/extract/helper.o: CFLAGS += $(EXTRACT_PKG_CFLAGS)
$(B)/extract/extract.o: CFLAGS += -DSLUICE_EXTRACT_DEFAULT='"$(PREFIX)/bin/sluice-extract"'

$(EXTRACT_LIB): $(B)/extract/extract.o
	@mkdir -p $(dir $@)
	$(AR) rcs $@ $^

$(EXTRACT_CORE): $(EXTRACT_CORE_OBJ)
	@mkdir -p $(dir $@)
	$(AR) rcs $@ $^

$(EXTRACT_BIN): $(B)/extract/helper.o $(EXTRACT_CORE) $(EXTRACT_LIB) $(COMMON_LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(EXTRACT_PKG_LIBS) $(LDLIBS)

# libFuzzer target over every extractor, in process (no helper): the input's
# first byte picks the format and drop_metadata. `make fuzz-extract FUZZ_SECONDS=60`.
FUZZ_SECONDS ?= 60
FUZZ_CC      ?= clang
FUZZ_EXTRACT_SRC := tests/extract/fuzz_extract.c $(EXTRACT_CORE_SRC) extract/extract.c common/log.c
build-fuzz/fuzz_extract: $(FUZZ_EXTRACT_SRC) extract/extract.h extract/extract_i.h
	@mkdir -p build-fuzz
	$(FUZZ_CC) -g -O1 -std=c17 -D_GNU_SOURCE -I. $(EXTRACT_PKG_CFLAGS) \
	    -fsanitize=fuzzer,address,undefined -o $@ $(FUZZ_EXTRACT_SRC) $(EXTRACT_PKG_LIBS)

.PHONY: fuzz-extract
fuzz-extract: build-fuzz/fuzz_extract
	mkdir -p $(FUZZ_CORPUS)/corpus-extract
	build-fuzz/fuzz_extract -max_total_time=$(FUZZ_SECONDS) $(FUZZ_ARGS) -max_len=200000 -rss_limit_mb=2048 \
	    $(FUZZ_CORPUS)/corpus-extract tests/extract/corpus
fuzz: fuzz-extract
