#!/usr/bin/env bash
# container-check: builds distq's image with the real Dockerfile and runs the
# real docker-compose.yml, then drives the stack from the host.
#
#   make container-check        (run by .ci/run after make test and make check-deployments)
#
# No registry is reachable on CI machines, so base images cannot be pulled.
# The check builds local stand-ins from Debian packages and tags them with the
# exact names the Dockerfile and docker-compose.yml use, so that both files
# run unchanged:
#   golang:*                      Debian root (debootstrap) + this machine's Go toolchain
#   gcr.io/distroless/static-*    passwd/group with nonroot (65532), CA certificates,
#                                 time zones, /tmp: what distroless static has
#   redis:*                       Debian's redis-server
#   prom/prometheus:*             Debian's prometheus (+ wget for the healthcheck)
#   grafana/grafana:*             no Debian package: the service is in compose profile
#                                 "grafana" and the check leaves it out
# Then: docker build (GOPROXY/GOFLAGS passed through from the environment),
# docker-compose up, wait for every healthcheck, submit a batch through the
# api's published loopback port, stop (SIGTERM) a worker mid-batch and start a
# new one, see every item succeed against the simulator container, read the
# api's and the workers' /metrics and Prometheus' targets, docker-compose
# down -v. Everything it created is removed at the end (containers, network,
# volumes, images, build cache), and a Docker daemon it started is stopped.
#
# It installs docker.io, docker-compose and debootstrap with apt-get when they
# are missing (as root), and starts dockerd when no daemon answers. Where no
# daemon can start (no root, no apt, a kernel without overlay/cgroups), it
# prints why and exits 0: SKIPPED. CONTAINER_CHECK=skip skips it on purpose.
#
# Cache: the Debian root filesystem (the slow part: debootstrap from the
# mirror apt is configured with) is kept as a tarball under
# $DISTQ_CONTAINER_CACHE (default .cache/container-check, ignored by git), so
# a second run imports it instead of bootstrapping again. Delete the
# directory to start cold.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
t_start=$(date +%s)

cache="${DISTQ_CONTAINER_CACHE:-$root/.cache/container-check}"
project=distqcheck
label=org.distq.container-check=standin
items="${CONTAINER_CHECK_ITEMS:-40}"

say() { printf '[container-check %4ss] %s\n' "$(( $(date +%s) - t_start ))" "$*"; }
step() { printf '\n== %s\n' "$*"; }
die() { echo "container-check: FAILED: $*" >&2; exit 1; }
skip() { echo "container-check: SKIPPED: $*"; exit 0; }
trap 'echo "container-check: FAILED at line $LINENO: $BASH_COMMAND" >&2' ERR

if [ "${CONTAINER_CHECK:-}" = skip ]; then skip "CONTAINER_CHECK=skip"; fi

# ---------------------------------------------------------------- tools
step "tools: docker.io, docker-compose, debootstrap"
need=()
command -v dockerd >/dev/null 2>&1 || need+=(docker.io)
command -v docker-compose >/dev/null 2>&1 || need+=(docker-compose)
command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    skip "missing ${need[*]} and cannot install them here (needs root and apt-get): apt-get install -y --no-install-recommends ${need[*]}"
  fi
  say "installing ${need[*]} (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# Debian's docker.io puts its CLI at /usr/bin/docker; a newer CLI earlier on
# PATH (without the buildx plugin) cannot use BuildKit, so prefer the one
# that matches the daemon.
if [ -z "${DOCKER:-}" ]; then
  if [ -x /usr/bin/docker ]; then DOCKER=/usr/bin/docker; else DOCKER=docker; fi
fi
docker() { "$DOCKER" "$@"; }
compose() { docker-compose -p "$project" -f docker-compose.yml "$@"; }
export DOCKER_BUILDKIT=1
say "$("$DOCKER" --version); $(docker-compose version --short 2>/dev/null | sed 's/^/docker-compose /')"

# ---------------------------------------------------------------- daemon
work=$(mktemp -d /tmp/container-check.XXXXXX)
dockerd_pid=""
created_images=()
stack_up=0
build_cache_ours=0

# dockerd leaves its bridge, its iptables chains and rules, a FORWARD policy
# of DROP and IP forwarding on when it stops. A daemon this check started
# must not change the host's network for good: put those back as they were.
fwd_policy=ACCEPT ip_forward="" had_docker0=0
snapshot_host_network() {
  ip_forward=$(sysctl -n net.ipv4.ip_forward 2>/dev/null || true)
  ip link show docker0 >/dev/null 2>&1 && had_docker0=1
  if command -v iptables >/dev/null 2>&1; then
    fwd_policy=$(iptables -S FORWARD 2>/dev/null | awk '$1=="-P"{print $3}')
    fwd_policy=${fwd_policy:-ACCEPT}
  fi
}
restore_host_network() {
  local t
  if command -v iptables-save >/dev/null 2>&1; then
    for t in nat filter; do
      iptables-save -t "$t" 2>/dev/null | grep -v -e DOCKER -e docker0 | iptables-restore 2>/dev/null
    done
    iptables -P FORWARD "$fwd_policy" 2>/dev/null
  fi
  [ -z "$ip_forward" ] || sysctl -qw net.ipv4.ip_forward="$ip_forward" 2>/dev/null
  [ "$had_docker0" = 1 ] || ip link delete docker0 2>/dev/null
  say "host network as before the daemon: no docker0, no Docker iptables rules, FORWARD $fwd_policy, ip_forward=${ip_forward:-?}"
}

cleanup() {
  rc=$?
  set +e
  trap - EXIT INT TERM
  if [ "$stack_up" = 1 ]; then
    step "teardown after a failure: docker-compose down -v"
    compose logs --no-color --tail=30 2>&1 | tail -150
    compose down -v --remove-orphans -t 10 2>&1 | tail -20
  fi
  if [ ${#created_images[@]} -gt 0 ]; then
    say "removing images: ${created_images[*]}"
    docker rmi -f "${created_images[@]}" >/dev/null 2>&1
  fi
  if [ "$build_cache_ours" = 1 ]; then
    say "removing the build cache"
    docker builder prune -af >/dev/null 2>&1
  elif [ -n "${DOCKER_BUILDKIT:-}" ]; then
    say "the daemon was already running: its build cache is left as it is"
  fi
  if [ -n "$dockerd_pid" ]; then
    say "stopping the Docker daemon this check started (pid $dockerd_pid)"
    kill -TERM "$dockerd_pid" 2>/dev/null
    for _ in $(seq 150); do kill -0 "$dockerd_pid" 2>/dev/null || break; sleep 0.2; done
    if kill -0 "$dockerd_pid" 2>/dev/null; then
      say "dockerd did not stop within 30s: killing it"
      kill -KILL "$dockerd_pid" 2>/dev/null
    fi
    wait "$dockerd_pid" 2>/dev/null
    restore_host_network
  fi
  if [ "$rc" != 0 ] && [ -f "$work/dockerd.log" ]; then
    echo "--- last lines of dockerd's log ($work/dockerd.log):"; tail -20 "$work/dockerd.log"
    echo "(kept $work for inspection)"
  else
    rm -rf "$work"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

step "Docker daemon"
if docker info >/dev/null 2>&1; then
  say "a Docker daemon already answers: using it (it stays running)"
else
  if [ "$(id -u)" != 0 ]; then skip "no Docker daemon answers and starting dockerd needs root"; fi
  snapshot_host_network
  say "starting dockerd (log: $work/dockerd.log)"
  dockerd --pidfile "$work/dockerd.pid" >"$work/dockerd.log" 2>&1 &
  dockerd_pid=$!
  for _ in $(seq 150); do
    docker info >/dev/null 2>&1 && break
    kill -0 "$dockerd_pid" 2>/dev/null || break
    sleep 0.2
  done
  if ! docker info >/dev/null 2>&1; then
    tail -15 "$work/dockerd.log" >&2
    kill -TERM "$dockerd_pid" 2>/dev/null; wait "$dockerd_pid" 2>/dev/null || true
    dockerd_pid=""
    restore_host_network
    skip "dockerd could not start here (see its log above): no container engine on this machine"
  fi
  build_cache_ours=1
fi
say "daemon: $(docker info --format '{{.ServerVersion}}, storage {{.Driver}}, cgroup {{.CgroupVersion}}')"

# ------------------------------------------------- which images the files name
step "base images named by deployments/docker/Dockerfile and docker-compose.yml"
mapfile -t dockerfile_bases < <(awk 'toupper($1)=="FROM"{print $2}' deployments/docker/Dockerfile)
mapfile -t compose_images < <(sed -n 's/^[[:space:]]*image:[[:space:]]*["'\'']\{0,1\}\([^"'\'' ]*\).*/\1/p' docker-compose.yml | sort -u)
distq_image=$(sed -n 's/^[[:space:]]*image:[[:space:]]*\(distq:[^[:space:]]*\).*/\1/p' docker-compose.yml | head -1)
[ -n "$distq_image" ] || die "docker-compose.yml names no distq:* image"
builder_tag="" static_tag="" redis_tag="" prom_tag="" skipped=()
for img in "${dockerfile_bases[@]}" "${compose_images[@]}"; do
  case "$img" in
    "$distq_image") ;;
    golang:*) builder_tag=$img ;;
    */distroless/static*) static_tag=$img ;;
    redis:*|*/redis:*) redis_tag=$img ;;
    prom/prometheus:*|*/prometheus:*) prom_tag=$img ;;
    grafana/grafana:*|*/grafana:*) skipped+=("$img") ;;
    *) die "no stand-in for base image '$img': add one to scripts/container-check.sh" ;;
  esac
  echo "  $img"
done
[ -n "$builder_tag" ] && [ -n "$static_tag" ] || die "the Dockerfile's bases changed: expected golang:* and gcr.io/distroless/static*"
# The services a plain `docker-compose up` starts (those without a profile):
# Grafana must be behind one.
mapfile -t services < <(compose config | awk '
  /^services:/ { in_s=1; next } /^[^ ]/ { in_s=0 }
  in_s && /^  [^ ]/ { sub(":", "", $1); svc=$1; order[++n]=svc }
  in_s && /^    profiles:/ { prof[svc]=1 }
  END { for (i=1; i<=n; i++) if (!prof[order[i]]) print order[i] }')
for s in "${services[@]}"; do
  [ "$s" != grafana ] || die "grafana is not behind a compose profile: the check cannot run it (no Debian package)"
done
say "services started by 'docker-compose up': ${services[*]}"
say "left out: ${skipped[*]:-none} (no Debian package; compose profile 'grafana')"

# Images this check may (re)tag: never overwrite or remove one that was
# already there and is not a stand-in of an earlier run.
ours() { # image -> 0 if absent or ours
  local l
  l=$(docker image inspect -f '{{index .Config.Labels "org.distq.container-check"}}' "$1" 2>/dev/null) || return 0
  [ "$l" = standin ]
}
distq_existed=0
docker image inspect "$distq_image" >/dev/null 2>&1 && distq_existed=1

# ---------------------------------------------------------------- rootfs
step "Debian root filesystem (debootstrap, cached)"
. /etc/os-release
suite="${DISTQ_DEBIAN_SUITE:-${VERSION_CODENAME:-}}"
[ "${ID:-}" = debian ] && [ -n "$suite" ] || skip "the stand-ins are built from Debian packages; this machine is ${PRETTY_NAME:-not Debian}"
# The mirror apt is configured with (deb822 .sources or one-line .list).
mirror_from_apt() {
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    awk -v s="$suite" '
      /^[[:space:]]*$/ { if (deb && ok && uri) { print uri; exit } deb=ok=0; uri=""; next }
      tolower($1)=="types:" { for (i=2;i<=NF;i++) if ($i=="deb") deb=1 }
      tolower($1)=="suites:" { for (i=2;i<=NF;i++) if ($i==s) ok=1 }
      tolower($1)=="uris:" { uri=$2 }
      END { if (deb && ok && uri) print uri }' "$f" | head -1
  done
  cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
    awk -v s="$suite" '$1=="deb" { i=2; if ($2 ~ /^\[/) { while (i<=NF && $i !~ /\]$/) i++; i++ } if ($(i+1)==s) print $i }' || true
}
mirror="${DISTQ_DEBIAN_MIRROR:-$(mirror_from_apt | head -1)}"
[ -n "$mirror" ] || skip "no Debian mirror for '$suite' in /etc/apt/sources.list*: set DISTQ_DEBIAN_MIRROR"
pkgs=ca-certificates,tzdata,redis-server,prometheus,wget
rootfs_tar="$cache/debian-$suite-$(printf '%s' "$pkgs" | md5sum | cut -c1-8).tar"
mkdir -p "$cache"
if [ -s "$rootfs_tar" ]; then
  say "cached: $rootfs_tar ($(du -h "$rootfs_tar" | cut -f1))"
else
  say "debootstrap --variant=minbase $suite from $mirror (packages: $pkgs)"
  t=$(date +%s)
  if ! timeout 600 debootstrap --variant=minbase --include="$pkgs" "$suite" "$work/rootfs" "$mirror" >"$work/debootstrap.log" 2>&1; then
    tail -20 "$work/debootstrap.log" >&2
    die "debootstrap failed (log above)"
  fi
  # Not needed in any stand-in: package caches and lists, documentation, and
  # the 200 MB of moment-timezone data Debian's prometheus UI depends on.
  rm -rf "$work/rootfs"/var/cache/apt/archives/*.deb "$work/rootfs"/var/lib/apt/lists/* \
    "$work/rootfs"/usr/share/doc/* "$work/rootfs"/usr/share/man/* "$work/rootfs"/usr/share/info/* \
    "$work/rootfs"/usr/share/locale/* "$work/rootfs"/usr/share/javascript/moment-timezone
  tar --numeric-owner -C "$work/rootfs" -cf "$rootfs_tar.tmp" .
  mv "$rootfs_tar.tmp" "$rootfs_tar"
  say "debootstrap took $(( $(date +%s) - t ))s; cached as $rootfs_tar ($(du -h "$rootfs_tar" | cut -f1))"
fi

# ---------------------------------------------------------------- stand-ins
step "stand-in base images"
base_tag="distq-standin/debian:$suite"
build_standin() { # tag context [docker build args...]; Dockerfile on stdin
  local tag=$1 ctx=$2; shift 2
  if ! ours "$tag"; then
    say "$tag: a real image of that name is already here: using it"
    cat >/dev/null
    return
  fi
  local t; t=$(date +%s)
  docker build -q --label "$label" -t "$tag" -f - "$@" "$ctx" >"$work/build-standin.log" 2>&1 || { cat "$work/build-standin.log" >&2; die "building stand-in $tag"; }
  created_images+=("$tag")
  say "$tag: built in $(( $(date +%s) - t ))s ($(docker image inspect -f '{{.Size}}' "$tag" | awk '{printf "%.0f MB", $1/1e6}'))"
}

t=$(date +%s)
docker import --change "LABEL $label" "$rootfs_tar" "$base_tag" >/dev/null
created_images+=("$base_tag")
say "$base_tag: imported in $(( $(date +%s) - t ))s"

# The Go builder: the machine's Go, which must be the version the tag names.
goroot=$(go env GOROOT)
gover=$(go env GOVERSION)
case "$gover" in
  "go${builder_tag#golang:}"|"go${builder_tag#golang:}".*) ;;
  *) die "the Dockerfile builds with $builder_tag but this machine's Go is $gover" ;;
esac
mkdir -p "$work/builder"
cp -al "$goroot" "$work/builder/go" 2>/dev/null || cp -a "$goroot" "$work/builder/go"
# The machine's CA bundle: the build downloads modules from GOPROXY over
# HTTPS, and must trust what the machine's own Go trusts (e.g. a TLS proxy's CA).
cp /etc/ssl/certs/ca-certificates.crt "$work/builder/ca-certificates.crt"
build_standin "$builder_tag" "$work/builder" <<EOF
FROM $base_tag
COPY go /usr/local/go
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
ENV GOLANG_VERSION=${gover#go} GOTOOLCHAIN=local GOPATH=/go \
    PATH=/go/bin:/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
WORKDIR /go
EOF

# The static runtime base, as distroless static:nonroot has it.
s="$work/static"
mkdir -p "$s/etc/ssl/certs" "$s/usr/share" "$s/tmp" "$s/home/nonroot" "$s/root"
tar -C "$s" -xf "$rootfs_tar" ./etc/ssl/certs/ca-certificates.crt ./usr/share/zoneinfo
chmod 1777 "$s/tmp"; chmod 700 "$s/root" "$s/home/nonroot"
cat >"$s/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin
nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin
EOF
cat >"$s/etc/group" <<'EOF'
root:x:0:
nobody:x:65534:
tty:x:5:
staff:x:50:
nonroot:x:65532:
EOF
printf 'hosts: files dns\n' >"$s/etc/nsswitch.conf"
printf 'PRETTY_NAME="distq stand-in for %s (Debian %s)"\nID=debian\nVERSION_CODENAME=%s\n' "$static_tag" "$suite" "$suite" >"$s/etc/os-release"
build_standin "$static_tag" "$s" <<'EOF'
FROM scratch
COPY etc /etc
COPY usr /usr
COPY tmp /tmp
COPY root /root
COPY --chown=65532:65532 home /home
ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
USER 65532:65532
WORKDIR /home/nonroot
EOF

mkdir -p "$work/empty"
if [ -n "$redis_tag" ]; then
  # As the official image: /data owned by redis, and without a config file
  # it turns protected mode off (the other containers connect over the network).
  cat >"$work/empty/redis-entrypoint" <<'EOF'
#!/bin/sh
if [ "$1" = redis-server ]; then shift; set -- redis-server --protected-mode no "$@"; fi
exec "$@"
EOF
  chmod 755 "$work/empty/redis-entrypoint"
  build_standin "$redis_tag" "$work/empty" <<EOF
FROM $base_tag
COPY redis-entrypoint /usr/local/bin/docker-entrypoint.sh
RUN mkdir -p /data && chown redis:redis /data
WORKDIR /data
USER redis
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["redis-server"]
EXPOSE 6379
EOF
fi
if [ -n "$prom_tag" ]; then
  build_standin "$prom_tag" "$work/empty" <<EOF
FROM $base_tag
RUN mkdir -p /prometheus && chown nobody:nogroup /prometheus
USER nobody
WORKDIR /prometheus
ENTRYPOINT ["/usr/bin/prometheus"]
CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]
EXPOSE 9090
EOF
fi

# ---------------------------------------------------------------- the image
step "docker build -f deployments/docker/Dockerfile -t $distq_image . (cold)"
build_args=()
for v in GOPROXY GOFLAGS GONOSUMDB GOPRIVATE; do
  if [ -n "${!v:-}" ]; then build_args+=(--build-arg "$v"); say "passing $v=${!v}"; fi
done
t=$(date +%s)
if ! docker build --progress=plain --label "$label" "${build_args[@]}" -f deployments/docker/Dockerfile -t "$distq_image" . >"$work/build.log" 2>&1; then
  tail -40 "$work/build.log" >&2
  die "docker build failed (last lines above)"
fi
[ "$distq_existed" = 1 ] || created_images+=("$distq_image")
build_cold=$(( $(date +%s) - t ))
grep -E '^#[0-9]+ (DONE|CACHED)|^#[0-9]+ \[' "$work/build.log" | grep -E '\[|DONE [0-9.]{3,}s' | tail -20
t=$(date +%s)
docker build -q "${build_args[@]}" -f deployments/docker/Dockerfile -t "$distq_image" . >/dev/null
build_warm=$(( $(date +%s) - t ))
build_rebuild=""
if [ "${CONTAINER_CHECK_REBUILD:-}" = 1 ]; then
  # A developer's rebuild: the same sources plus a one-line change in cmd/api.
  mkdir -p "$work/src"
  git ls-files -co --exclude-standard -z | tar --null -T - -cf - | tar -C "$work/src" -xf -
  printf '\n// container-check: a source change\n' >>"$work/src/cmd/api/main.go"
  t=$(date +%s)
  docker build -q "${build_args[@]}" -f deployments/docker/Dockerfile -t "$project-rebuild" "$work/src" >/dev/null
  build_rebuild=$(( $(date +%s) - t ))
  docker rmi "$project-rebuild" >/dev/null
  say "rebuild after a source change in cmd/api: ${build_rebuild}s"
fi
image_size=$(docker image inspect -f '{{.Size}}' "$distq_image")
image_mb=$(awk -v b="$image_size" 'BEGIN{printf "%.1f", b/1e6}')
say "image $distq_image: ${image_mb} MB; build ${build_cold}s cold (no build cache), ${build_warm}s warm (unchanged source)"
say "image user: $(docker image inspect -f '{{.Config.User}}' "$distq_image"); binaries: $(docker create --name "${project}-ls" "$distq_image" >/dev/null && docker export "${project}-ls" | tar -t | grep '^usr/local/bin/.' | sed 's|usr/local/bin/||' | tr '\n' ' '; docker rm "${project}-ls" >/dev/null)"

# ---------------------------------------------------------------- the stack
step "docker-compose up (everything but Grafana)"
free_port() {
  local p
  for _ in $(seq 50); do
    p=$(( 20000 + RANDOM % 20000 ))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return; fi
  done
  die "no free loopback port"
}
DISTQ_API_PORT=$(free_port); DISTQ_ALISIM_PORT=$(free_port); DISTQ_PROMETHEUS_PORT=$(free_port)
export DISTQ_API_PORT DISTQ_ALISIM_PORT DISTQ_PROMETHEUS_PORT
say "published on loopback: api 127.0.0.1:$DISTQ_API_PORT, alisim 127.0.0.1:$DISTQ_ALISIM_PORT, prometheus 127.0.0.1:$DISTQ_PROMETHEUS_PORT"
api="http://127.0.0.1:$DISTQ_API_PORT"
token=$(sed -n 's/.*DISTQ_API_TOKENS: *"\{0,1\}[^:]*:\([^"]*\)"\{0,1\}.*/\1/p' docker-compose.yml | head -1)
[ -n "$token" ] || die "no DISTQ_API_TOKENS in docker-compose.yml"

compose down -v --remove-orphans >/dev/null 2>&1 || true # leftovers of an interrupted run
stack_up=1
t_up=$(date +%s)
compose up -d --no-build 2>&1 | sed 's/^/  /'

cid() { compose ps -q "$1"; }
health() { docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}' "$(cid "$1")" 2>/dev/null; }
wait_healthy() { # seconds services...
  local deadline=$(( $(date +%s) + $1 )) s all; shift
  while :; do
    all=1
    for s in "$@"; do [ "$(health "$s")" = healthy ] || all=0; done
    [ "$all" = 1 ] && return 0
    if [ "$(date +%s)" -ge "$deadline" ]; then
      for s in "$@"; do echo "  $s: $(health "$s")"; done
      return 1
    fi
    sleep 1
  done
}
wait_healthy 120 "${services[@]}" || die "the stack did not become healthy within 120s"
to_healthy=$(( $(date +%s) - t_up ))
say "every healthcheck healthy ${to_healthy}s after docker-compose up"
compose ps
for s in "${services[@]}"; do
  c=$(cid "$s")
  printf '  %-11s %s user=%s read_only=%s restarts=%s\n' "$s" "$(health "$s")" \
    "$(docker inspect -f '{{.Config.User}}' "$c")" "$(docker inspect -f '{{.HostConfig.ReadonlyRootfs}}' "$c")" \
    "$(docker inspect -f '{{.RestartCount}}' "$c")"
done

# Redis runs as the file says: append-only file on the redis-data volume, no eviction.
aof=$(compose exec -T redis redis-cli config get appendonly | tail -1 | tr -d '\r')
evict=$(compose exec -T redis redis-cli config get maxmemory-policy | tail -1 | tr -d '\r')
mounts=$(docker inspect -f '{{range .Mounts}}{{.Name}}:{{.Destination}} {{end}}' "$(cid redis)")
say "redis: appendonly=$aof maxmemory-policy=$evict mounts=$mounts"
[ "$aof" = yes ] && [ "$evict" = noeviction ] && [[ "$mounts" == *redis-data:/data* ]] ||
  die "redis does not run with docker-compose.yml's persistence settings"

# ---------------------------------------------------------------- the batch
step "a batch of $items items through the api ($api)"
curl_api() { curl -sS --max-time 10 -H "Authorization: Bearer $token" "$@"; }
body=$(jq -cn --argjson n "$items" --arg run "$(date +%s)" '{
  source_instance_id: "iotx-oxssharez200", target_instance_id: "iot-cn-6ja0000check",
  items: [range($n) | {product_key: ("ccheck\($run)x\(.)")}]}')
resp=$(curl_api -X POST -H 'Content-Type: application/json' -d "$body" -w '\n%{http_code}' "$api/v1/batches")
code=${resp##*$'\n'}; resp=${resp%$'\n'*}
[ "$code" = 202 ] || die "POST /v1/batches answered $code: $resp"
batch=$(jq -r .batch.id <<<"$resp")
[ "$(jq -r .accepted <<<"$resp")" = "$items" ] || die "not every item accepted: $resp"
say "batch $batch: $items accepted"
counts() { curl_api "$api/v1/batches/$batch" | jq -c '.counts + {done: .done}'; }

# Stop a worker while the batch runs: once some items are past the queue.
deadline=$(( $(date +%s) + 60 ))
while :; do
  c=$(counts)
  [ "$(jq '.submitting + .running + .succeeded' <<<"$c")" -ge 3 ] && break
  [ "$(date +%s)" -lt "$deadline" ] || die "the batch did not start within 60s: $c"
  sleep 0.5
done
say "mid-batch: $c"
step "stopping worker-1 mid-batch (SIGTERM; stop_grace_period from docker-compose.yml)"
t=$(date +%s)
compose stop worker-1 2>&1 | sed 's/^/  /'
w1=$(cid worker-1)
exit_code=$(docker inspect -f '{{.State.ExitCode}}' "$w1")
say "worker-1 stopped in $(( $(date +%s) - t ))s with exit code $exit_code; its last lines:"
docker logs --tail 4 "$w1" 2>&1 | sed 's/^/  /'
[ "$exit_code" = 0 ] || die "worker-1 did not drain and exit 0 on SIGTERM (exit code $exit_code)"
say "after the stop: $(counts)"
step "replacing worker-1 (a new container)"
compose rm -f worker-1 >/dev/null 2>&1
compose up -d --no-build --no-deps worker-1 2>&1 | sed 's/^/  /'
wait_healthy 60 worker-1 || die "the new worker-1 did not become healthy"
say "new worker-1 healthy"

step "waiting for the batch to finish"
deadline=$(( $(date +%s) + 240 ))
while :; do
  c=$(counts)
  [ "$(jq -r .done <<<"$c")" = true ] && break
  [ "$(date +%s)" -lt "$deadline" ] || die "the batch is not done after 240s: $c"
  sleep 2
done
say "batch done: $c"
[ "$(jq .succeeded <<<"$c")" = "$items" ] || die "not every item succeeded: $c"
# Every item, one by one, with the job id the simulator gave it.
page=$(curl_api "$api/v1/batches/$batch/distributions?limit=$items")
ok=$(jq '[.items[] | select(.state=="succeeded" and (.job_id // "") != "")] | length' <<<"$page")
[ "$ok" = "$items" ] || die "only $ok of $items items are listed as succeeded with a job id"
say "all $items items succeeded, each with a simulator job id"

# ---------------------------------------------------------------- metrics
step "metrics"
m=$(curl -sS --max-time 10 "$api/metrics")
sub=$(awk '/^distq_distributions_submitted_total/{s+=$NF} END{print s+0}' <<<"$m")
say "api /metrics: $(wc -l <<<"$m") lines, distq_distributions_submitted_total=$sub"
[ "${sub%.*}" -ge "$items" ] || die "the api counted $sub submissions, want at least $items"
net=$(docker inspect -f '{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}' "$(cid api)" | awk '{print $1}')
finished=0
for w in worker-1 worker-2; do
  # From inside the compose network (the worker port is not published).
  wm=$(docker run --rm --network "$net" "$base_tag" wget -q -T 5 -O - "http://$w:9090/metrics") || die "reading $w's /metrics"
  f=$(awk '/^distq_distributions_finished_total.*outcome="succeeded"/{s+=$NF} END{print s+0}' <<<"$wm")
  say "$w /metrics: $(wc -l <<<"$wm") lines, distq_distributions_finished_total{succeeded}=$f"
  grep -q '^distq_job_slots_limit' <<<"$wm" || die "$w exports no distq_job_slots_limit"
  finished=$(( finished + ${f%.*} ))
done
prom="http://127.0.0.1:$DISTQ_PROMETHEUS_PORT"
deadline=$(( $(date +%s) + 60 ))
while :; do
  up=$(curl -sS --max-time 5 "$prom/api/v1/query" --data-urlencode 'query=up' | jq -r '[.data.result[] | select(.value[1]=="1") | .metric.instance] | sort | join(" ")' 2>/dev/null || true)
  n=$(wc -w <<<"$up")
  [ "$n" -ge 4 ] && break
  [ "$(date +%s)" -lt "$deadline" ] || die "Prometheus does not see api, both workers and itself up within 60s: '$up'"
  sleep 2
done
say "Prometheus scrapes (up==1): $up"

step "health of every container"
for s in "${services[@]}"; do
  st=$(health "$s")
  printf '  %-11s %s\n' "$s" "$st"
  [ "$st" = healthy ] || die "$s is $st"
done

# ---------------------------------------------------------------- teardown
step "docker-compose stop: every container must end on SIGTERM (exit code 0)"
t=$(date +%s)
mapfile -t cids < <(compose ps -q)
compose stop 2>&1 | sed 's/^/  /'
bad=0
for c in "${cids[@]}"; do
  printf '  %-26s exit %s\n' "$(docker inspect -f '{{.Name}}' "$c" | tr -d /)" "$(docker inspect -f '{{.State.ExitCode}}' "$c")"
  [ "$(docker inspect -f '{{.State.ExitCode}}' "$c")" = 0 ] || bad=1
done
say "stopped in $(( $(date +%s) - t ))s"
[ "$bad" = 0 ] || die "a container did not exit 0 on SIGTERM"

step "docker-compose down -v"
t=$(date +%s)
compose down -v --remove-orphans 2>&1 | sed 's/^/  /'
stack_up=0
left=$(docker ps -aq --filter "label=com.docker.compose.project=$project"; docker network ls -q --filter "label=com.docker.compose.project=$project"; docker volume ls -q --filter "label=com.docker.compose.project=$project")
[ -z "$left" ] || die "docker-compose down left: $left"
say "down in $(( $(date +%s) - t ))s: no container, network or volume of project $project left"

total=$(( $(date +%s) - t_start ))
cat <<EOF

container-check: PASSED in ${total}s
  image $distq_image          ${image_mb} MB
  docker build              ${build_cold}s cold (base images present, no build cache), ${build_warm}s warm (unchanged source)${build_rebuild:+, ${build_rebuild}s after a source change}
  up -> every healthcheck   ${to_healthy}s
  batch                     ${items}/${items} succeeded; worker-1 stopped mid-batch (exit 0) and replaced
  left out                  ${skipped[*]:-none} (no Debian package: compose profile "grafana")
EOF
