#!/usr/bin/env bash
# Entrypoint of a streaming replica on the official postgres image, run as the postgres user.
# First start: clone the primary with pg_basebackup; -R writes standby.signal and primary_conninfo, so
# the server starts as a hot standby streaming from the primary's slot. Later starts: just run postgres.
# Extra arguments go to postgres (e.g. -c cluster_name=platform-replica).
set -euo pipefail
: "${PRIMARY_HOST:?set PRIMARY_HOST}"
: "${REPLICATION_USER:?set REPLICATION_USER}"
: "${REPLICATION_PASSWORD:?set REPLICATION_PASSWORD}"
PGDATA="${PGDATA:-/var/lib/postgresql/data}"
primary_port="${PRIMARY_PORT:-5432}"
slot="${REPLICATION_SLOT:-replica_1}"

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  until pg_isready -q -h "$PRIMARY_HOST" -p "$primary_port"; do
    echo "replica: waiting for the primary at $PRIMARY_HOST:$primary_port"
    sleep 1
  done
  mkdir -p "$PGDATA"
  chmod 0700 "$PGDATA"
  # On failure pg_basebackup removes what it wrote, so the next start clones again.
  PGPASSWORD="$REPLICATION_PASSWORD" pg_basebackup \
    --dbname="host=$PRIMARY_HOST port=$primary_port user=$REPLICATION_USER application_name=$slot" \
    --pgdata="$PGDATA" --wal-method=stream --write-recovery-conf --slot="$slot" --checkpoint=fast
  echo "replica: cloned the primary into $PGDATA"
fi
chmod 0700 "$PGDATA"
exec postgres -D "$PGDATA" -c hot_standby=on "$@"
