# fs/: sluicefs, the read-only sanitizing FUSE filesystem.
FS_SRC := $(wildcard fs/*.c)
FS_OBJ := $(FS_SRC:%.c=$(B)/%.o)
$(B)/sluicefs: $(FS_OBJ) $(LEDGER_LIB) $(DLP_LIB) $(COMMON_LIB)
	$(CC) $(LDFLAGS) -o $@ $(FS_OBJ) $(LEDGER_LIB) $(DLP_LIB) $(COMMON_LIB) $(LDLIBS)
PROGRAMS += $(B)/sluicefs
MANPAGES += man/sluicefs.8
# The sandbox lets the daemon execute the installed extraction helper (the
# same default as extract/extract.c).
$(B)/fs/sandbox.o: CFLAGS += -DSLUICE_EXTRACT_INSTALLED='"$(PREFIX)/bin/sluice-extract"'
