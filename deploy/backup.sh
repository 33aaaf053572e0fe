#!/bin/sh
# Backups on a schedule: `zbot backup` into DIR every EVERY seconds (0: once, for a systemd timer or
# cron), keeping the KEEP newest copies. Used by docker-compose.yml's backup profile and by
# deploy/systemd/zbot-backup.service. The database is ZBOT_DATABASE's (or .env's), as for zbot itself.
#   usage: backup.sh DIR [KEEP=7] [EVERY=0]
set -eu
dir=${1:?usage: backup.sh DIR [KEEP=7] [EVERY=0]}
keep=${2:-7}
every=${3:-0}
mkdir -p "$dir"
while :; do
    # UTC timestamps sort by name in the order they were taken; zbot writes a .part file and renames it
    # once checked, so a cut-off copy never counts as one of the KEEP.
    if zbot backup "$dir/zbot-$(date -u +%Y%m%dT%H%M%SZ).sqlite3"; then
        ls -1 "$dir" | grep -E '^zbot-[0-9]{8}T[0-9]{6}Z\.sqlite3$' | sort -r | tail -n +"$((keep + 1))" |
            while read -r old; do rm -f -- "$dir/$old"; done
    elif [ "$every" -eq 0 ]; then
        exit 1  # a failed backup deletes no older one
    else
        echo "backup failed; next try in ${every}s" >&2
    fi
    [ "$every" -gt 0 ] || exit 0
    sleep "$every" & wait $!  # in the background: a docker stop (SIGTERM) ends the wait at once
done
