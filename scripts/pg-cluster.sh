#!/usr/bin/env bash
# A throwaway PostgreSQL cluster on loopback for kiroku's tests, from Debian's postgresql
# binaries: `pg-cluster.sh start DIR PORT` makes and starts it (trust auth, loopback only),
# `pg-cluster.sh stop DIR` stops it and removes DIR. Installs postgresql when missing.
# PG_CLUSTER_OPTS adds server options (`-c name=value …`).
set -euo pipefail
cmd=${1:?start DIR PORT | stop DIR}
dir=${2:?the folder of the cluster}
if ! ls -d /usr/lib/postgresql/*/bin >/dev/null 2>&1; then
  echo "pg-cluster: installing postgresql (for the PostgreSQL catalog tests)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends postgresql >/dev/null
fi
bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
# PostgreSQL refuses to run as root: as root, the cluster is the postgres user's (Debian's
# package makes that user).
as_owner() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
case "$cmd" in
start)
  port=${3:?the port}
  [ -d "$dir/data" ] && as_owner "$bin/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$dir"
  mkdir -p "$dir"
  [ "$(id -u)" = 0 ] && chown postgres "$dir"
  as_owner "$bin/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --locale=C --no-sync >/dev/null
  as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=400 ${PG_CLUSTER_OPTS:-}" start >/dev/null
  echo "pg-cluster: PostgreSQL on 127.0.0.1:$port ($dir)"
  ;;
stop)
  if [ -d "$dir/data" ]; then
    as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
  fi
  rm -rf "$dir"
  ;;
*)
  echo "usage: pg-cluster.sh start DIR PORT | stop DIR" >&2
  exit 2
  ;;
esac
