-- examples/audit/queries.sql — the common audit questions, for the plain
-- sqlite3 shell. Read-only; run against a ledger (or a copy of one):
--
--   sqlite3 -readonly -box /var/lib/sluice/ledger.db < queries.sql
--
-- Change the parameters below first. See sluice-ledger(5) for the schema.
.parameter init
.parameter set @rule 'us-ssn'
.parameter set @sha256 '1e3ee392e527b451ff74e8e45a697388d200f96ab0472443445b8e2a3ff7bbd2'
.parameter set @since '2026-01-01'

.print '== Which processes read files that had hits of rule @rule'
SELECT process, exe, uid, cgroup, count(*) AS opens, sum(count) AS hits,
       min(time) AS first, max(time) AS last
FROM rule_hits
WHERE rule = @rule AND event = 'open-served' AND time >= @since
GROUP BY process, exe, uid, cgroup
ORDER BY hits DESC;

.print '== All refused accesses'
SELECT seq, time, event, process, uid, path, reason
FROM refusals
WHERE time >= @since
ORDER BY seq;

.print '== Bytes served per process per day'
SELECT day, process, uid, opens, bytes
FROM bytes_per_process_day
WHERE day >= substr(@since, 1, 10)
ORDER BY day, bytes DESC;

.print '== Every access to one file, by checksum (source or served bytes)'
SELECT seq, time, side, event, process, pid, uid, path, decision
FROM accesses_by_checksum
WHERE sha256 = @sha256
ORDER BY seq;

.print '== Which rules fired, per policy'
SELECT r.policy_hash, h.rule, count(*) AS files, sum(h.count) AS hits
FROM records AS r JOIN rule_hits AS h ON h.seq = r.seq
GROUP BY r.policy_hash, h.rule
ORDER BY hits DESC;

.print '== Sessions: who mounted what, when'
SELECT seq, time, event, session, path, policy_hash
FROM records
WHERE event IN ('mount', 'unmount', 'policy-load')
ORDER BY seq;
