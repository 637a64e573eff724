# shellcheck shell=bash
# Sourced by scripts/images.sh and scripts/standins.sh: the container engine and its flags, and
# small helpers about images. Nothing here builds or runs anything by itself.
#
# Engine: Docker when its engine answers (`docker info`), else podman. ENGINE=docker|podman forces.
# With podman, global flags and run/build flags default to what works on a host with hybrid
# cgroups and fixed ulimits (crun refuses those cgroups; the default ulimits cannot be raised):
#   PODMAN_FLAGS     default: --runtime runc --cgroup-manager cgroupfs
#   PODMAN_LIMITS    default: --ulimit nofile=1024:1024 --ulimit nproc=1000:1000
# BUILD_CA_BUNDLE (podman only): a CA bundle mounted read-only at
# /etc/ssl/certs/ca-certificates.crt during builds, for hosts that reach the registries through a
# TLS-inspecting proxy; default: the host's own bundle when it has local CAs, "none" disables.

log() { printf '==> %s\n' "$*" >&2; }
die() {
    printf '%s: error: %s\n' "$(basename "$0")" "$*" >&2
    exit 1
}
now() { date +%s; }
human() { awk -v b="$1" 'BEGIN { split("B KB MB GB", u); i = 1; while (b >= 1000 && i < 4) { b /= 1000; i++ } printf (i == 1 ? "%d %s" : "%.1f %s"), b, u[i] }'; }

PODMAN_FLAGS=${PODMAN_FLAGS---runtime runc --cgroup-manager cgroupfs}
PODMAN_LIMITS=${PODMAN_LIMITS---ulimit nofile=1024:1024 --ulimit nproc=1000:1000}

# engine_setup: picks the engine and sets ENGINE, ENGINE_CMD, BASE_BUILD_FLAGS (limits and
# network), BUILD_FLAGS (those plus the CA mount) and RUN_FLAGS. Commands that only print names
# do not call it, so they work on a machine without any engine.
engine_setup() {
    ENGINE=${ENGINE:-}
    if [[ -z $ENGINE ]]; then
        if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
            ENGINE=docker
        elif command -v podman >/dev/null 2>&1; then
            ENGINE=podman
        else
            die "neither a working Docker engine nor podman found (apt-get install podman runc debootstrap)"
        fi
    fi
    case $ENGINE in
    docker)
        ENGINE_CMD=(docker)
        BASE_BUILD_FLAGS=()
        BUILD_FLAGS=()
        RUN_FLAGS=()
        ;;
    podman)
        local pf pl
        read -r -a pf <<<"$PODMAN_FLAGS"
        read -r -a pl <<<"$PODMAN_LIMITS"
        ENGINE_CMD=(podman "${pf[@]}")
        BASE_BUILD_FLAGS=("${pl[@]}" --network host)
        BUILD_FLAGS=("${BASE_BUILD_FLAGS[@]}")
        RUN_FLAGS=("${pl[@]}" --network host)
        if [[ -z ${BUILD_CA_BUNDLE:-} ]]; then
            BUILD_CA_BUNDLE=none
            if compgen -G '/usr/local/share/ca-certificates/*.crt' >/dev/null &&
                [[ -f /etc/ssl/certs/ca-certificates.crt ]]; then
                BUILD_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt
            fi
        fi
        if [[ $BUILD_CA_BUNDLE != none ]]; then
            BUILD_FLAGS+=(-v "$BUILD_CA_BUNDLE:/etc/ssl/certs/ca-certificates.crt:ro")
        fi
        ;;
    *) die "ENGINE must be docker or podman, not '$ENGINE'" ;;
    esac
    export ENGINE PODMAN_FLAGS PODMAN_LIMITS
}
eng() { "${ENGINE_CMD[@]}" "$@"; }

image_exists() { eng image inspect "$1" >/dev/null 2>&1; }
image_label() { eng image inspect --format "{{ index .Config.Labels \"$2\" }}" "$1" 2>/dev/null || true; }
image_size() { eng image inspect --format '{{.Size}}' "$1" 2>/dev/null || echo 0; }

# The default of a build argument, read from the Dockerfiles (single source of truth).
arg_default() {
    sed -n "s/^ARG $1=\(.*\)$/\1/p" "$ROOT/Dockerfile.python" "$ROOT/Dockerfile.nodejs" \
        "$ROOT/Dockerfile.php" | awk 'NR == 1'
}
RUST_IMAGE=${RUST_IMAGE:-$(arg_default RUST_IMAGE)}
PYTHON_IMAGE=${PYTHON_IMAGE:-$(arg_default PYTHON_IMAGE)}
NODE_IMAGE=${NODE_IMAGE:-$(arg_default NODE_IMAGE)}
PHP_IMAGE=${PHP_IMAGE:-$(arg_default PHP_IMAGE)}
COMPOSER_IMAGE=${COMPOSER_IMAGE:-$(arg_default COMPOSER_IMAGE)}

# docker.io/library/NAME for an official short name, so podman finds a local image exactly where
# a Dockerfile's FROM NAME looks.
qualify() {
    local ref=$1 first=${1%%/*}
    if [[ $ref != */* ]]; then
        echo "docker.io/library/$ref"
    elif [[ $first == *.* || $first == *:* || $first == localhost ]]; then
        echo "$ref"
    else
        echo "docker.io/$ref"
    fi
}
