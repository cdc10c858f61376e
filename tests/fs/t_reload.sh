#!/usr/bin/env bash
# SIGHUP reloads the policy: a good new policy takes effect at once (no view
# built under the old one is served again, not even from the kernel's page
# cache); a bad one is rejected with a logged error and the old one stays.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/fs_lib.sh"

printf 'Project Nightjar: SSN 123-45-6789\n' >"$FS_SRC/memo.txt"
cat >"$T_TMP/extra.yaml" <<'YAML'
pack: fs-test-extra
version: 1
rules:
  - id: codename
    description: Internal project code names
    pattern: '\bProject (?<secret>[A-Z][a-z]+)\b'
    action: {type: replace, label: '[CODENAME]'}
    tags: [internal]
    must-match:
      - 'see [[Project Nightjar]] notes'
      - '[[Project Osprey]]'
      - 'a [[Project Kite]].'
    must-not-match:
      - 'project nightjar'
      - 'Project 42'
      - 'Projection'
YAML
wait_log() { # pattern: bounded wait for the daemon to log it
    local i
    for ((i = 0; i < 100; i++)); do grep -q "$1" "$FS_LOG" && return 0; sleep 0.1; done
    return 1
}

fs_mount -o log_level=debug || { not_ok "mount"; t_done; }
ok "mount"
check_eq "first policy: SSN masked" "Project Nightjar: SSN [REDACTED:us-ssn]" "$(cat "$FS_MNT/memo.txt")"
hash1=$(fs_sql "select policy_hash from records where event='mount'")
exec 7<"$FS_MNT/memo.txt"

fs_write_policy "$T_TMP/extra.yaml"
kill -HUP "$FS_PID"
check "reload logged" wait_log 'msg="policy reloaded"'
want='Project [CODENAME]: SSN [REDACTED:us-ssn]'
check_eq "new policy in force at once" "$want" "$(cat "$FS_MNT/memo.txt")"
check_eq "stat size follows the new view" "$((${#want} + 1))" "$(stat -c %s "$FS_MNT/memo.txt")"
check_fails "an fd opened under the old policy gets no old-policy bytes" cat <&7
exec 7<&-
hash2=$(fs_sql "select policy_hash from records where event='policy-load' and decision='loaded' order by seq desc limit 1")
check "ledger: policy-load row with the new hash" test -n "$hash2" -a "$hash2" != "$hash1"
check_eq "ledger: the open after reload names the new policy" "$hash2" \
    "$(fs_sql "select policy_hash from records where event='open-served' order by seq desc limit 1")"
check_eq "ledger: hits of the new rule counted" '[{"rule":"us-ssn","count":1},{"rule":"codename","count":1}]' \
    "$(fs_sql "select hits from records where event='open-served' order by seq desc limit 1")"

printf 'policy: broken\nversion: 1\npacks: [%s]\ntypes: {allow: [text/*]\n' "$ROOT/tests/fs/pack.yaml" >"$FS_POLICY"
kill -HUP "$FS_PID"
check "bad policy rejected, with the file and line" wait_log "policy reload rejected.*policy.yaml:[0-9]"
check "the daemon is still serving" kill -0 "$FS_PID"
check_eq "the previous policy stays in force" "$want" "$(cat "$FS_MNT/memo.txt")"
check_eq "ledger: the rejected load is recorded" "rejected" \
    "$(fs_sql "select decision from records where event='policy-load' order by seq desc limit 1")"
check_eq "ledger: opens still under the previous policy" "$hash2" \
    "$(fs_sql "select policy_hash from records where event='open-served' order by seq desc limit 1")"

fs_write_policy
kill -HUP "$FS_PID"
for ((i = 0; i < 100; i++)); do [ "$(grep -c 'msg="policy reloaded"' "$FS_LOG")" -ge 2 ] && break; sleep 0.1; done
check_eq "back to the first policy" "Project Nightjar: SSN [REDACTED:us-ssn]" "$(cat "$FS_MNT/memo.txt")"
check_eq "ledger: same hash as at mount" "$hash1" \
    "$(fs_sql "select policy_hash from records where event='open-served' order by seq desc limit 1")"
t_done
