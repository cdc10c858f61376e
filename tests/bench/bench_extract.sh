#!/usr/bin/env bash
# tests/bench/bench_extract.sh — document extraction speed (issue 6): 500
# mixed PDF/DOCX documents of a few pages, generated here, read and extracted
# through the library (libmagic type, then extract_text(): one confined
# sluice-extract helper per document), first and second pass, beside the
# same documents' plain-text versions read raw. Prints files/s, CPU ms per
# file (the extraction server and its children included: wall-clock figures
# swing with the machine's load, CPU much less) and ratios; asserts no timing.
set -u
B=${SLUICE_BUILD:-build}
TOOL=$B/tests/extract/extract_bench
W=${BENCH_WORK:-/var/tmp/sluice-bench}/extract
N=${EXTRACT_BENCH_DOCS:-500}
COLD=${EXTRACT_BENCH_COLD:-1} # 0: no drop_caches before first passes (a smoke run)
PY=/usr/bin/python3
[ -x "$TOOL" ] || { echo "extract_bench not built (make)"; exit 1; }
$PY -c 'import docx, reportlab' 2>/dev/null || { echo "python3-docx / python3-reportlab missing"; exit 1; }
export SLUICE_EXTRACT=$B/sluice-extract
rm -rf "$W"; mkdir -p "$W/docs" "$W/txt"
trap 'rm -rf "$W"' EXIT

# N documents, half PDF and half DOCX, 2-4 pages of generated prose each,
# and the same text as .txt.
$PY - "$W" "$N" <<'PY'
import os, random, sys
import docx
from reportlab.lib.pagesizes import A4
from reportlab.pdfgen import canvas
w, n = sys.argv[1], int(sys.argv[2])
rnd = random.Random(6)
words = ("agreement party services payment term notice clause schedule confidential "
         "invoice delivery warranty liability customer supplier period renewal").split()
for i in range(n):
    pages = [[" ".join(rnd.choice(words) for _ in range(12)) for _ in range(40)] for _ in range(rnd.randint(2, 4))]
    pages[0][3] = f"Client {i}: Jane Roe, SSN 078-05-{1000 + i}, jane{i}@example.com"
    text = "\n\n".join("\n".join(p) for p in pages)
    open(os.path.join(w, "txt", f"doc{i:04d}.txt"), "w").write(text)
    if i % 2:
        c = canvas.Canvas(os.path.join(w, "docs", f"doc{i:04d}.pdf"), pagesize=A4)
        for p in pages:
            y = 800
            for line in p:
                c.drawString(50, y, line); y -= 18
            c.showPage()
        c.save()
    else:
        d = docx.Document()
        for k, p in enumerate(pages):
            for line in p:
                d.add_paragraph(line)
            if k + 1 < len(pages):
                d.add_page_break()
        d.save(os.path.join(w, "docs", f"doc{i:04d}.docx"))
PY
ls "$W"/docs/* > "$W/docs.list"; ls "$W"/txt/* > "$W/txt.list"
echo "$N documents ($(ls "$W"/docs/*.pdf | wc -l) PDF, $(ls "$W"/docs/*.docx | wc -l) DOCX), $(du -sh "$W/docs" | cut -f1); text $(du -sh "$W/txt" | cut -f1)"

fps() { sed -n 's/.*files_per_second=\([0-9.]*\).*/\1/p'; }
run() { # label mode threads list
    local out; out=$("$TOOL" "$2" "$3" "$4") || { echo "$1: FAILED: $out" >&2; return 1; }
    printf '%-52s %10s files/s   (%s)\n' "$1" "$(echo "$out" | fps)" "$out" >&2
    echo "$out" | fps
}
[ "$COLD" = 0 ] || { sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true; }
raw_cold=$(run "plain text, read raw, first pass" raw 1 "$W/txt.list")
raw=$(run "plain text, read raw, second pass" raw 1 "$W/txt.list")
[ "$COLD" = 0 ] || { sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true; }
first=$(run "documents, extract_text, 1 thread, first pass" extract 1 "$W/docs.list")
second=$(run "documents, extract_text, 1 thread, second pass" extract 1 "$W/docs.list")
two=$(run "documents, extract_text, 2 threads" extract 2 "$W/docs.list")
pdf=$(grep '\.pdf$' "$W/docs.list" > "$W/pdf.list"; run "  PDF only, 1 thread" extract 1 "$W/pdf.list")
dx=$(grep '\.docx$' "$W/docs.list" > "$W/docx.list"; run "  DOCX only, 1 thread" extract 1 "$W/docx.list")
# The design choice: a new helper process per document instead of the
# forking server (on 100 of the documents: it is that much slower).
head -n 100 "$W/docs.list" > "$W/some.list"
served=$(run "  100 documents, forking server (default)" extract 1 "$W/some.list")
spawned=$(SLUICE_EXTRACT_SPAWN=1 run "  100 documents, a new helper per document" extract 1 "$W/some.list")
for v in "$raw_cold" "$raw" "$first" "$second" "$two" "$pdf"; do # a failed run printed nothing
    [ -n "$v" ] || { echo "bench_extract: a run failed" >&2; exit 1; }
done
awk -v r="$raw" -v rc="$raw_cold" -v f="$first" -v s="$second" -v t="$two" -v p="$pdf" -v d="$dx" \
    -v sv="$served" -v sp="$spawned" 'BEGIN{
    printf "ratio extraction first pass / raw text first pass:  %.4f\n", f / rc
    printf "ratio extraction second pass / raw text (warm):     %.4f\n", s / r
    printf "ratio 2 threads / 1 thread:                         %.2f\n", t / s
    printf "ratio forking server / helper per document:         %.2f\n", sv / sp
    printf "ms per document (wall): PDF %.1f, DOCX %.1f\n", 1000 / p, 1000 / d
}'
