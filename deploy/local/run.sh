#!/usr/bin/env bash
# Brings the whole DIMS set up on this machine: installs what is missing, builds (Release),
# starts a private Redis and PostgreSQL under .state/ (kept between runs), applies the store's
# migrations, starts the five services, prints the endpoints, and on Ctrl-C stops everything
# it started.
#
# Ports and places (environment variables, defaults in brackets):
#   DIMS_LOCAL_SIP_PORT [5060]        SIP, UDP and TCP, on 127.0.0.1
#   DIMS_LOCAL_GRPC_BASE [50051]      gRPC: sip-edge +0, settings +1, storage +2, delivery +3,
#                                     msrp-relay +4
#   DIMS_LOCAL_METRICS_BASE [9101]    /metrics, same order
#   DIMS_LOCAL_REDIS_PORT [16379]     the private Redis
#   DIMS_LOCAL_POSTGRES_PORT [15432]  the private PostgreSQL
#   DIMS_LOCAL_STATE [.state]         where data and logs live
#   DIMS_DOMAINS [dims.test]          SIP domains served (read by the sip-edge itself)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
SIP_PORT="${DIMS_LOCAL_SIP_PORT:-5060}"
GRPC_BASE="${DIMS_LOCAL_GRPC_BASE:-50051}"
METRICS_BASE="${DIMS_LOCAL_METRICS_BASE:-9101}"
REDIS_PORT="${DIMS_LOCAL_REDIS_PORT:-16379}"
PG_PORT="${DIMS_LOCAL_POSTGRES_PORT:-15432}"
STATE="${DIMS_LOCAL_STATE:-$ROOT/.state}"
BUILD="$ROOT/build/release"

say() { printf 'dims-local: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

"$ROOT/deploy/install-deps.sh"
say "building (Release) in build/release"
cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DDIMS_BUILD_TESTS=OFF >/dev/null
cmake --build "$BUILD" -j "$(nproc)" --target dims-sip-edge dims-settings dims-storage \
  dims-delivery dims-msrp-relay dims-health

mkdir -p "$STATE/redis" "$STATE/logs"
STATE="$(cd "$STATE" && pwd)"
LOGS="$STATE/logs"

PIDS=()
NAMES=()
stop_all() {
  trap - INT TERM EXIT
  say "stopping"
  local i
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
    kill -TERM "${PIDS[$i]}" 2>/dev/null || true
  done
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
    local n=0
    while kill -0 "${PIDS[$i]}" 2>/dev/null && [ $n -lt 100 ]; do sleep 0.1; n=$((n + 1)); done
    if kill -0 "${PIDS[$i]}" 2>/dev/null; then
      say "${NAMES[$i]} did not stop in 10 s; killing it"
      kill -KILL "${PIDS[$i]}" 2>/dev/null || true
    fi
  done
  say "stopped"
}
on_signal() {
  stop_all
  exit 0
}
trap on_signal INT TERM
trap stop_all EXIT
started() { PIDS+=("$1"); NAMES+=("$2"); }

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for p in "$SIP_PORT" "$REDIS_PORT" "$PG_PORT" $(seq "$GRPC_BASE" $((GRPC_BASE + 4))) \
  $(seq "$METRICS_BASE" $((METRICS_BASE + 4))); do
  port_free "$p" || die "port $p on 127.0.0.1 is in use (another run? see the variables in $0)"
done

# --- Redis ---------------------------------------------------------------------------------
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$STATE/redis" --appendonly yes \
  --save "" --daemonize no >"$LOGS/redis.log" 2>&1 &
started $! redis

# --- PostgreSQL ----------------------------------------------------------------------------
# PostgreSQL refuses to run as root: as root, the cluster belongs to the postgres system user
# (created by Debian's package). That user must be able to reach the folder; when the checkout
# sits somewhere it cannot (a private home), the cluster lives under /var/lib instead.
PG_BIN="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)"
AS_PG=()
PG_DIR="$STATE/postgres"
if [ "$(id -u)" -eq 0 ]; then
  AS_PG=(runuser -u postgres --)
  mkdir -p "$PG_DIR"
  chown postgres:postgres "$PG_DIR"
  if ! "${AS_PG[@]}" test -w "$PG_DIR"; then
    PG_DIR="/var/lib/dims-local/$(printf '%s' "$STATE" | sha1sum | cut -c1-12)/postgres"
    mkdir -p "$PG_DIR"
    chown postgres:postgres "$PG_DIR"
    say "the postgres user cannot reach $STATE; its cluster lives in $PG_DIR"
  fi
else
  mkdir -p "$PG_DIR"
fi
if [ ! -f "$PG_DIR/data/PG_VERSION" ]; then
  say "initdb (first run)"
  "${AS_PG[@]}" "$PG_BIN/initdb" -D "$PG_DIR/data" -U dims --auth=trust -E UTF8 --locale=C \
    >"$LOGS/initdb.log" 2>&1 || die "initdb failed, see $LOGS/initdb.log"
fi
"${AS_PG[@]}" "$PG_BIN/postgres" -D "$PG_DIR/data" -p "$PG_PORT" -k "$PG_DIR" \
  -c listen_addresses=127.0.0.1 >>"$LOGS/postgres.log" 2>&1 &
started $! postgres
for _ in $(seq 1 100); do
  "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" && break
  sleep 0.2
done
"$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" || die "PostgreSQL did not start, see $LOGS/postgres.log"
psql_admin() { psql -X -q -h 127.0.0.1 -p "$PG_PORT" -U dims -d postgres "$@"; }
if [ -z "$(psql_admin -tAc "SELECT 1 FROM pg_database WHERE datname = 'dims'")" ]; then
  psql_admin -c "CREATE DATABASE dims"
fi
DSN="host=127.0.0.1 port=$PG_PORT dbname=dims user=dims connect_timeout=3"

# --- DIMS ----------------------------------------------------------------------------------
EDGE_GRPC=$GRPC_BASE SETTINGS_GRPC=$((GRPC_BASE + 1)) STORAGE_GRPC=$((GRPC_BASE + 2))
DELIVERY_GRPC=$((GRPC_BASE + 3)) RELAY_GRPC=$((GRPC_BASE + 4))
export DIMS_LOG_FORMAT="${DIMS_LOG_FORMAT:-text}"
export DIMS_REDIS_ADDR="127.0.0.1:$REDIS_PORT"
export DIMS_POSTGRES_DSN="$DSN"
export DIMS_SETTINGS_ADDR="127.0.0.1:$SETTINGS_GRPC"
export DIMS_STORAGE_ADDR="127.0.0.1:$STORAGE_GRPC"
export DIMS_DELIVERY_ADDR="127.0.0.1:$DELIVERY_GRPC"
export DIMS_RELAY_ADDR="127.0.0.1:$RELAY_GRPC"
export DIMS_SIP_LISTEN="127.0.0.1:$SIP_PORT"

"$BUILD/services/storage/dims-storage" migrate >>"$LOGS/storage.log" 2>&1 ||
  die "migrations failed, see $LOGS/storage.log"

SERVICES=(settings storage msrp-relay delivery sip-edge)
declare -A GRPC=([sip-edge]=$EDGE_GRPC [settings]=$SETTINGS_GRPC [storage]=$STORAGE_GRPC
  [delivery]=$DELIVERY_GRPC [msrp-relay]=$RELAY_GRPC)
declare -A METRICS=([sip-edge]=$METRICS_BASE [settings]=$((METRICS_BASE + 1))
  [storage]=$((METRICS_BASE + 2)) [delivery]=$((METRICS_BASE + 3))
  [msrp-relay]=$((METRICS_BASE + 4)))
for svc in "${SERVICES[@]}"; do
  DIMS_GRPC_LISTEN="127.0.0.1:${GRPC[$svc]}" DIMS_METRICS_LISTEN="127.0.0.1:${METRICS[$svc]}" \
    "$BUILD/services/$svc/dims-$svc" >>"$LOGS/$svc.log" 2>&1 &
  started $! "$svc"
done
for svc in "${SERVICES[@]}"; do
  "$BUILD/services/common/dims-health" "127.0.0.1:${GRPC[$svc]}" --wait 30 >/dev/null ||
    die "$svc is not SERVING after 30 s, see $LOGS/$svc.log"
done

cat <<INFO

DIMS is up (state in $STATE, logs in $LOGS). Ctrl-C stops everything.

  SIP (UDP and TCP)     127.0.0.1:$SIP_PORT   domains: ${DIMS_DOMAINS:-dims.test}
  Messaging API (gRPC)  127.0.0.1:$DELIVERY_GRPC   dims.v1.Messaging, on the delivery service

  service      gRPC               metrics
  sip-edge     127.0.0.1:$EDGE_GRPC    http://127.0.0.1:${METRICS[sip-edge]}/metrics
  settings     127.0.0.1:$SETTINGS_GRPC    http://127.0.0.1:${METRICS[settings]}/metrics
  storage      127.0.0.1:$STORAGE_GRPC    http://127.0.0.1:${METRICS[storage]}/metrics
  delivery     127.0.0.1:$DELIVERY_GRPC    http://127.0.0.1:${METRICS[delivery]}/metrics
  msrp-relay   127.0.0.1:$RELAY_GRPC    http://127.0.0.1:${METRICS[msrp-relay]}/metrics

  Redis        127.0.0.1:$REDIS_PORT
  PostgreSQL   $DSN

INFO

# Stay in the foreground until Ctrl-C or until any process we started ends.
while true; do
  for i in "${!PIDS[@]}"; do
    if ! kill -0 "${PIDS[$i]}" 2>/dev/null; then
      say "${NAMES[$i]} exited; see $LOGS/${NAMES[$i]}.log"
      exit 1
    fi
  done
  sleep 1 &
  wait $! || true # returns at once on a signal, so the trap runs without delay
done
