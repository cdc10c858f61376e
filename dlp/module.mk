# dlp/: the DLP engine (rules, policy, classification, scanning, masking).
DLP_SRC := $(wildcard dlp/*.c)
DLP_LIB := $(B)/libdlp.a
# The engine extracts documents through extract/extract.h; that client is
# libc-only (the parsers run in the sluice-extract helper), so it is carried
# in this archive and every program that links the engine gets it.
$(DLP_LIB): $(DLP_SRC:%.c=$(B)/%.o) $(B)/extract/extract.o
	@mkdir -p $(dir $@)
	$(AR) rcs $@ $^
MANPAGES += man/sluice-rules.5
