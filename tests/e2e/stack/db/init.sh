#!/bin/sh
# Build-time cluster setup for the e2e database image (runs as root inside `docker build`).
set -eu
mkdir -p "$PGDATA" /run/postgresql
chown -R postgres:postgres /var/lib/postgresql /run/postgresql
# Test-only password of a throwaway database reachable on loopback only.
echo 'e2e-db-password' >/tmp/pw
chown postgres /tmp/pw
runuser -u postgres -- initdb -D "$PGDATA" -U postgres --pwfile=/tmp/pw \
    --encoding=UTF8 --locale=C.UTF-8 --auth-local=trust --auth-host=scram-sha-256 >/dev/null
rm /tmp/pw
runuser -u postgres -- pg_ctl -D "$PGDATA" -o "-c listen_addresses= -k /tmp -p 5432" -w start >/dev/null
runuser -u postgres -- psql -h /tmp -p 5432 -U postgres -v ON_ERROR_STOP=1 -q \
    -c "CREATE DATABASE neola" >/dev/null
runuser -u postgres -- psql -h /tmp -p 5432 -U postgres -d neola -v ON_ERROR_STOP=1 -q \
    -c "CREATE EXTENSION vector" >/dev/null
runuser -u postgres -- pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
