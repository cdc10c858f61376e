# dlp/: the DLP engine (rules, policy, classification, scanning, masking).
DLP_SRC := $(wildcard dlp/*.c)
DLP_LIB := $(B)/libdlp.a
$(DLP_LIB): $(DLP_SRC:%.c=$(B)/%.o)
	@mkdir -p $(dir $@)
	$(AR) rcs $@ $^
MANPAGES += man/sluice-rules.5
