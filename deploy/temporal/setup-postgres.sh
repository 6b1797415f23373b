#!/bin/sh
# One-shot (temporalio/admin-tools): create or upgrade Temporal's two PostgreSQL databases.
# Safe to re-run on every `up`: setup-schema keeps a newer version, update-schema applies only missing steps.
set -eu
: "${POSTGRES_SEEDS:?}" "${POSTGRES_USER:?}" "${SQL_PASSWORD:?}" "${DB_PORT:=5432}"

sql() { temporal-sql-tool --plugin postgres12 --ep "$POSTGRES_SEEDS" -p "$DB_PORT" -u "$POSTGRES_USER" "$@"; }

tries=0
until nc -z -w 5 "$POSTGRES_SEEDS" "$DB_PORT"; do
  tries=$((tries + 1))
  [ "$tries" -lt 30 ] || { echo "PostgreSQL at $POSTGRES_SEEDS:$DB_PORT is unreachable" >&2; exit 1; }
  sleep 2
done

for pair in temporal:temporal temporal_visibility:visibility; do
  db=${pair%%:*}
  schema=${pair#*:}
  # CREATE DATABASE has no IF NOT EXISTS: a failure here is an existing database, or a real fault that
  # setup-schema reports just below.
  sql --db "$db" create || echo "database $db not created (it probably exists already)"
  sql --db "$db" setup-schema -v 0.0
  sql --db "$db" update-schema -d "/etc/temporal/schema/postgresql/v12/$schema/versioned"
done
echo "Temporal schema is up to date"
