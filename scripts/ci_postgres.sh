#!/usr/bin/env bash
# Start a throw-away PostgreSQL server on loopback for the PostgreSQL-backed MLflow test, and
# print the line that points the test at it:
#
#   eval "$(scripts/ci_postgres.sh)"      # sets MLFLOW_SCALING_TEST_POSTGRES_URI
#   scripts/ci_postgres.sh stop           # stops it again
#
# Installs the Debian package `postgresql` when its binaries are missing (needs root and apt).
# The cluster lives in $MLFLOW_SCALING_PG_DIR (default /tmp/mlflow-scaling-pg), listens on
# 127.0.0.1:$MLFLOW_SCALING_PG_PORT (default 55432) with trust authentication, and runs as the
# `postgres` user when this script runs as root (PostgreSQL refuses to run as root). Running it
# again reuses a running cluster. Messages go to stderr; stdout carries only the export line.
set -euo pipefail

PG_DIR="${MLFLOW_SCALING_PG_DIR:-/tmp/mlflow-scaling-pg}"
PG_PORT="${MLFLOW_SCALING_PG_PORT:-55432}"
PG_DB="${MLFLOW_SCALING_PG_DB:-mlflow_scaling_test}"

say() { echo "ci_postgres: $*" >&2; }

find_bin() {
  local dir
  dir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
  if [ -n "$dir" ] && [ -x "$dir/pg_ctl" ]; then
    echo "$dir"
  elif command -v pg_ctl >/dev/null 2>&1; then
    dirname "$(command -v pg_ctl)"
  fi
}

BIN="$(find_bin)"
if [ -z "$BIN" ]; then
  if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    say "PostgreSQL is not installed and this is not root with apt-get; install 'postgresql'"
    exit 1
  fi
  say "installing the Debian package postgresql"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq postgresql >&2
  BIN="$(find_bin)"
  [ -n "$BIN" ] || { say "postgresql installed but pg_ctl not found"; exit 1; }
fi

# Run PostgreSQL's tools as `postgres` when we are root.
as_pg() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

if [ "${1:-start}" = "stop" ]; then
  if [ -f "$PG_DIR/data/PG_VERSION" ]; then
    as_pg "$BIN/pg_ctl" -D "$PG_DIR/data" -m fast stop >&2 || true
  fi
  exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
  id postgres >/dev/null 2>&1 || useradd --system --home-dir "$PG_DIR" --shell /bin/bash postgres
  mkdir -p "$PG_DIR"
  chown postgres "$PG_DIR"
else
  mkdir -p "$PG_DIR"
fi

if [ ! -f "$PG_DIR/data/PG_VERSION" ]; then
  say "creating a cluster in $PG_DIR/data"
  as_pg "$BIN/initdb" -D "$PG_DIR/data" -U postgres --auth=trust --encoding=UTF8 \
    --no-instructions >"$PG_DIR/initdb.log" 2>&1 || { cat "$PG_DIR/initdb.log" >&2; exit 1; }
fi

if ! as_pg "$BIN/pg_ctl" -D "$PG_DIR/data" status >/dev/null 2>&1; then
  say "starting PostgreSQL on 127.0.0.1:$PG_PORT"
  as_pg "$BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $PG_DIR" start >&2
fi

psql_pg() { as_pg psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -v ON_ERROR_STOP=1 -qtA "$@"; }
if [ "$(psql_pg -d postgres -c "SELECT 1 FROM pg_database WHERE datname = '$PG_DB'")" != "1" ]; then
  psql_pg -d postgres -c "CREATE DATABASE $PG_DB" >&2
fi

# SQLAlchemy 2.1+ (MLflow's store layer) connects postgresql:// URIs with psycopg 3.
if ! "${PYTHON:-.venv/bin/python}" -c "import psycopg" 2>/dev/null; then
  say "warning: psycopg (3) is not importable by ${PYTHON:-.venv/bin/python}; the MLflow server" \
    "needs it for postgresql:// stores (pip install 'psycopg[binary]')"
fi

echo "export MLFLOW_SCALING_TEST_POSTGRES_URI=postgresql://postgres@127.0.0.1:$PG_PORT/$PG_DB"
