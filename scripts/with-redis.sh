#!/usr/bin/env bash
# Runs a command with a Redis at TEST_REDIS_ADDR (default 127.0.0.1:6379):
# the one that answers there, or else a private redis-server started here
# for the command's life.
set -euo pipefail
addr="${TEST_REDIS_ADDR:-127.0.0.1:6379}"
host="${addr%:*}"; port="${addr##*:}"

answers() { (exec 3<>"/dev/tcp/$1/$2" && printf 'PING\r\n' >&3 && timeout 2 head -c 5 <&3 | grep -q PONG) 2>/dev/null; }

if answers "$host" "$port"; then
  exec "$@"
fi
if ! command -v redis-server >/dev/null 2>&1; then
  echo "No Redis answers at $addr and redis-server is not installed." >&2
  echo "Start one (e.g. 'apt-get install redis-server' then 'redis-server --daemonize yes')," >&2
  echo "or point TEST_REDIS_ADDR at one." >&2
  exit 1
fi
dir=$(mktemp -d)
port=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])' 2>/dev/null || echo 16379)
echo "No Redis at $addr: starting a private redis-server on 127.0.0.1:$port" >&2
redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$dir" --daemonize yes --pidfile "$dir/redis.pid" --logfile "$dir/redis.log"
trap 'kill "$(cat "$dir/redis.pid")" 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 50); do answers 127.0.0.1 "$port" && break; sleep 0.1; done
export TEST_REDIS_ADDR="127.0.0.1:$port"
"$@"
