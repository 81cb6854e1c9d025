#!/bin/sh
# Initialises the cluster on first start (the named volume is empty), then runs PostgreSQL in
# the foreground as the postgres user.
set -eu
BIN=$(ls -d /usr/lib/postgresql/*/bin | head -n 1)
mkdir -p "$PGDATA" /run/postgresql
chown -R postgres:postgres "$PGDATA" /run/postgresql
chmod 700 "$PGDATA"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    su postgres -c "$BIN/initdb -D '$PGDATA' --auth-local=trust --auth-host=scram-sha-256"
    echo "listen_addresses = '*'" >> "$PGDATA/postgresql.conf"
    echo "host all all 0.0.0.0/0 scram-sha-256" >> "$PGDATA/pg_hba.conf"
    su postgres -c "$BIN/pg_ctl -D '$PGDATA' -w start -o '-c listen_addresses=127.0.0.1'"
    su postgres -c "psql -v ON_ERROR_STOP=1 -c \"CREATE ROLE app LOGIN PASSWORD '$APP_PASSWORD'\" -c 'CREATE DATABASE app OWNER app'"
    su postgres -c "$BIN/pg_ctl -D '$PGDATA' -w stop"
fi
exec su postgres -c "exec $BIN/postgres -D '$PGDATA'"
