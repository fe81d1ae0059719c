#!/usr/bin/env bash
# Runs once, when the official postgres image initialises the primary's data directory (mounted into
# /docker-entrypoint-initdb.d/): a replication role, one physical slot per replica (so the primary keeps
# the WAL a disconnected replica still needs), pg_hba access for streaming replication, the `postgres`
# role pgBackRest connects as over the unix socket (pg1-user), and, when ARCHIVE_CONFIG names a file, an
# include of it (deploy/postgres/archive.conf: WAL archiving into pgBackRest, read at the server's start).
set -euo pipefail
: "${REPLICATION_USER:?set REPLICATION_USER}"
: "${REPLICATION_PASSWORD:?set REPLICATION_PASSWORD}"
database="${POSTGRES_DB:-${POSTGRES_USER:-postgres}}"

psql -v ON_ERROR_STOP=1 --username "${POSTGRES_USER:-postgres}" --dbname "$database" \
  --set=repl_user="$REPLICATION_USER" --set=repl_password="$REPLICATION_PASSWORD" <<'SQL'
CREATE ROLE :"repl_user" WITH REPLICATION LOGIN PASSWORD :'repl_password';
SQL

for slot in ${REPLICATION_SLOTS:-replica_1}; do
  psql -v ON_ERROR_STOP=1 --username "${POSTGRES_USER:-postgres}" --dbname "$database" --set=slot="$slot" <<'SQL'
SELECT pg_create_physical_replication_slot(:'slot');
SQL
done

# "all" in pg_hba does not match the replication pseudo-database: streaming needs its own line.
echo "host replication ${REPLICATION_USER} all scram-sha-256" >> "$PGDATA/pg_hba.conf"

# The official image makes POSTGRES_USER the superuser; pgBackRest logs in as its OS user's name.
psql -v ON_ERROR_STOP=1 --username "${POSTGRES_USER:-postgres}" --dbname "$database" <<'SQL'
DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'postgres') THEN
    CREATE ROLE postgres WITH SUPERUSER LOGIN;
  END IF;
END
$$;
SQL

if [ -n "${ARCHIVE_CONFIG:-}" ]; then
  echo "include_if_exists = '${ARCHIVE_CONFIG}'" >> "$PGDATA/postgresql.conf"
fi
