#!/usr/bin/env bash
# Build the three images with buildah and run each one the way a cluster would: what CI runs
# after the tests (.ci/run). No Docker daemon and no Docker Hub: the base is Debian bookworm
# with its Python 3.11, made here by debootstrap (the same Debian and Python minor version as
# python:3.11.11-slim-bookworm) and cached, keyed by a hash of what goes into it.
#
#   bash images/check.sh          # as root; installs buildah, podman, runc, debootstrap with apt
#
# Checks: the operator image starts `litelong-operator --help`; the worker image runs the
# quickstart's BM25Index and SynthesisRun stages exactly as the operator's rendered pod does
# (images/podman_pod.py: UID 10001, read-only root filesystem, only the store and /tmp
# writable, no network) and commits both; the trainer image imports litelong.train on the CPU
# torch 2.13.0, which stands in for the CUDA base (no GPU and no CUDA download in CI).
#
# Environment: LITELONG_IMAGES_CACHE (default /var/cache/litelong-images: the containers storage,
# so the base and buildah's layer cache survive between runs), LITELONG_IMAGES_DRIVER (overlay;
# vfs where overlay cannot mount), LITELONG_TORCH_WHEEL (default: the CPU wheel in /opt/wheels;
# without one the trainer is skipped, with the reason), DEBIAN_MIRROR.
#
# Measured on a two-core machine: 9 to 18 minutes cold, with the load (no cache: debootstrap 2,
# the torch base 1, builds 6 at best), 3 minutes with the cache after a change to litelong's
# sources, 1.2 minutes with nothing changed.
set -euo pipefail
cd "$(dirname "$0")/.."

CACHE=${LITELONG_IMAGES_CACHE:-/var/cache/litelong-images}
DRIVER=${LITELONG_IMAGES_DRIVER:-overlay}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
TORCH=2.13.0
BASE_PACKAGES=python3,python3-venv,python3-pip,python-is-python3,ca-certificates
TOOLS=(buildah podman runc debootstrap)

skip() {
    echo "SKIP images: $*"
    exit 0
}
step() { echo "-- $* ($((SECONDS - started))s)"; }
started=$SECONDS

[[ $EUID -eq 0 ]] || skip "needs root (debootstrap, buildah --isolation chroot); run as root"
missing=()
for tool in "${TOOLS[@]}"; do command -v "$tool" >/dev/null || missing+=("$tool"); done
if ((${#missing[@]})); then
    command -v apt-get >/dev/null || skip "${missing[*]} missing and no apt-get to install them"
    step "installing ${missing[*]} with apt-get"
    apt_log=$(mktemp)
    { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
        "${TOOLS[@]}"; } >"$apt_log" 2>&1 ||
        skip "apt-get could not install ${missing[*]} (its output: $apt_log)"
fi
python -c "import litelong_operator" 2>/dev/null ||
    { echo "images: the checkout's litelong is not importable (pip install -e '.[dev]')" >&2 && exit 1; }

export BUILDAH_ISOLATION=chroot
STORAGE=(--root "$CACHE/storage" --runroot /run/litelong-images --storage-driver "$DRIVER")
buildah() { command buildah "${STORAGE[@]}" "$@"; }
podman() { command podman "${STORAGE[@]}" "$@"; }
# runc, not crun: crun refuses the hybrid cgroups of hosts like CI's. The open-files limit is the
# host's own: podman's default (1048576) is more than such a host lets a container set.
run() { podman --runtime runc run --ulimit "nofile=$(ulimit -Hn):$(ulimit -Hn)" --ulimit nproc=4096:4096 --rm "$@"; }
# The host's CA bundle, bind-mounted into build steps only (never committed to a layer): where
# the host reaches PyPI through a TLS proxy it trusts, pip inside the build trusts it too.
TRUST=()
[[ -f /etc/ssl/certs/ca-certificates.crt ]] &&
    TRUST=(--volume /etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt:ro)
image_exists() { buildah inspect --type image "$1" >/dev/null 2>&1; }
size() { podman image inspect --format '{{.Size}}' "$1" | awk '{printf "%.0f MB", $1 / 1e6}'; }
mkdir -p "$CACHE"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The base: Debian bookworm minbase plus its python3 (3.11), venv and pip; `python` is python3.
make_base() {
    local rootfs=$work/rootfs container mount
    debootstrap --variant=minbase --include="$BASE_PACKAGES" bookworm "$rootfs" "$MIRROR" >/dev/null
    rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb
    container=$(buildah from scratch)
    mount=$(buildah mount "$container")
    tar -C "$rootfs" -cf - . | tar -C "$mount" -xpf -
    buildah umount "$container" >/dev/null
    buildah config --env LANG=C.UTF-8 --cmd python3 "$container"
    buildah commit --rm -q "$container" "$1" >/dev/null
    rm -rf "$rootfs"
}
key=$({ echo bookworm minbase "$BASE_PACKAGES"; declare -f make_base; } | sha256sum | cut -c1-12)
BASE=localhost/litelong-base:bookworm-$key
if image_exists "$BASE"; then
    step "base $BASE: cached"
else
    step "base $BASE: debootstrap"
    make_base "$BASE"
fi
python_version=$(run --network none "$BASE" python --version)
[[ $python_version == "Python 3.11."* ]] || { echo "images: base has $python_version, not 3.11" >&2 && exit 1; }
echo "base: $python_version, $(size "$BASE")"

# Stand-in for the trainer's CUDA base: the CPU torch wheel on the same base. Never a PyPI
# torch (that is the CUDA build, gigabytes); only a local wheel, so pip fetches nothing but
# torch's own dependencies from PyPI.
wheel=${LITELONG_TORCH_WHEEL:-$(compgen -G "/opt/wheels/torch-$TORCH+cpu-cp311-*.whl" | head -1 || true)}
TORCH_BASE=
if [[ -f $wheel ]]; then
    TORCH_BASE=localhost/litelong-torch-cpu:$TORCH-$(echo "$BASE $(basename "$wheel")" | sha256sum | cut -c1-12)
    if image_exists "$TORCH_BASE"; then
        step "torch base $TORCH_BASE: cached"
    else
        step "torch base $TORCH_BASE: $(basename "$wheel")"
        container=$(buildah from --pull=never "$BASE")
        buildah run "${TRUST[@]}" -v "$(dirname "$wheel"):/wheels:ro" "$container" -- \
            python -m pip install -q --no-cache-dir --break-system-packages \
            --disable-pip-version-check --root-user-action=ignore "/wheels/$(basename "$wheel")"
        buildah commit --rm -q "$container" "$TORCH_BASE" >/dev/null
    fi
fi

build() { # NAME [buildah bud arguments]: the image localhost/litelong-NAME:ci
    local log=$work/$1-build.log
    step "building $1"
    if ! buildah bud --layers --pull=never "${TRUST[@]}" -f "images/$1/Dockerfile" -t "localhost/litelong-$1:ci" "${@:2}" . >"$log" 2>&1; then
        tail -n 40 "$log"
        echo "images: building $1 failed" >&2
        exit 1
    fi
    echo "$1: $(size "localhost/litelong-$1:ci") ($(grep -c 'Using cache' "$log" || true) steps from the layer cache)"
}

build operator --build-arg "PYTHON_IMAGE=$BASE"
run --network none --read-only --read-only-tmpfs=false localhost/litelong-operator:ci --help >"$work/operator-help"
grep -q -- "--all-namespaces" "$work/operator-help" || { cat "$work/operator-help" && exit 1; }
echo "operator: litelong-operator --help runs"

build worker --build-arg "PYTHON_IMAGE=$BASE"
WORKER=localhost/litelong-worker:ci
store=$work/store
mkdir "$store"
# The SynthesisRun reads topics from a committed TopicDebate; the debate itself (the embedded
# LLM, minutes on two cores) is not the worker image's to prove here, so topics are committed
# as the debate stage would leave them.
python - "$store" <<'EOF'
import json, sys
from litelong.store import ArtifactStore

debate = ArtifactStore(f"file://{sys.argv[1]}").artifact("TopicDebate", "science", "000000000000")
rows = [("SCI004000", "Science", "Black holes", "Black holes astronomy"),
        ("HIS037000", "History", "The French Revolution", "French Revolution history")]
with debate.staging(0, 1) as folder:
    records = [{"subject_code": c, "heading": h, "subject": h, "topic": t, "query": q} for c, h, t, q in rows]
    (folder / "topics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    debate.commit_part(0, 1, folder, counts={"topics": len(records)})
debate.commit({}, 1)
EOF
for kind in BM25Index SynthesisRun; do
    step "worker: $kind stage, as the operator's rendered pod runs it"
    args=$(python images/podman_pod.py --image "$WORKER" --store "$store" --work "$work/$kind" \
        "manifests/samples/${kind,,}.yaml" "$kind")
    mapfile -t args <<<"$args"
    run "${args[@]}"
done
python - "$store" <<'EOF'
import sys
from litelong.store import ArtifactStore

store = ArtifactStore(f"file://{sys.argv[1]}")
for kind, name in (("BM25Index", "wiki-sample"), ("SynthesisRun", "science-16k")):
    counts = store.latest_committed(kind, name).committed_manifest().counts
    print(f"worker: {kind}/{name} committed {counts}")
EOF
# The case that must fail: the same flags really make the root filesystem read-only.
if run --network none --user 10001:10001 --read-only --read-only-tmpfs=false --entrypoint python \
    "$WORKER" -c "open('/opt/litelong/written', 'w')" 2>/dev/null; then
    echo "images: the worker's root filesystem was writable under --read-only" >&2
    exit 1
fi
echo "worker: root filesystem read-only (a write to /opt/litelong failed, as it must)"

if [[ -z $TORCH_BASE ]]; then
    echo "SKIP trainer: no CPU torch $TORCH wheel (set LITELONG_TORCH_WHEEL); PyPI's torch is the CUDA build"
else
    build trainer --build-arg "TORCH_IMAGE=$TORCH_BASE"
    TRAINER=localhost/litelong-trainer:ci
    run --network none "$TRAINER" >/dev/null # the image's default: torchrun --help
    # What the rendered PyTorchJob runs (torchrun -m litelong train), on one process.
    run --network none --read-only --read-only-tmpfs=false --tmpfs /tmp "$TRAINER" --nproc-per-node 1 \
        -m litelong train --help >"$work/torchrun.log" 2>&1 || { cat "$work/torchrun.log" && exit 1; }
    imported=$(run --network none --read-only --read-only-tmpfs=false --entrypoint python \
        "$TRAINER" -c 'import litelong.train, torch; print("torch", torch.__version__)')
    echo "trainer (CPU torch standing in for CUDA): litelong.train imports on $imported;" \
        "torchrun -m litelong train runs"
fi

podman image prune -f --filter until=168h >/dev/null # old layers; this week's stay as the cache
step "images checked"
