# cli/: the `sluice` command.
CLI_SRC := $(wildcard cli/*.c)
$(B)/cli/main.o: CFLAGS += -DSLUICE_RULES_DIR='"$(PREFIX)/share/sluice/rules"'
$(B)/sluice: $(CLI_SRC:%.c=$(B)/%.o) $(LEDGER_LIB) $(DLP_LIB) $(COMMON_LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
PROGRAMS += $(B)/sluice
MANPAGES += man/sluice.1
