# diode/: sluice-diode, the one-way copy into the vault (send | recv).
DIODE_SRC := $(filter-out diode/fuzz_frame.c,$(wildcard diode/*.c))
DIODE_LIB := $(B)/libdiode.a
DIODE_BIN := $(B)/sluice-diode
PROGRAMS  += $(DIODE_BIN)
MANPAGES  += man/sluice-diode.8

$(DIODE_LIB): $(filter-out $(B)/diode/main.o,$(DIODE_SRC:%.c=$(B)/%.o))
	@mkdir -p $(dir $@)
	$(AR) rcs $@ $^

$(DIODE_BIN): $(B)/diode/main.o $(DIODE_LIB) $(LEDGER_LIB) $(DLP_LIB) $(COMMON_LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# libFuzzer target for the receiver's parser (packets, stream framing, FEC
# blocks, records). `make fuzz-diode FUZZ_SECONDS=120`.
FUZZ_SECONDS ?= 60
FUZZ_CC      ?= clang
FUZZ_FLAGS   := -g -O1 -std=c17 -D_GNU_SOURCE -I. $(PKG_CFLAGS) -fsanitize=fuzzer,address,undefined
FUZZ_DIODE_SRC := diode/fuzz_frame.c diode/frame.c diode/fec.c diode/rx.c diode/vault.c common/hash.c common/io.c common/log.c
build-fuzz/fuzz_frame: $(FUZZ_DIODE_SRC) diode/diode.h
	@mkdir -p build-fuzz
	$(FUZZ_CC) $(FUZZ_FLAGS) -o $@ $(FUZZ_DIODE_SRC) $(PKG_LIBS)

.PHONY: fuzz-diode
fuzz-diode: build-fuzz/fuzz_frame
	mkdir -p $(FUZZ_CORPUS)/corpus-diode
	cp -n tests/diode/corpus/* $(FUZZ_CORPUS)/corpus-diode/ 2>/dev/null || true
	build-fuzz/fuzz_frame -max_total_time=$(FUZZ_SECONDS) $(FUZZ_ARGS) -max_len=300000 \
	    $(FUZZ_CORPUS)/corpus-diode tests/diode/corpus
fuzz: fuzz-diode

# The sender may execute the installed extraction helper (extract/extract.c's
# default) once confined.
$(B)/diode/sandbox.o: CFLAGS += -DSLUICE_EXTRACT_INSTALLED='"$(PREFIX)/bin/sluice-extract"'
