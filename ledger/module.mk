# ledger/: the access ledger (SQLite WAL, hash chain + HMAC, group commit).
LEDGER_SRC := $(wildcard ledger/*.c)
LEDGER_LIB := $(B)/libledger.a
LIBS += $(LEDGER_LIB)
$(LEDGER_LIB): $(LEDGER_SRC:%.c=$(B)/%.o)
	@mkdir -p $(dir $@)
	$(AR) rcs $@ $^
MANPAGES += man/sluice-ledger.5
