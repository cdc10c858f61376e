# tests/ledger/: unit tests of the access ledger, and ledger_tool (appends
# synthetic records for the integration tests, examples and `make bench`;
# not a test_* binary, so tests/run does not run it by itself).
LEDGER_TEST_LIBS := $(LEDGER_LIB) $(COMMON_LIB)

TESTBINS += $(B)/tests/ledger/test_ledger $(B)/tests/ledger/ledger_tool

$(B)/tests/ledger/test_ledger: $(B)/tests/ledger/test_ledger.o $(LEDGER_TEST_LIBS)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
$(B)/tests/ledger/ledger_tool: $(B)/tests/ledger/ledger_tool.o $(LEDGER_TEST_LIBS)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
