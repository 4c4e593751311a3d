#!/usr/bin/env bash
# Fill the project cache with everything the tests and the Spark/Kafka/S3 paths need at run time:
# Delta + hadoop-aws jars for Spark, an Apache Kafka broker classpath, an S3-compatible server
# (versitygw) and supercronic; and Debian's wrk for bench/webhook_ingest.py (as root from apt, else
# unpacked into the cache with the libraries it needs).
# Idempotent: each piece is skipped when its stamp file names the pinned version.
# Nothing is downloaded at run time; this script is the only place that fetches.
#
# Cache location (same rule as smarttrader_cli/ops/cache.py):
#   $ST_CACHE_DIR, else ${XDG_CACHE_HOME:-~/.cache}/smarttrader
# Other knobs: PYTHON (interpreter whose pyspark is used, default .venv/bin/python or python3),
#   ST_SKIP_CHROMIUM=1 (do not try to install Debian's chromium).
set -euo pipefail

DELTA_VERSION=4.4.0          # io.delta:delta-spark_4.2_2.13 (4.4.1 is not on Maven Central)
SPARK_DELTA_ARTIFACT=delta-spark_4.2_2.13
HADOOP_AWS_FALLBACK=3.5.0    # used only when pyspark's bundled hadoop cannot be read
KAFKA_VERSION=4.4.0          # org.apache.kafka:kafka_2.13
LOG4J_VERSION=2.25.4         # slf4j -> log4j2 binding for the broker
SLF4J_VERSION=2.0.17
# S3 server for tests: the Go module proxy answers 403 "not available" for github.com/minio/minio,
# so the tests use versitygw (Apache-2.0, S3 API over a POSIX dir, supports If-None-Match writes).
VERSITYGW_VERSION=v1.8.0
SUPERCRONIC_VERSION=v0.2.48

started=$(date +%s)
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

if [[ -n "${ST_CACHE_DIR:-}" ]]; then
  cache="$ST_CACHE_DIR"
else
  cache="${XDG_CACHE_HOME:-$HOME/.cache}/smarttrader"
fi
mkdir -p "$cache"
cache="$(cd "$cache" && pwd)"

log() { printf '[install-deps] %s\n' "$*"; }
die() { printf '[install-deps] ERROR: %s\n' "$*" >&2; exit 1; }

is_root() { [[ "$(id -u)" == "0" ]]; }

apt_updated=0
apt_install() {
  # Debian packages only when we are root; callers decide what a miss means.
  is_root && command -v apt-get >/dev/null || return 1
  if [[ $apt_updated == 0 ]]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null || return 1
    apt_updated=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

need_tool() {
  local tool=$1 pkg=$2
  command -v "$tool" >/dev/null && return 0
  log "$tool missing; installing Debian package $pkg"
  apt_install "$pkg" || die "$tool is required (install $pkg, or run as root so this script can)"
}

stamp_ok() { [[ -f "$1/.stamp" && "$(cat "$1/.stamp")" == "$2" ]]; }

# ---------------------------------------------------------------- maven helpers
m2="$cache/m2"

write_pom() {
  # write_pom FILE ARTIFACT_ID DEPENDENCY_XML
  cat >"$1" <<EOF
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>smarttrader.cache</groupId>
  <artifactId>$2</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
$3
  </dependencies>
</project>
EOF
}

dep() { printf '    <dependency><groupId>%s</groupId><artifactId>%s</artifactId><version>%s</version></dependency>\n' "$1" "$2" "$3"; }

mvn_copy() {
  # mvn_copy POM_DIR OUTPUT_DIR [EXCLUDED_ARTIFACT_IDS]
  local args=(-B -q -f "$1/pom.xml" "-Dmaven.repo.local=$m2"
    dependency:copy-dependencies "-DoutputDirectory=$2" -DincludeScope=runtime)
  [[ -n "${3:-}" ]] && args+=("-DexcludeArtifactIds=$3")
  # maven's output (colour codes even in batch mode) is shown only when it fails
  if ! mvn "${args[@]}" >"$1/mvn.log" 2>&1; then
    cat "$1/mvn.log" >&2
    die "mvn dependency:copy-dependencies failed (see above)"
  fi
}

# ---------------------------------------------------------------- pyspark facts
python_bin="${PYTHON:-}"
if [[ -z "$python_bin" ]]; then
  if [[ -x "$repo_root/.venv/bin/python" ]]; then python_bin="$repo_root/.venv/bin/python"; else python_bin=python3; fi
fi
pyspark_jars="$("$python_bin" - <<'EOF' 2>/dev/null || true
import os
try:
    import pyspark
except ImportError:
    raise SystemExit(0)
print(os.path.join(os.path.dirname(pyspark.__file__), "jars"))
EOF
)"
hadoop_version="$HADOOP_AWS_FALLBACK"
bundled_ids=""
if [[ -n "$pyspark_jars" && -d "$pyspark_jars" ]]; then
  found=$(ls "$pyspark_jars" | sed -n 's/^hadoop-client-api-\([0-9][0-9.]*\)\.jar$/\1/p' | head -1)
  [[ -n "$found" ]] && hadoop_version="$found"
  # artifactIds pyspark already ships: copying them again would put two versions on the classpath
  bundled_ids=$(ls "$pyspark_jars" | grep '\.jar$' | sed -E 's/-[0-9][^-]*(-.*)?\.jar$//' | sort -u | paste -sd, -)
else
  log "pyspark not found for $python_bin; Spark jars are fetched without excluding its bundled ones"
fi

# ---------------------------------------------------------------- Spark jars (Delta, hadoop-aws)
install_spark_jars() {
  local dir="$cache/jars/spark"
  local want="io.delta:$SPARK_DELTA_ARTIFACT:$DELTA_VERSION org.apache.hadoop:hadoop-aws:$hadoop_version"
  if stamp_ok "$dir" "$want"; then log "spark jars: up to date ($want)"; return; fi
  need_tool java openjdk-17-jre-headless
  need_tool mvn maven
  log "spark jars: fetching $want"
  local work; work=$(mktemp -d)
  write_pom "$work/pom.xml" spark-jars "$(dep io.delta "$SPARK_DELTA_ARTIFACT" "$DELTA_VERSION")
$(dep org.apache.hadoop hadoop-aws "$hadoop_version")"
  rm -rf "$dir.tmp" && mkdir -p "$dir.tmp"
  mvn_copy "$work" "$dir.tmp" "$bundled_ids"
  ls "$dir.tmp"/delta-spark_*.jar "$dir.tmp"/delta-storage-*.jar "$dir.tmp"/hadoop-aws-*.jar >/dev/null \
    || die "spark jars: Delta or hadoop-aws jar missing after copy"
  printf '%s' "$want" >"$dir.tmp/.stamp"
  rm -rf "$dir" && mv "$dir.tmp" "$dir"
  rm -rf "$work"
}

# ---------------------------------------------------------------- Kafka broker classpath
install_kafka() {
  local dir="$cache/kafka"
  local want="org.apache.kafka:kafka_2.13:$KAFKA_VERSION log4j-slf4j2-impl:$LOG4J_VERSION"
  if stamp_ok "$dir" "$want"; then log "kafka: up to date ($want)"; return; fi
  need_tool java openjdk-17-jre-headless
  need_tool mvn maven
  log "kafka: fetching $want"
  local work; work=$(mktemp -d)
  # slf4j-api 2.x explicitly: Kafka's pom pulls 1.7, which ignores the log4j2 slf4j2 binding
  write_pom "$work/pom.xml" kafka-broker "$(dep org.apache.kafka kafka_2.13 "$KAFKA_VERSION")
$(dep org.apache.logging.log4j log4j-slf4j2-impl "$LOG4J_VERSION")
$(dep org.apache.logging.log4j log4j-core "$LOG4J_VERSION")
$(dep org.slf4j slf4j-api "$SLF4J_VERSION")"
  rm -rf "$dir.tmp" && mkdir -p "$dir.tmp/libs"
  mvn_copy "$work" "$dir.tmp/libs"
  ls "$dir.tmp/libs"/kafka_2.13-*.jar >/dev/null || die "kafka: kafka_2.13 jar missing after copy"
  printf '%s' "$want" >"$dir.tmp/.stamp"
  rm -rf "$dir" && mv "$dir.tmp" "$dir"
  rm -rf "$work"
}

# ---------------------------------------------------------------- Go binaries
go_install() {
  # go_install NAME PACKAGE VERSION
  local name=$1 module=$2 version=$3 bin="$cache/bin"
  if [[ -x "$bin/$name" && -f "$bin/.$name.version" && "$(cat "$bin/.$name.version")" == "$version" ]]; then
    log "$name: up to date ($version)"; return
  fi
  command -v go >/dev/null || die "$name: the Go toolchain is required (go install $module@$version)"
  log "$name: go install $module@$version (this compiles; minutes on 2 cores)"
  mkdir -p "$bin"
  GOBIN="$bin" GOPATH="$cache/go" GOCACHE="$cache/go/build-cache" GOFLAGS="-modcacherw" \
    CGO_ENABLED=0 go install "$module@$version"
  printf '%s' "$version" >"$bin/.$name.version"
  go_used=1
}

# ---------------------------------------------------------------- chromium (HTML report test)
install_chromium() {
  if [[ "${ST_SKIP_CHROMIUM:-0}" == "1" ]]; then log "chromium: skipped (ST_SKIP_CHROMIUM=1)"; return; fi
  if command -v chromium >/dev/null; then log "chromium: present ($(command -v chromium))"; return; fi
  if apt_install chromium; then
    log "chromium: installed from Debian"
  else
    log "chromium: not installed (needs root and apt-get); the HTML screenshot test will say so"
  fi
}

# ---------------------------------------------------------------- wrk (bench/webhook_ingest.py)
# As root: Debian's package. Otherwise Debian's .deb files, unpacked into the cache with the libraries
# wrk needs that the system lacks, and a wrapper bin/wrk that points the loader at them.
wrk_private_apt=(-o "Dir::State::Lists=$cache/apt/lists" -o "Dir::Cache=$cache/apt/cache"
  -o Debug::NoLocking=1)

wrk_runs() {
  # `wrk -v` prints its version and usage, and exits 1
  local out; out=$("$1" -v 2>&1) || true
  [[ "$out" == "wrk "* ]]
}

wrk_missing_deps() {
  # The first alternative of each of wrk's Depends groups none of whose alternatives is installed.
  apt-cache "$@" depends wrk | awk '
    $1 ~ /^[|]?Depends:$/ {
      gsub(/[<>]/, "", $2); group = group (group == "" ? "" : " ") $2
      if ($1 !~ /^[|]/) { print group; group = "" }
    }' |
    while read -r -a alternatives; do
      local pkg found=0
      for pkg in "${alternatives[@]}"; do
        [[ "$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null)" == installed ]] && found=1
      done
      [[ $found == 0 ]] && printf '%s\n' "${alternatives[0]}"
    done
}

wrk_download() {
  # wrk_download DIR [APT_OPTIONS]: wrk's .deb and those of the libraries it lacks into DIR
  local dir=$1; shift
  local version pkgs
  version=$(apt-cache "$@" policy wrk 2>/dev/null | awk '$1 == "Candidate:" {print $2}')
  [[ -n "$version" && "$version" != "(none)" ]] || return 1
  mapfile -t pkgs < <(wrk_missing_deps "$@")
  (cd "$dir" && apt-get "$@" download -qq wrk "${pkgs[@]}" >/dev/null) || return 1
  log "wrk: downloaded Debian's wrk $version ${pkgs[*]}"
  printf '%s' "wrk $version" >"$dir/.stamp"
}

install_wrk_unprivileged() {
  local dir="$cache/wrk" bin="$cache/bin"
  if [[ -f "$dir/.stamp" ]] && wrk_runs "$bin/wrk"; then
    log "wrk: up to date ($bin/wrk, $(cat "$dir/.stamp"))"; return
  fi
  command -v apt-get >/dev/null && command -v dpkg-deb >/dev/null || return 1
  local work; work=$(mktemp -d)
  if ! wrk_download "$work" 2>/dev/null; then
    # no usable system package lists (a fresh container): fetch private ones into the cache;
    # apt-get update into a directory we own needs no root
    log "wrk: the system's package lists cannot fetch wrk; updating private lists in $cache/apt"
    mkdir -p "$cache/apt/lists/partial" "$cache/apt/cache/archives/partial"
    if ! apt-get "${wrk_private_apt[@]}" update -qq >/dev/null ||
      ! wrk_download "$work" "${wrk_private_apt[@]}"; then
      rm -rf "$work" "$cache/apt"; return 1
    fi
    rm -rf "$cache/apt"
  fi
  rm -rf "$dir.tmp" && mkdir -p "$dir.tmp"
  local deb
  for deb in "$work"/*.deb; do dpkg-deb -x "$deb" "$dir.tmp"; done
  mv "$work/.stamp" "$dir.tmp/.stamp"
  rm -rf "$work"
  [[ -x "$dir.tmp/usr/bin/wrk" ]] || die "wrk: usr/bin/wrk missing from Debian's package"
  # the directories of the unpacked libraries, as the wrapper names them
  local libs
  libs=$(cd "$dir.tmp" && find . -name 'lib*.so*' -printf '%h\n' | sed 's|^\./|$root/|' | sort -u |
    paste -sd: -)
  rm -rf "$dir" && mv "$dir.tmp" "$dir"
  mkdir -p "$bin"
  {
    printf '#!/bin/sh\n'
    printf '# %s from Debian, unpacked into ../wrk by scripts/install-deps.sh\n' "$(cat "$dir/.stamp")"
    printf 'root="$(cd "$(dirname "$0")/../wrk" && pwd)"\n'
    printf 'LD_LIBRARY_PATH="%s${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" exec "$root/usr/bin/wrk" "$@"\n' \
      "$libs"
  } >"$bin/wrk"
  chmod +x "$bin/wrk"
  wrk_runs "$bin/wrk" || die "wrk: $bin/wrk does not run: $("$bin/wrk" -v 2>&1 | head -3)"
  log "wrk: $bin/wrk"
}

install_wrk() {
  if command -v wrk >/dev/null; then log "wrk: present ($(command -v wrk))"; return; fi
  if is_root; then
    apt_install wrk && { log "wrk: installed from Debian"; return; }
  else
    install_wrk_unprivileged && return
  fi
  log "wrk: not installed (needs Debian's apt-get and dpkg-deb); bench/webhook_ingest.py will say so"
}

go_used=0
install_spark_jars
install_kafka
go_install versitygw github.com/versity/versitygw/cmd/versitygw "$VERSITYGW_VERSION"
go_install supercronic github.com/aptible/supercronic "$SUPERCRONIC_VERSION"
install_chromium
install_wrk

# The maven repo and Go caches are only build inputs: the copies above are what runs.
rm -rf "$m2"
if [[ $go_used == 1 || -d "$cache/go" ]]; then
  chmod -R u+w "$cache/go" 2>/dev/null || true
  rm -rf "$cache/go"
fi

# ---------------------------------------------------------------- summary
log "cache: $cache"
printf '  %-22s %6s  %s\n' "piece" "size" "contents"
printf '  %-22s %6s  %s\n' "jars/spark" "$(du -sh "$cache/jars/spark" | cut -f1)" \
  "$(ls "$cache/jars/spark" | wc -l) jars: $(cat "$cache/jars/spark/.stamp")"
printf '  %-22s %6s  %s\n' "kafka/libs" "$(du -sh "$cache/kafka" | cut -f1)" \
  "$(ls "$cache/kafka/libs" | wc -l) jars: $(cat "$cache/kafka/.stamp")"
for name in versitygw supercronic; do
  printf '  %-22s %6s  %s\n' "bin/$name" "$(du -sh "$cache/bin/$name" | cut -f1)" "$(cat "$cache/bin/.$name.version")"
done
printf '  %-22s %6s  %s\n' "chromium" "-" "$(command -v chromium || echo 'not installed')"
if [[ -x "$cache/bin/wrk" ]]; then
  printf '  %-22s %6s  %s\n' "bin/wrk" "$(du -sh "$cache/wrk" | cut -f1)" "$(cat "$cache/wrk/.stamp")"
else
  printf '  %-22s %6s  %s\n' "wrk" "-" "$(command -v wrk || echo 'not installed')"
fi
log "done in $(( $(date +%s) - started )) s"
