# common/: logging, hashing, key files, careful I/O — linked into every program.
COMMON_SRC := $(wildcard common/*.c)
COMMON_LIB := $(B)/libcommon.a
$(COMMON_LIB): $(COMMON_SRC:%.c=$(B)/%.o)
	@mkdir -p $(dir $@)
	$(AR) rcs $@ $^
