# tests/bench/lib.sh — sourced by the benchmarks.
#
# run_timed CMD...: runs CMD (its standard output discarded, its standard
# error kept) and prints "wall cpu status": wall seconds, CPU seconds of
# user + system to the microsecond, and its exit status (negative when a
# signal killed it). Children's times are inherited across exec (a python3
# shim may have run commands of its own first), so the difference is taken.
# Fails when CMD cannot be started.
run_timed() {
    python3 - "$@" <<'PY'
import resource, subprocess, sys, time
r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
t = time.monotonic()
try:
    rc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode
except OSError as e:
    sys.exit("cannot run %s: %s" % (sys.argv[1], e))
w = time.monotonic() - t
r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
print("%.4f %.6f %d" % (w, r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime, rc))
PY
}
