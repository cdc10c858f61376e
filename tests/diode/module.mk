# tests/diode/: unit tests of sluice-diode's wire format, FEC, receiving core
# and vault; diode_forge writes hostile-but-signed streams for t_*.sh (not a
# test_* binary: tests/run does not run it by itself).
DIODE_TEST_LIBS := $(DIODE_LIB) $(COMMON_LIB)

TESTBINS += $(B)/tests/diode/test_diode $(B)/tests/diode/diode_forge

$(B)/tests/diode/test_diode: $(B)/tests/diode/test_diode.o $(DIODE_TEST_LIBS)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
$(B)/tests/diode/diode_forge: $(B)/tests/diode/diode_forge.o $(DIODE_TEST_LIBS)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
