# cli/: the `sluice` command.
CLI_SRC := $(wildcard cli/*.c)
# `sluice ledger` comes from cli/cmd_ledger.c (the ledger's own commands).
ifeq ($(wildcard cli/cmd_ledger.c),)
$(B)/cli/main.o: CFLAGS += -DSLUICE_NO_LEDGER_CMD
endif
$(B)/cli/main.o: CFLAGS += -DSLUICE_RULES_DIR='"$(PREFIX)/share/sluice/rules"'
$(B)/sluice: $(CLI_SRC:%.c=$(B)/%.o) $(LEDGER_LIB) $(DLP_LIB) $(COMMON_LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
PROGRAMS += $(B)/sluice
MANPAGES += man/sluice.1
