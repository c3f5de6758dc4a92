#!/usr/bin/env bash
# Build the triagekit image with podman on a machine without an image registry.
#
#   bash scripts/build_image.sh [TAG]        # default TAG: localhost/triagekit:latest; prints the image size
#
# 1. Base: $TRIAGEKIT_BASE if set; else localhost/triagekit-base:bookworm if it exists (reused: warm builds take
#    seconds); else python:3.11-slim-bookworm if it can be pulled; else a Debian bookworm + python3 root filesystem
#    made with debootstrap from the mirror in apt's sources and imported as localhost/triagekit-base:bookworm.
# 2. `podman build --isolation chroot` of the Containerfile on it, with the machine's CA bundle, pip configuration
#    files and the local package folders they name mounted read-only, so pip inside the build reaches the same
#    index and local wheels as pip here (without the wheel folder, torch==2.13.0 would be the CUDA build).
# Runs under `flock /tmp/triagekit-cpu.lock` (the build is heavy on shared cores); a caller that already holds that
# lock sets TRIAGEKIT_CPU_LOCK_HELD=1 (a second flock on it would wait forever). Needs root, podman, debootstrap.
set -euo pipefail
cd "$(dirname "$0")/.."
LOCK=/tmp/triagekit-cpu.lock
if [ -z "${TRIAGEKIT_CPU_LOCK_HELD:-}" ]; then
  exec env TRIAGEKIT_CPU_LOCK_HELD=1 flock "$LOCK" bash "$0" "$@"
fi
TAG="${1:-localhost/triagekit:latest}"
LOCAL_BASE=localhost/triagekit-base:bookworm
DEPS_TAG=localhost/triagekit-deps:cache
PY=${PYTHON:-python3}
say() { echo "build_image: $*" >&2; }
for tool in podman; do command -v "$tool" >/dev/null || { say "$tool not found: apt-get install -y podman buildah debootstrap"; exit 2; }; done

apt_mirror() {  # the first Debian mirror in apt's sources (deb822 or one-line format)
  local m
  m="$(grep -h -m1 -E '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' | head -n1 || true)"
  [ -n "$m" ] || m="$(grep -h -m1 -E '^deb ' /etc/apt/sources.list 2>/dev/null | awk '{print $2}' | head -n1 || true)"
  echo "${m:-http://deb.debian.org/debian}"
}

make_base() {
  command -v debootstrap >/dev/null || { say "debootstrap not found: apt-get install -y debootstrap"; exit 2; }
  local dir mirror
  dir="$(mktemp -d /tmp/triagekit-rootfs.XXXXXX)"
  mirror="$(apt_mirror)"
  say "debootstrap bookworm (python3, python3-venv) from $mirror into $dir"
  debootstrap --variant=minbase --include=python3,python3-venv bookworm "$dir" "$mirror" >&2
  rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/* "$dir"/usr/share/doc/* "$dir"/usr/share/man/*
  tar -C "$dir" -c . | podman import --change 'CMD ["python3"]' - "$LOCAL_BASE" >&2
  rm -rf "$dir"
}

pick_base() {
  if [ -n "${TRIAGEKIT_BASE:-}" ]; then echo "$TRIAGEKIT_BASE"; return; fi
  if podman image exists "$LOCAL_BASE"; then echo "$LOCAL_BASE"; return; fi
  if timeout 60 podman pull -q docker.io/library/python:3.11-slim-bookworm >&2 2>/dev/null; then
    echo docker.io/library/python:3.11-slim-bookworm; return
  fi
  say "no base image can be pulled; making one with debootstrap (about 70 s)"
  make_base
  echo "$LOCAL_BASE"
}

pip_mounts() {  # -v flags: CA bundle, pip config files, local folders they name (find-links, file:// indexes)
  "$PY" - <<'PYEOF'
import os, re, subprocess
def out(*a):
    try:
        return subprocess.run(["pip", *a], capture_output=True, text=True, check=False).stdout
    except OSError:
        return ""
paths = set(re.findall(r"^\s+(/\S+), exists: True", out("config", "debug"), re.M))
for value in re.findall(r"=\s*'([^']*)'", out("config", "list")) + [os.environ.get(k, "") for k in
        ("PIP_CERT", "PIP_FIND_LINKS", "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_CONSTRAINT")]:
    for item in value.split():
        item = item[len("file://"):] if item.startswith("file://") else item
        if item.startswith("/") and os.path.exists(item):
            # a simple index links its files relative to itself (../../files/...): mount the index's parent
            paths.add(os.path.dirname(item.rstrip("/")) if os.path.basename(item.rstrip("/")) == "simple" else item)
for p in sorted(paths):
    print(f"-v={p}:{p}:ro")
PYEOF
}

start=$(date +%s)
base="$(pick_base)"
mapfile -t mounts < <(pip_mounts)
say "base $base; mounts: ${mounts[*]:-none}"
# TORCH_INDEX empty: pip's own configuration (the mounted wheel folder) supplies the CPU torch wheel.
build=(podman build --isolation chroot --format docker -f Containerfile --build-arg BASE="$base"
       --build-arg TORCH_INDEX="${TRIAGEKIT_TORCH_INDEX:-}" "${mounts[@]}")
# The dependency stage gets a tag of its own: untagged, it is "dangling" (the final image does not descend from it)
# and `podman image prune` would delete the layers that make the next build take seconds instead of minutes.
"${build[@]}" --target deps -t "$DEPS_TAG" . >&2
"${build[@]}" -t "$TAG" . >&2
size=$(podman image inspect "$TAG" --format '{{.Size}}')
say "built $TAG in $(( $(date +%s) - start )) s; size $(( size / 1000000 )) MB"
echo "$TAG $size"
