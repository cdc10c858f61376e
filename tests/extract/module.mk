# tests/extract: unit tests of extract/ (the API through the real helper, the
# isolation with fake helpers, the in-process parsers). They need the helper
# built: $(EXTRACT_BIN) is a prerequisite so `make` orders it first.
$(B)/tests/extract/test_extract.o: CFLAGS += $(EXTRACT_PKG_CFLAGS)
$(B)/tests/extract/test_extract: $(B)/tests/extract/test_extract.o $(EXTRACT_CORE) $(EXTRACT_LIB) $(COMMON_LIB) | $(EXTRACT_BIN)
	$(CC) $(LDFLAGS) -o $@ $(filter %.o %.a,$^) $(EXTRACT_PKG_LIBS) $(LDLIBS)
TESTBINS += $(B)/tests/extract/test_extract
