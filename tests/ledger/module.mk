# tests/ledger/: unit tests of the access ledger.
LEDGER_TEST_LIBS := $(LEDGER_LIB) $(COMMON_LIB)

TESTBINS += $(B)/tests/ledger/test_ledger

$(B)/tests/ledger/test_ledger: $(B)/tests/ledger/test_ledger.o $(LEDGER_TEST_LIBS)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
