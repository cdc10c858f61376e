# tests/extract: unit tests of extract/ (the API through the real helper, the
# isolation with fake helpers, the in-process parsers). They need the helper
# built: $(EXTRACT_BIN) is a prerequisite so `make` orders it first.
$(B)/tests/extract/test_extract.o: CFLAGS += $(EXTRACT_PKG_CFLAGS)
$(B)/tests/extract/test_extract: $(B)/tests/extract/test_extract.o $(EXTRACT_CORE) $(EXTRACT_LIB) $(COMMON_LIB) | $(EXTRACT_BIN)
	$(CC) $(LDFLAGS) -o $@ $(filter %.o %.a,$^) $(EXTRACT_PKG_LIBS) $(LDLIBS)
TESTBINS += $(B)/tests/extract/test_extract

# extract_bench: the measuring tool of tests/bench/bench_extract.sh.
$(B)/tests/extract/extract_bench: $(B)/tests/extract/extract_bench.o $(EXTRACT_LIB) $(COMMON_LIB) | $(EXTRACT_BIN)
	$(CC) $(LDFLAGS) -o $@ $(filter %.o %.a,$^) $(LDLIBS)
TESTBINS += $(B)/tests/extract/extract_bench
