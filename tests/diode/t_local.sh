#!/usr/bin/env bash
# tests/diode/t_local.sh — sluice-diode over local channels (fd: via a pipe,
# fifo:): trees of many small and a few large files arrive intact, refused
# files are recorded, duplicates are not rewritten, changes replace.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/diode_lib.sh"
[ -x "$DIODE" ] || { echo "no $DIODE"; exit 77; }
cd "$T_TMP"
d_key key

# ---- command line
out=$("$DIODE" --version); check_contains "--version names the wire format" "$out" "wire format 1"
"$DIODE" --help >/dev/null; check_eq "--help exits 0" 0 $?
err=$("$DIODE" send src 2>&1); rc=$?
check_eq "send without --to is a usage error (2)" 2 $rc
check_contains "usage errors say sluice-diode: <what>" "$err" "sluice-diode: send:"
mkdir -p empty_src
err=$("$DIODE" send --no-policy --key key empty_src --to fd:0 2>&1 </dev/null); rc=$?
check_eq "a read-only fd is refused as a sending channel (3)" 3 $rc
check_contains "the error names the channel" "$err" "sluice-diode: fd:0: fd 0 must be open write-only"
err=$("$DIODE" recv --from udp:127.0.0.1:1 --vault v0 --key /nonexistent 2>&1); rc=$?
check_eq "a missing key file is a setup error (3)" 3 $rc
check_contains "the error names the key file" "$err" "sluice-diode: /nonexistent:"
if command -v man >/dev/null; then
    page=$(MANWIDTH=80 man -l "$ROOT/man/sluice-diode.8" 2>/dev/null)
    check_contains "man page renders with its wire format" "$page" "CRC-32C of header bytes 0-43"
    check_contains "man page documents exit codes" "$page" "EXIT STATUS"
fi
chmod 644 key; err=$("$DIODE" recv --from fd:0 --vault v0 --key key 2>&1 </dev/null); rc=$?
chmod 600 key
check_eq "a group-readable key is refused" 3 $rc

# ---- a receive buffer the kernel will not grant is reported at start
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null && id nobody >/dev/null 2>&1; then
    chmod 755 "$T_TMP"; mkdir -p nb; cp key nb/key; chown -R nobody nb
    err=$(setpriv --reuid=nobody --regid="$(id -g nobody)" --clear-groups --inh-caps=-all \
        "$DIODE" recv --from udp:127.0.0.1:47555 --vault "$T_TMP/nb/vault" --key "$T_TMP/nb/key" \
        --rcvbuf 1G --idle-exit 1 2>&1)
    check_contains "unprivileged receiver: a too-small receive buffer is warned about" "$err" \
        "sluice-diode: warning: udp:127.0.0.1:47555: the UDP receive buffer is"
    chmod 700 "$T_TMP"
else
    skip "receive buffer warning" "needs root, setpriv and user nobody"
fi

# ---- a tree through a pipe
d_tree src 1500
ln -s run.sh src/link-to-run
mkfifo src/a-fifo
nsrc=$(find src -type f | wc -l)
"$DIODE" send --no-policy --key key --report report.jsonl src --to fd:3 3>&1 2>send.err |
    "$DIODE" recv --from fd:0 --vault "$T_TMP/vault" --key key 2>recv.err
rcs=("${PIPESTATUS[@]}")
check_eq "sender exits 1: files were refused (link, fifo)" 1 "${rcs[0]}"
check_eq "receiver exits 0: every announced file arrived" 0 "${rcs[1]}"
rm src/link-to-run src/a-fifo
check "fd: every regular file arrives byte for byte, nothing else" d_same src vault
check_eq "fd: file count" "$nsrc" "$(d_nfiles vault)"
check "no staged file is left behind" d_staging_empty "$T_TMP/vault"
check_eq "the executable keeps its mode" 755 "$(stat -c %a vault/run.sh)"
check_eq "mtime is kept" "$(stat -c %Y src/big/log.txt)" "$(stat -c %Y vault/big/log.txt)"
check_contains "receiver summary" "$(cat recv.err)" "published $nsrc files"
check_contains "sender one-line summary" "$(cat send.err)" "sluice-diode: send: $nsrc files"
# The report holds every decision with the SHA-256 of the file.
check_eq "report: one line per accepted file" "$nsrc" "$(grep -c '"decision":"accepted"' report.jsonl)"
line=$(grep '"path":"big/random.bin"' report.jsonl)
check_contains "report: SHA-256 of the file" "$line" "\"sha256\":\"$(sha256sum src/big/random.bin | cut -c1-64)\""
check_contains "report: the symlink was refused" "$(grep link-to-run report.jsonl)" '"decision":"rejected","reason":"symbolic link"'
check_contains "report: the fifo was refused" "$(grep a-fifo report.jsonl)" '"reason":"not a regular file"'
python3 -c 'import json,sys; [json.loads(l) for l in open(sys.argv[1])]' report.jsonl
check_eq "report is valid JSON lines" 0 $?

# ---- the same tree through a fifo
"$DIODE" recv --from "fifo:$T_TMP/chan" --vault "$T_TMP/vault2" --key key --once 2>recv2.err &
rpid=$!
for _ in $(seq 50); do [ -p chan ] && break; sleep 0.1; done
"$DIODE" send --no-policy --key key src --to "fifo:$T_TMP/chan" 2>/dev/null
check_eq "fifo: sender exits 0" 0 $?
wait $rpid; check_eq "fifo: receiver exits 0" 0 $?
check "fifo: the tree arrives intact" d_same src vault2

# ---- duplicates are not rewritten; a changed file replaces the old one
ino_before=$(stat -c %i vault/big/log.txt)
"$DIODE" send --no-policy --key key src --to fd:3 3>&1 2>/dev/null |
    "$DIODE" recv --from fd:0 --vault "$T_TMP/vault" --key key 2>dup.err
check_contains "duplicate send: everything already present" "$(cat dup.err)" "published 0 files (0 bytes), already present $nsrc"
check_eq "duplicate send: the file was not rewritten (same inode)" "$ino_before" "$(stat -c %i vault/big/log.txt)"
echo "a new line" >> src/big/log.txt
echo "new file" > src/docs/added.txt
"$DIODE" send --no-policy --key key src --to fd:3 3>&1 2>/dev/null |
    "$DIODE" recv --from fd:0 --vault "$T_TMP/vault" --key key 2>chg.err
check_contains "changed send: two files published" "$(cat chg.err)" "published 2 files"
check "changed send: the vault holds the new version" d_same src vault

# ---- the policy: content types and the DLP pre-scan refuse files before they cross
export SLUICE_KEY_FILE=$T_TMP/hash.key
d_key "$SLUICE_KEY_FILE"
mkdir -p psrc
echo "plain notes" > psrc/notes.txt
printf '\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x3e\x00' > psrc/prog
head -c 4000 /dev/urandom >> psrc/prog
{ echo "-----BEGIN OPENSSH PRIVATE KEY-----"; head -c 300 /dev/urandom | base64 -w 70; echo "-----END OPENSSH PRIVATE KEY-----"; } > psrc/id_key.txt
"$DIODE" send --policy "$ROOT/rules/default-policy.yaml" --prescan --key key --report prep.jsonl \
    psrc --to fd:3 3>&1 2>/dev/null | "$DIODE" recv --from fd:0 --vault "$T_TMP/pvault" --key key 2>/dev/null
check_eq "policy: only the allowed, clean file crosses" "notes.txt" "$(cd pvault && find . -type f | sed 's|^\./||')"
check_contains "policy: the executable is refused by type" "$(grep '"path":"prog"' prep.jsonl)" '"decision":"rejected"'
check_contains "policy: the private key is refused by the pre-scan" "$(grep id_key prep.jsonl)" "DLP pre-scan"
check_contains "policy: accepted file has its MIME type" "$(grep notes.txt prep.jsonl)" '"mime":"text/plain"'
err=$("$DIODE" send --policy /nonexistent.yaml --key key psrc --to fd:1 2>&1 >/dev/null)
check_contains "a bad policy is reported" "$err" "sluice-diode: policy:"
# ---- wire efficiency: what the sender's summary says it put on the channel
# (deterministic on a stream: no FEC repair, no pacing). A few large files:
# a large file's first chunk must not push a nearly empty block out as
# padding (whole-block chunks once cost 13% here).
mkdir -p wsrc && cp -a src/big wsrc/
for i in 1 2 3; do head -c 300000 src/big/log.txt > wsrc/part$i.txt; done
wire_of() { sed -n 's/.* \([0-9]*\) wire bytes in .*/\1/p' "$1"; }
bytes_of() { sed -n 's/.* files (\([0-9]*\) bytes) sent .*/\1/p' "$1"; }
"$DIODE" send --no-policy --key key --compress 0 wsrc --to fd:3 3>&1 2>w0.err |
    "$DIODE" recv --from fd:0 --vault "$T_TMP/wvault" --key key 2>/dev/null
check "uncompressed stream: the files arrive intact" d_same wsrc wvault
w0=$(wire_of w0.err) b0=$(bytes_of w0.err)
check "uncompressed stream: at most 9% over the payload ($w0 wire bytes for $b0)" \
    test "$w0" -le $(( b0 + b0 * 9 / 100 ))
"$DIODE" send --no-policy --key key --compress 3 wsrc --to fd:3 3>&1 2>w3.err |
    "$DIODE" recv --from fd:0 --vault "$T_TMP/w3vault" --key key 2>/dev/null
check "compressed stream: the files arrive intact" d_same wsrc w3vault
w3=$(wire_of w3.err)
# An explicit level compresses every chunk that shrinks: the text shrinks,
# the 6 MiB of random bytes go raw.
check "--compress 3: the text is compressed ($w3 vs $w0 wire bytes)" \
    test "$w3" -lt $(( w0 * 60 / 100 ))
t_done
