# tests/fs/: unit tests of sluicefs's source access and view cache (the
# integration tests t_*.sh mount for real).
TESTBINS += $(B)/tests/fs/test_fs
$(B)/tests/fs/test_fs: $(B)/tests/fs/test_fs.o $(B)/fs/source.o $(B)/fs/view.o $(DLP_LIB) $(COMMON_LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
