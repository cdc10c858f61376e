# tests/ledger/: unit tests of the access ledger, and ledger_tool (appends
# synthetic records for the integration tests, examples and `make bench`;
# not a test_* binary, so tests/run does not run it by itself).
LEDGER_TEST_LIBS := $(LEDGER_LIB) $(COMMON_LIB)

TESTBINS += $(B)/tests/ledger/test_ledger $(B)/tests/ledger/ledger_tool

$(B)/tests/ledger/test_ledger: $(B)/tests/ledger/test_ledger.o $(LEDGER_TEST_LIBS)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
$(B)/tests/ledger/ledger_tool: $(B)/tests/ledger/ledger_tool.o $(LEDGER_TEST_LIBS)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# libFuzzer target (clang): segment files and checkpoint lines.
# `make fuzz-ledger FUZZ_SECONDS=60`; seeds in tests/ledger/corpus.
FUZZ_CC ?= clang
FUZZ_FLAGS ?= -g -O1 -std=c17 -D_GNU_SOURCE -I. $(PKG_CFLAGS) -fsanitize=fuzzer,address,undefined
FUZZ_LEDGER_SRC := $(wildcard ledger/*.c) common/hash.c common/io.c common/log.c
build-fuzz/fuzz_ledger: tests/ledger/fuzz_ledger.c $(FUZZ_LEDGER_SRC) ledger/ledger.h ledger/ledger_i.h
	@mkdir -p build-fuzz
	$(FUZZ_CC) $(FUZZ_FLAGS) -o $@ tests/ledger/fuzz_ledger.c $(FUZZ_LEDGER_SRC) $(PKG_LIBS) -lpthread -lm

.PHONY: fuzz-ledger
fuzz-ledger: build-fuzz/fuzz_ledger
	mkdir -p $(FUZZ_CORPUS)/corpus-ledger
	build-fuzz/fuzz_ledger -max_total_time=$(FUZZ_SECONDS) $(FUZZ_ARGS) -max_len=65536 \
	    $(FUZZ_CORPUS)/corpus-ledger tests/ledger/corpus
fuzz: fuzz-ledger
