#!/usr/bin/env bash
# Prepare a daemonless image builder (buildah/podman) on a Debian machine without a Docker
# engine and, when no container registry is reachable, a local stand-in for the official
# python:<ver>-slim base image. Idempotent: a second run only checks.
#
# Usage: .ci/container-setup.sh [python_version ...]     (default: 3.12)
# Prints `export NAME=value` lines on stdout (eval them); progress goes to stderr.
# Background: docs/image.md and ../shared/notes/container-builds.md.
set -euo pipefail

DIR="${SLIPWAY_CONTAINERS_DIR:-/var/tmp/slipway-containers}"
SUITE="${SLIPWAY_BASE_SUITE:-bookworm}"
MIRROR="${SLIPWAY_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
# pull | local | auto (try the registry briefly, fall back to a local stand-in)
BASE_MODE="${SLIPWAY_BASE_IMAGE_MODE:-auto}"
VERSIONS=("$@")
[ ${#VERSIONS[@]} -gt 0 ] || VERSIONS=(3.12)

log() { echo "container-setup: $*" >&2; }

# One setup at a time: parallel test workers would run apt and debootstrap into the same place.
mkdir -p "$DIR"
exec 9>"$DIR/.setup.lock"
flock 9

need=()
for tool in buildah podman runc debootstrap; do
  command -v "$tool" >/dev/null 2>&1 || need+=("$tool")
done
if [ ${#need[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] || { log "need root to install ${need[*]}"; exit 1; }
  log "installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y --no-install-recommends "${need[@]}" >&2 \
    || { apt-get update >&2 && apt-get install -y --no-install-recommends "${need[@]}" >&2; }
fi

mkdir -p "$DIR/storage" "$DIR/run" "$DIR/tmp"
# podman's default limits fail without CAP_SYS_RESOURCE; use the hard limit we actually have.
nofile="$(ulimit -Hn)"
[ "$nofile" = unlimited ] && nofile=1048576
cat >"$DIR/containers.conf.new" <<EOF
[containers]
default_ulimits = ["nofile=${nofile}:${nofile}", "nproc=32768:32768"]
log_driver = "k8s-file"

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
tmp_dir = "$DIR/tmp"
EOF
cat >"$DIR/storage.conf.new" <<EOF
[storage]
driver = "overlay"
graphroot = "$DIR/storage"
runroot = "$DIR/run"
EOF
for f in containers.conf storage.conf; do
  if cmp -s "$DIR/$f.new" "$DIR/$f"; then rm "$DIR/$f.new"; else mv "$DIR/$f.new" "$DIR/$f"; fi
done
cat >"$DIR/env.sh" <<EOF
export CONTAINERS_CONF=$DIR/containers.conf
export CONTAINERS_STORAGE_CONF=$DIR/storage.conf
export BUILDAH_ISOLATION=chroot
EOF
# shellcheck source=/dev/null
. "$DIR/env.sh"

# Debian minbase + the shared libraries CPython's extension modules link against, like the
# official slim image (which also ships ca-certificates, netbase and tzdata).
make_rootfs() {
  local root="$DIR/rootfs-$SUITE"
  [ -f "$root/.complete" ] && return 0
  rm -rf "$root"
  log "debootstrap $SUITE (once, ~40 s)"
  debootstrap --variant=minbase \
    --include=ca-certificates,netbase,tzdata,libssl3,libffi8,libsqlite3-0,libbz2-1.0,liblzma5,zlib1g,libreadline8,libncursesw6,libexpat1,libuuid1,libcrypt1,libnsl2,libtirpc3,libgdbm6 \
    "$SUITE" "$root" "$MIRROR" >"$DIR/debootstrap.log" 2>&1 \
    || { tail -20 "$DIR/debootstrap.log" >&2; exit 1; }
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* \
    "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* \
    "$root"/usr/share/locale/*
  touch "$root/.complete"
}

# CPython for the stand-in: the machine's own build (pyenv) copied to /usr/local, trimmed the
# way the official image is (no test suite, idle, tkinter, static lib; only pip in site-packages).
find_cpython() {
  # A self-contained CPython prefix (pyenv, GitHub's tool cache, /usr/local); not a distro
  # python under /usr, whose stdlib and pip are split across directories.
  local ver="$1" exe prefix
  for exe in "$(pyenv root 2>/dev/null || echo /nonexistent)/versions/$ver"*/bin/python"$ver" \
             "${RUNNER_TOOL_CACHE:-/opt/hostedtoolcache}/Python/$ver"*/x64/bin/python"$ver" \
             /usr/local/bin/python"$ver" "$(command -v python"$ver" || true)"; do
    [ -x "$exe" ] || continue
    prefix="$("$exe" -c 'import sys; print(sys.base_prefix)' 2>/dev/null)" || continue
    [ "$prefix" != /usr ] && [ -f "$prefix/lib/python$ver/os.py" ] \
      && ls "$prefix/lib/python$ver/site-packages"/pip >/dev/null 2>&1 \
      && { echo "$prefix"; return 0; }
  done
  return 1
}

make_standin() {
  local ver="$1" tag="$2" src root work full
  src="$(find_cpython "$ver")" || { log "no local CPython $ver to build $tag from"; exit 1; }
  full="$("$src/bin/python$ver" -c 'import platform; print(platform.python_version())')"
  make_rootfs
  work="$(mktemp -d "$DIR/tmp/standin.XXXXXX")"
  root="$work/rootfs"
  log "creating stand-in $tag from $SUITE + CPython $full ($src)"
  cp -a "$DIR/rootfs-$SUITE" "$root"
  rm -f "$root/.complete"
  mkdir -p "$root/usr/local/bin" "$root/usr/local/lib"
  cp -a "$src/bin/python$ver" "$root/usr/local/bin/"
  cp -a "$src"/lib/libpython"$ver"*.so* "$root/usr/local/lib/" 2>/dev/null || true
  tar -C "$src/lib" -c \
    --exclude="python$ver/test" --exclude="python$ver/idlelib" --exclude="python$ver/tkinter" \
    --exclude="python$ver/turtledemo" --exclude="python$ver/ensurepip/_bundled" \
    --exclude="python$ver/config-*/*.a" --exclude="python$ver/site-packages" \
    --exclude='__pycache__' "python$ver" | tar -C "$root/usr/local/lib" -x
  mkdir -p "$root/usr/local/lib/python$ver/site-packages"
  cp -a "$src/lib/python$ver/site-packages"/pip "$src/lib/python$ver/site-packages"/pip-*.dist-info \
    "$root/usr/local/lib/python$ver/site-packages/"
  ln -sf "python$ver" "$root/usr/local/bin/python3"
  ln -sf "python$ver" "$root/usr/local/bin/python"
  for p in pip pip3 "pip$ver"; do
    printf '#!/usr/local/bin/python%s\nimport sys\nfrom pip._internal.cli.main import main\nsys.exit(main())\n' \
      "$ver" >"$root/usr/local/bin/$p"
    chmod 755 "$root/usr/local/bin/$p"
  done
  # The official image ships stripped binaries; pyenv builds keep debug symbols (+40 MB).
  if command -v strip >/dev/null; then
    find "$root/usr/local" -name '*.so*' -type f -exec strip --strip-unneeded {} + 2>/dev/null || true
    strip --strip-unneeded "$root/usr/local/bin/python$ver" 2>/dev/null || true
  fi
  chroot "$root" /sbin/ldconfig
  chroot "$root" /usr/local/bin/python3 -c 'import ssl, sqlite3, ctypes, lzma, bz2, zlib, venv' \
    || { log "CPython does not import its extension modules in the rootfs"; exit 1; }
  tar -C "$root" --exclude=./proc --exclude=./sys --exclude=./dev -c . | podman import \
    --change 'ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change "ENV PYTHON_VERSION=$full" \
    --change 'LABEL org.slipway.standin=true' \
    --change 'CMD ["python3"]' \
    - "$tag" >&2
  rm -rf "$work"
}

for ver in "${VERSIONS[@]}"; do
  tag="docker.io/library/python:${ver}-slim"
  if podman image exists "$tag"; then
    log "$tag present"
    continue
  fi
  if [ "$BASE_MODE" != local ] && timeout 60 podman pull -q "$tag" >/dev/null 2>&1; then
    log "$tag pulled"
    continue
  fi
  [ "$BASE_MODE" = pull ] && { log "cannot pull $tag"; exit 1; }
  make_standin "$ver" "$tag"
done

cat "$DIR/env.sh"
