# tests/dlp: unit tests of the DLP engine (public header only).
$(B)/tests/dlp/test_dlp: $(B)/tests/dlp/test_dlp.o $(DLP_LIB) $(COMMON_LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
TESTBINS += $(B)/tests/dlp/test_dlp

# libFuzzer targets (clang): the rule/policy parser and the scanner.
# `make fuzz-dlp FUZZ_SECONDS=60`; seeds in tests/dlp/corpus-*.
FUZZ_DLP_SRC := $(wildcard dlp/*.c) extract/extract.c common/hash.c common/io.c common/log.c
build-fuzz/fuzz_rules: tests/dlp/fuzz_rules.c $(FUZZ_DLP_SRC) dlp/dlp.h dlp/dlp_i.h
	@mkdir -p build-fuzz
	$(FUZZ_CC) $(FUZZ_FLAGS) -o $@ tests/dlp/fuzz_rules.c $(FUZZ_DLP_SRC) $(PKG_LIBS) -lm
build-fuzz/fuzz_scan: tests/dlp/fuzz_scan.c $(FUZZ_DLP_SRC) dlp/dlp.h dlp/dlp_i.h
	@mkdir -p build-fuzz
	$(FUZZ_CC) $(FUZZ_FLAGS) -o $@ tests/dlp/fuzz_scan.c $(FUZZ_DLP_SRC) $(PKG_LIBS) -lm

.PHONY: fuzz-dlp
fuzz-dlp: build-fuzz/fuzz_rules build-fuzz/fuzz_scan
	mkdir -p $(FUZZ_CORPUS)/corpus-rules $(FUZZ_CORPUS)/corpus-scan
	build-fuzz/fuzz_rules -max_total_time=$(FUZZ_SECONDS) $(FUZZ_ARGS) -max_len=8192 \
	    -dict=tests/dlp/rules.dict $(FUZZ_CORPUS)/corpus-rules tests/dlp/corpus-rules
	build-fuzz/fuzz_scan -max_total_time=$(FUZZ_SECONDS) $(FUZZ_ARGS) -max_len=65536 \
	    $(FUZZ_CORPUS)/corpus-scan tests/dlp/corpus-scan
fuzz: fuzz-dlp
