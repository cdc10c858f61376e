#!/usr/bin/env bash
# tests/examples/t_manpages.sh — the manual against the programs:
#   - every page in man/ renders with `man --warnings -l` without a warning,
#     names itself in .TH, and is installed by `make install`;
#   - for each command (sluice, sluice scan|rules|ledger [verify|checkpoint|
#     query|archive]|keygen, sluicefs, sluice-diode [send|recv], and any other
#     installed program), every option its --help shows is documented in its
#     man page's SYNOPSIS or option section, and every option documented
#     there is in --help;
#   - --help and --version exit 0; errors read `<prog>: <what>: <why>` on
#     stderr with the documented exit status, no bare errno numbers.
# Never edits a page or a program: a disagreement is a `not ok` naming the
# page, the command and the option, for the owner to fix.
source "$(dirname "$0")/../lib.sh"
for t in man groff python3; do
    command -v "$t" >/dev/null || { echo "needs $t (apt-get install man-db groff python3)"; exit 77; }
done
cd "$ROOT"
export LC_ALL=C.UTF-8 MANWIDTH=80

# ---- 1. every page renders cleanly and is installed --------------------------
pages=(man/*.[1-9])
for f in "${pages[@]}"; do
    w=$(man --warnings -l "$f" 2>&1 >/dev/null)
    check_eq "$f renders without warnings (man --warnings -l)" "" "$w"
    w=$(groff -k -man -ww -z "$f" 2>&1)
    check_eq "$f: groff -ww finds nothing" "" "$w"
    base=${f##*/}
    th=$(awk '/^\.TH /{print tolower($2) "." $3; exit}' "$f")
    check_eq "$f: .TH names the page" "$base" "$th"
    check_contains "$f has a NAME section" "$(grep -c '^\.SH NAME' "$f")" "1"
done

# make install (without rebuilding: -o all) must install every page the
# modules list in MANPAGES, and every page in man/ must be listed.
inst=$T_TMP/inst
make -s -o all B="$BUILD" install DESTDIR="$inst" PREFIX=/usr/local >"$T_TMP/install.log" 2>&1
check_eq "make install (DESTDIR, no rebuild) succeeds" 0 "$?"
listed=$(make -s -o all B="$BUILD" -pn all 2>/dev/null | awk -F' := ' '$1 == "MANPAGES" {print $2; exit}')
[ -n "$listed" ] || listed=$(make -s -o all B="$BUILD" -pn all 2>/dev/null | sed -n 's/^MANPAGES = //p' | head -1)
for m in $listed; do
    if [ -f "$m" ]; then ok "$m (in MANPAGES) exists"; else not_ok "$m (in MANPAGES) exists"; fi
    s=${m##*.}
    if [ -f "$inst/usr/local/share/man/man$s/${m##*/}" ]; then ok "make install installs $m"
    else not_ok "make install installs $m"; sed 's/^/#   /' "$T_TMP/install.log"; fi
done
for f in "${pages[@]}"; do check_contains "$f is listed in MANPAGES (so it is installed)" " $listed " " $f "; done
if [ -f "$inst/usr/local/share/man/man8/sluicefs.8" ]; then
    check "man finds the installed sluicefs(8)" \
        bash -c "MANPATH='$inst/usr/local/share/man' man -w 8 sluicefs >/dev/null"
fi

# ---- 2. --help and --version --------------------------------------------------
version=$(sed -n 's/^VERSION *:= *//p' Makefile)
programs=()
for p in "$inst"/usr/local/bin/*; do programs+=("${p##*/}"); done
check "make install installs the three programs" \
    bash -c "[ -x '$inst/usr/local/bin/sluice' ] && [ -x '$inst/usr/local/bin/sluicefs' ] && [ -x '$inst/usr/local/bin/sluice-diode' ]"
for p in "${programs[@]}"; do
    out=$("$BUILD/$p" --help 2>"$T_TMP/err"); rc=$?
    check_eq "$p --help exits 0" 0 "$rc"
    check_contains "$p --help prints usage on stdout" "$out" "usage: "
    out=$("$BUILD/$p" --version 2>"$T_TMP/err"); rc=$?
    check_eq "$p --version exits 0" 0 "$rc"
    check_contains "$p --version prints '$p $version'" "$out" "$p $version"
done
for c in "scan" "rules" "ledger" "keygen" "ledger verify" "ledger checkpoint" "ledger query" "ledger archive"; do
    # shellcheck disable=SC2086
    out=$("$BUILD/sluice" $c --help 2>"$T_TMP/err"); rc=$?
    check_eq "sluice $c --help exits 0" 0 "$rc"
    check_contains "sluice $c --help prints its usage" "$out" "sluice $c"
done
for c in send recv; do
    out=$("$BUILD/sluice-diode" $c --help 2>"$T_TMP/err"); rc=$?
    check_eq "sluice-diode $c --help exits 0" 0 "$rc"
    check_contains "sluice-diode $c --help prints its usage" "$out" "sluice-diode $c"
done

# ---- 3. options: --help against the man page -----------------------------------
# The checker parses the roff source (not the rendered text, which hyphenates
# and wraps): sections (.SH), subsections (.SS), tagged paragraphs (.TP), and
# SYNOPSIS entries (separated by .br/.PP). Each command owns a region of one
# page: its SYNOPSIS entries plus the sections/subsections/tags that
# describe it. Options are --long, -x short, and for sluicefs the -o names.
export SLUICE_BUILD_DIR=$BUILD
python3 - "${programs[@]}" <<'PY'
import os, re, subprocess, sys

B = os.environ["SLUICE_BUILD_DIR"]
programs = sys.argv[1:]
failed = False

def ok(name): print(f"ok - {name}")
def not_ok(name, why=""):
    global failed
    failed = True
    print(f"not ok - {name}")
    if why:
        for line in why.splitlines():
            print(f"#   {line}")

ESC = [(r"\(em", "-"), (r"\(en", "-"), (r"\(dq", '"'), (r"\(bu", "*"), (r"\(aq", "'"),
       (r"\-", "-"), (r"\&", ""), (r"\e", "\\"), (r"\ ", " "), (r"\|", ""), (r"\^", "")]

def unescape(s):
    s = re.sub(r"\\f(\[[^\]]*\]|\(..|.)", "", s)
    s = re.sub(r"\\s[-+]?\d", "", s)
    for a, b in ESC:
        s = s.replace(a, b)
    s = re.sub(r"\\\(..", "", s)
    return s

def macro_args(rest):
    args, cur, q = [], "", False
    for ch in rest:
        if ch == '"':
            q = not q
        elif ch in " \t" and not q:
            if cur:
                args.append(cur)
            cur = ""
        else:
            cur += ch
    if cur:
        args.append(cur)
    return args

ALTERNATING = {"BR", "RB", "IR", "RI", "BI", "IB"}
FONT = {"B", "I", "SM", "SB"}

def parse(path):
    """Chunks of (section, subsection, tag, text) in page order."""
    chunks, sec, sub, tag = [], "", "", None
    buf, want_tag = [], False
    def flush():
        nonlocal buf
        if buf:
            chunks.append((sec, sub, tag, " ".join(buf)))
        buf = []
    for raw in open(path, encoding="utf-8"):
        line = raw.rstrip("\n")
        if line.startswith((".\\\"", "'\\\"", '.\\"')) or line in (".", ""):
            continue
        if line.startswith("."):
            m = re.match(r"\.(\S+)\s*(.*)", line)
            mac, rest = m.group(1), m.group(2)
            if mac == "SH":
                flush(); sec, sub, tag = unescape(" ".join(macro_args(rest))).upper(), "", None
                continue
            if mac == "SS":
                flush(); sub, tag = unescape(" ".join(macro_args(rest))), None
                continue
            if mac == "TP":
                flush(); want_tag = True
                continue
            if mac in ("PP", "P", "LP"):
                flush(); tag = None
                continue
            if mac == "IP":
                flush(); a = macro_args(rest); tag = unescape(a[0]) if a else None
                continue
            if mac in ("br", "sp"):
                if sec == "SYNOPSIS":
                    flush()
                continue
            if mac in ALTERNATING:
                text = "".join(macro_args(rest))
            elif mac in FONT:
                text = " ".join(macro_args(rest))
            else:
                continue        # .TH .nf .fi .RS .RE .TS .TE .in ... carry no options
        else:
            text = line
        text = unescape(text)
        if want_tag:
            flush(); tag, want_tag = text.strip(), False
            buf = [text]
            continue
        buf.append(text)
    flush()
    return chunks

LONG = re.compile(r"(?<![\w-])--[a-z0-9][a-z0-9-]*")
SHORT = re.compile(r"(?<![\w-])-[a-zA-Z](?![\w-])")

def opts_of(text, oname=False):
    found = set(LONG.findall(text)) | set(SHORT.findall(text))
    found |= {o + "/" for o in ()}
    return found

def help_opts(argv):
    out = subprocess.run([f"{B}/{argv[0]}"] + argv[1:] + ["--help"], capture_output=True,
                         text=True).stdout
    # A quoted command line in the prose ('sluice ledger verify --checkpoint
    # FILE') refers to another command's options, not this one's.
    text = re.sub(r"'sluice[^']*'", "", out)
    opts = set(LONG.findall(text)) | set(SHORT.findall(text))
    onames = set()
    if argv == ["sluicefs"]:
        block = re.search(r"options \(-o\):\n(.*?)\n\S", out, re.S)
        for line in (block.group(1).splitlines() if block else []):
            m = re.match(r"\s+([a-z_]+)(=|\s|$)", line)
            if m:
                onames.add(m.group(1))
    return out, opts, onames

# command, page, synopsis prefixes, region predicate over (section, subsection,
# tag), and whether options of the region must all be in this command's
# --help. A dispatcher (sluice, sluice ledger, sluice-diode) owns every
# SYNOPSIS entry of its subcommands for the first direction only: its --help
# may show their options, but need not show them all.
def in_sub(*names):
    return lambda s, ss, t: s == "DESCRIPTION" and ss in names
def in_sec(*names):
    return lambda s, ss, t: s in names
def in_tag(sec, name):
    return lambda s, ss, t: s == sec and t is not None and t.split()[0] == name
nothing = lambda s, ss, t: False

COMMANDS = [
    (["sluice"], "sluice.1", ("sluice",), nothing, False),
    (["sluice", "scan"], "sluice.1", ("sluice scan",), in_sub("scan"), True),
    (["sluice", "rules"], "sluice.1", ("sluice rules",), in_sub("rules lint", "rules test"), True),
    (["sluice", "keygen"], "sluice.1", ("sluice keygen",), in_sub("keygen"), True),
    (["sluice", "ledger"], "sluice-ledger.5", ("sluice ledger",), in_sec("COMMANDS"), False),
    (["sluice", "ledger", "verify"], "sluice-ledger.5", ("sluice ledger verify",), in_tag("COMMANDS", "verify"), True),
    (["sluice", "ledger", "checkpoint"], "sluice-ledger.5", ("sluice ledger checkpoint",), in_tag("COMMANDS", "checkpoint"), True),
    (["sluice", "ledger", "query"], "sluice-ledger.5", ("sluice ledger query",), in_tag("COMMANDS", "query"), True),
    (["sluice", "ledger", "archive"], "sluice-ledger.5", ("sluice ledger archive",), in_tag("COMMANDS", "archive"), True),
    (["sluicefs"], "sluicefs.8", ("sluicefs",), in_sec("OPTIONS"), True),
    (["sluice-diode"], "sluice-diode.8", ("sluice-diode",), nothing, False),
    (["sluice-diode", "send"], "sluice-diode.8", ("sluice-diode send",), in_sec("SEND OPTIONS"), True),
    (["sluice-diode", "recv"], "sluice-diode.8", ("sluice-diode recv",), in_sec("RECV OPTIONS"), True),
]
# Other installed programs (helpers added later): their page is the one their
# --help names ("See NAME(N)"), their region its SYNOPSIS and OPTIONS, or in
# an overview page (section 7) the paragraph tagged with the program's name.
known = {c[0][0] for c in COMMANDS}
for p in programs:
    if p in known:
        continue
    out = subprocess.run([f"{B}/{p}", "--help"], capture_output=True, text=True).stdout
    m = re.search(r"[Ss]ee ([a-z0-9-]+)\(([1-9])\)", out)
    page = f"{m.group(1)}.{m.group(2)}" if m else f"{p}.1"
    COMMANDS.append(([p], page, (p,), (lambda name: lambda s, ss, t: s == "OPTIONS" or
                     (t is not None and t.split()[0] == name))(p), True))

# Exempt: --help/--version/-h/-V are checked by running them (section 2),
# not by being listed; `-` alone (standard input) is an operand.
EXEMPT = {"--help", "--version", "-h", "-V"}

pages = {}
for argv, page, syn, region, reverse in COMMANDS:
    cmd = " ".join(argv)
    path = os.path.join("man", page)
    if not os.path.exists(path):
        not_ok(f"{cmd}: its man page man/{page} exists")
        continue
    chunks = pages.setdefault(path, parse(path))
    synopsis = [t for s, ss, tg, t in chunks
                if s == "SYNOPSIS" and any(t.strip().startswith(p) for p in syn)]
    # "sluice ledger" also owns the common options of every ledger command.
    body = [t for s, ss, tg, t in chunks if region(s, ss, tg)]
    if not synopsis and not body:
        not_ok(f"{cmd}: man/{page} documents it",
               f"no SYNOPSIS entry starts with {syn}, and no section or paragraph describes it")
    documented = set()
    for t in synopsis + body:
        documented |= opts_of(t)
    out, shown, onames = help_opts(argv)
    # The -o names of sluicefs: tags of its OPTIONS section that are words
    # (policy=FILE, hide_denied), against the -o block of --help.
    if argv == ["sluicefs"]:
        man_onames = set()
        for s, ss, tg, t in chunks:
            if s == "OPTIONS" and tg:
                m = re.match(r"([a-z_]+)(=|$|\s)", tg)
                if m:
                    man_onames.add(m.group(1))
        for o in sorted(onames):
            (ok if o in man_onames else not_ok)(f"{cmd} -o {o} (in --help) is documented in man/{page} OPTIONS")
        for o in sorted(man_onames):
            (ok if o in onames else not_ok)(f"{cmd} -o {o} (in man/{page} OPTIONS) is in --help")
    for o in sorted(shown - EXEMPT):
        (ok if o in documented else not_ok)(f"{cmd} {o} (in --help) is documented in man/{page}")
    for o in sorted(documented - EXEMPT if reverse else ()):
        (ok if o in shown else not_ok)(f"{cmd} {o} (in man/{page}) is in its --help")
sys.exit(1 if failed else 0)
PY
[ $? -eq 0 ] || T_FAILED=1

# ---- 4. errors: `<prog>: <what>: <why>`, documented exit status -----------------
# Each case: expected exit status, program name, a word the message must
# contain, then the command. The first line on stderr must be the message.
"$SLUICE" keygen "$T_TMP/k" >/dev/null
mkdir -p "$T_TMP/src" "$T_TMP/mnt"
policy=$ROOT/rules/default-policy.yaml
err_case() { # rc prog word cmd...
    local want_rc=$1 prog=$2 word=$3; shift 3
    local name="error: ${*#"$BUILD/"}"
    name=${name//$T_TMP/TMP}; name=${name//$ROOT\//}
    SLUICE_KEY_FILE=$T_TMP/k timeout 20 "$@" >/dev/null 2>"$T_TMP/err" </dev/null
    local rc=$? first
    first=$(head -n1 "$T_TMP/err")
    check_eq "$name: exit $want_rc" "$want_rc" "$rc"
    if [[ $first =~ ^$prog:\ .+:\ .+ ]]; then ok "$name: reads '$prog: <what>: <why>'"
    else not_ok "$name: reads '$prog: <what>: <why>'"; printf '#   first line: %s\n' "$first"; fi
    check_contains "$name: names '${word//$T_TMP/TMP}'" "$first" "$word"
    if grep -Eq 'errno|(^|[^[:alnum:]_-])-[0-9]+([^[:alnum:]]|$)' "$T_TMP/err"; then
        not_ok "$name: no bare errno numbers"; sed 's/^/#   /' "$T_TMP/err"
    else ok "$name: no bare errno numbers"; fi
}
err_case 2 sluice bogus        "$SLUICE" bogus
err_case 2 sluice /nonexistent "$SLUICE" scan --policy /nonexistent /etc/hostname
err_case 2 sluice --bogus      "$SLUICE" scan --bogus /etc/hostname
err_case 2 sluice /nonexistent "$SLUICE" rules lint /nonexistent
err_case 2 sluice bogus        "$SLUICE" ledger bogus
err_case 2 sluice /nonexistent "$SLUICE" ledger verify --ledger /nonexistent/l.db --key "$T_TMP/k"
err_case 2 sluice --bogus      "$SLUICE" ledger query --bogus
err_case 2 sluice "$T_TMP/k"   "$SLUICE" keygen "$T_TMP/k"
err_case 1 sluicefs /nonexistent "$SLUICEFS" -f -o "policy=$policy,ledger=$T_TMP/l.db,ledger_key=$T_TMP/k" /nonexistent "$T_TMP/mnt"
err_case 1 sluicefs /nonexistent "$SLUICEFS" -f -o "policy=/nonexistent,ledger=$T_TMP/l.db,ledger_key=$T_TMP/k" "$T_TMP/src" "$T_TMP/mnt"
err_case 2 sluicefs --bogus    "$SLUICEFS" -f --bogus -o "policy=$policy,ledger=$T_TMP/l.db,ledger_key=$T_TMP/k" "$T_TMP/src" "$T_TMP/mnt"
err_case 2 sluice-diode bogus  "$DIODE" bogus
err_case 2 sluice-diode --bogus "$DIODE" send --bogus
err_case 3 sluice-diode /nonexistent "$DIODE" send --no-policy --key /nonexistent --to fd:1 "$T_TMP/src"
err_case 3 sluice-diode bogus:1 "$DIODE" recv --from bogus:1 --vault "$T_TMP/vault" --key "$T_TMP/k"
if [ -x "$BUILD/sluice-extract" ]; then
    err_case 1 sluice-extract /nonexistent "$BUILD/sluice-extract" /nonexistent
    err_case 2 sluice-extract --bogus      "$BUILD/sluice-extract" --bogus
fi
check_lacks "no test mount left behind" "$(cat /proc/mounts)" "$T_TMP"
t_done
