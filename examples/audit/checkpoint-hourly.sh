#!/bin/sh
# examples/audit/checkpoint-hourly.sh — keep signed checkpoints of the
# ledger's head somewhere the ledger's host cannot rewrite, and verify the
# ledger against all of them. Run it from cron on the auditors' side, e.g.:
#
#   0 * * * *  /usr/local/share/sluice/examples/audit/checkpoint-hourly.sh
#
# LEDGER, KEY and CHECKPOINTS may be set in the environment. CHECKPOINTS
# should be on storage the sandbox and the daemon cannot write (another host,
# a WORM bucket mounted read-append, ...).
set -eu
LEDGER=${LEDGER:-/var/lib/sluice/ledger.db}
KEY=${KEY:-/etc/sluice/ledger.key}
CHECKPOINTS=${CHECKPOINTS:-/mnt/audit/ledger-checkpoints.txt}

# Verify against every earlier checkpoint first: a cut or rewritten ledger
# must not get a fresh checkpoint that would hide it.
if [ -s "$CHECKPOINTS" ]; then
    sluice ledger verify --ledger "$LEDGER" --key "$KEY" --checkpoint "$CHECKPOINTS" --quiet
else
    sluice ledger verify --ledger "$LEDGER" --key "$KEY" --quiet
fi
sluice ledger checkpoint --ledger "$LEDGER" --key "$KEY" >> "$CHECKPOINTS"
