# tests/dlp: unit tests of the DLP engine (public header only).
$(B)/tests/dlp/test_dlp: $(B)/tests/dlp/test_dlp.o $(DLP_LIB) $(COMMON_LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
TESTBINS += $(B)/tests/dlp/test_dlp
