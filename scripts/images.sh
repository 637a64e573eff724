#!/usr/bin/env bash
# Build and test the runtime images (Dockerfile.python, Dockerfile.nodejs, Dockerfile.php).
#
#   scripts/images.sh build [python|nodejs|php|all]   build images actionloop-<runtime>:latest
#   scripts/images.sh smoke [python|nodejs|php|all]   build, then the quick end-to-end cases of
#                                                      tests/e2e (a hello action, started as the
#                                                      invoker starts it, logs under both rules)
#   scripts/images.sh e2e [python|nodejs|php|all]     build, then the whole end-to-end suite of
#                                                      tests/e2e and the deploy/runtimes.json check
#   scripts/images.sh dropin                          build the Python image, then a copy of the
#                                                      OpenServerless python v3.12 image with it as
#                                                      /bin/proxy (deploy/dropin/), and smoke-test it
#   scripts/images.sh standins                        only build the local base-image stand-ins
#   scripts/images.sh names [python|nodejs|php|all]   print the image names a build makes
#   scripts/images.sh sizes                           list the images and their sizes
#   scripts/images.sh clean                           remove the runtime images and dangling layers
#
# Engine: Docker when its engine answers, else podman; scripts/engine.sh documents ENGINE,
# PODMAN_FLAGS, PODMAN_LIMITS and BUILD_CA_BUNDLE. Where podman cannot pull the official base
# images, LOCAL STAND-INS of them are built first from Debian packages: scripts/standins.sh
# (build-machine tooling, documented there; STANDINS=auto|never|rebuild, DEBIAN_MIRROR).
#
# Other settings: RUST_IMAGE, PYTHON_IMAGE, NODE_IMAGE, PHP_IMAGE, COMPOSER_IMAGE (the build
# arguments; defaults read from the Dockerfiles), IMAGE_PREFIX (default actionloop), IMAGE_TAG
# (default latest), SKIP_BUILD=1 (smoke, e2e, dropin: test the images already built, build
# nothing), E2E_ARGS (more arguments for tests/e2e/run.py, e.g. "--only hello,oom"), PYTHON
# (the interpreter for tests/e2e, default python3).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
# shellcheck source=scripts/engine.sh
source "$ROOT/scripts/engine.sh"
# shellcheck source=scripts/standins.sh
source "$ROOT/scripts/standins.sh"

RUNTIMES=(python nodejs php)
# The drop-in proof: an official image's layout with actionloop as /bin/proxy. Its build context
# is the upstream image folder in the shared reference runtimes (REFERENCE_RUNTIMES).
REFERENCE_RUNTIMES=${REFERENCE_RUNTIMES:-$ROOT/../shared/reference-runtimes}
DROPIN_CONTEXT=$REFERENCE_RUNTIMES/openserverless-runtimes/python/v3.12
IMAGE_PREFIX=${IMAGE_PREFIX:-actionloop}
IMAGE_TAG=${IMAGE_TAG:-latest}
SKIP_BUILD=${SKIP_BUILD:-}
PYTHON=${PYTHON:-python3}
LOG_DIR=${LOG_DIR:-${TMPDIR:-/tmp}/actionloop-images}
mkdir -p "$LOG_DIR"
export IMAGE_PREFIX IMAGE_TAG

# ---------------------------------------------------------------- build

image_name() { echo "$IMAGE_PREFIX-$1:$IMAGE_TAG"; }

declare -A BUILD_SECS=()
build_one() {
    local rt=$1 t0 img
    img=$(image_name "$rt")
    t0=$(now)
    log "building $img ($ENGINE)"
    local args=(--build-arg "RUST_IMAGE=$RUST_IMAGE")
    case $rt in
    python) args+=(--build-arg "PYTHON_IMAGE=$PYTHON_IMAGE") ;;
    nodejs) args+=(--build-arg "NODE_IMAGE=$NODE_IMAGE") ;;
    php) args+=(--build-arg "PHP_IMAGE=$PHP_IMAGE" --build-arg "COMPOSER_IMAGE=$COMPOSER_IMAGE") ;;
    esac
    local logf="$LOG_DIR/build-$rt.log" file="Dockerfile.$rt" context=.
    if [[ $rt == dropin-python ]]; then
        file=deploy/dropin/Dockerfile.openserverless-python
        context=$DROPIN_CONTEXT
        args=(--build-arg "PYTHON_IMAGE=$PYTHON_IMAGE" --build-arg "PROXY_IMAGE=$(image_name python)")
    fi
    if ! eng build "${BUILD_FLAGS[@]}" "${args[@]}" -f "$file" -t "$img" "$context" >"$logf" 2>&1; then
        tail -n 40 "$logf" >&2
        die "building $img failed (full log: $logf)"
    fi
    # Say whether the proxy was compiled in this build or came from the layer cache.
    if grep -q 'Finished `release`' "$logf"; then
        log "  (compiled the proxy; build log: $logf)"
    else
        log "  (proxy from the layer cache; build log: $logf)"
    fi
    BUILD_SECS[$rt]=$(($(now) - t0))
    log "built $img: $(human "$(image_size "$img")") in ${BUILD_SECS[$rt]} s"
}

build_images() {
    local rt
    if [[ -n $SKIP_BUILD ]]; then
        for rt in "$@"; do
            image_exists "$(image_name "$rt")" || die "SKIP_BUILD is set but $(image_name "$rt") is not built"
        done
        log "SKIP_BUILD: testing the images already built"
        return 0
    fi
    ensure_base_images "$@"
    for rt in "$@"; do build_one "$rt"; done
}

# ---------------------------------------------------------------- tests (tests/e2e)

# e2e_run SUITE RUNTIME...: the end-to-end harness against the images of those runtimes.
e2e_run() {
    local suite=$1
    shift
    command -v "$PYTHON" >/dev/null || die "$PYTHON is needed for tests/e2e"
    local extra=()
    [[ -n ${E2E_ARGS:-} ]] && read -r -a extra <<<"$E2E_ARGS"
    "$PYTHON" "$ROOT/tests/e2e/run.py" --suite "$suite" "${extra[@]}" "$@"
}

summary() {
    local rt img
    echo
    echo "Runtime images ($ENGINE):"
    printf '  %-34s %10s  %s\n' IMAGE SIZE BUILD
    for rt in "$@"; do
        img=$(image_name "$rt")
        printf '  %-34s %10s  %s\n' "$img" "$(human "$(image_size "$img")")" \
            "${BUILD_SECS[$rt]:+built in ${BUILD_SECS[$rt]} s}"
    done
    if ((${#STANDINS_USED[@]})); then
        echo "Base images were LOCAL STAND-INS (Debian packages / this machine's Rust toolchain),"
        echo "not the official images: ${STANDINS_USED[*]}"
        ((${#STANDINS_BUILT[@]})) && echo "  (built in this run: ${STANDINS_BUILT[*]})"
    fi
    return 0
}

show_sizes() {
    local rt img
    for rt in "${RUNTIMES[@]}" dropin-python; do
        img=$(image_name "$rt")
        image_exists "$img" || continue
        printf '%-44s %s\n' "$img" "$(human "$(image_size "$img")")"
    done
    if [[ $ENGINE == podman ]]; then
        local ref name
        for name in "$RUST_IMAGE" "$PYTHON_IMAGE" "$NODE_IMAGE" "$PHP_IMAGE" "$COMPOSER_IMAGE" "$STANDIN_BASE"; do
            ref=$(qualify "$name")
            if image_exists "$ref" && [[ -n $(image_label "$ref" actionloop.standin) ]]; then
                printf '%-44s %s  (local stand-in)\n' "$ref" "$(human "$(image_size "$ref")")"
            fi
        done
    fi
}

# ---------------------------------------------------------------- main

select_runtimes() {
    local which=${1:-all}
    case $which in
    all) echo "${RUNTIMES[@]}" ;;
    python | nodejs | php) echo "$which" ;;
    *) die "unknown runtime '$which' (python, nodejs, php or all)" ;;
    esac
}

# build, then SUITE (smoke or full) against RUNTIME...; the harness prints each case.
build_and_test() {
    local suite=$1 status=0
    shift
    T0=$(now)
    build_images "$@"
    e2e_run "$suite" "$@" || status=$?
    summary "$@"
    echo "done in $(($(now) - T0)) s"
    return "$status"
}

cmd=${1:-}
shift || true
case $cmd in
build)
    engine_setup
    read -r -a rts <<<"$(select_runtimes "${1:-all}")"
    T0=$(now)
    build_images "${rts[@]}"
    summary "${rts[@]}"
    echo "done in $(($(now) - T0)) s"
    ;;
smoke | e2e)
    engine_setup
    read -r -a rts <<<"$(select_runtimes "${1:-all}")"
    suite=smoke
    [[ $cmd == e2e ]] && suite=full
    build_and_test "$suite" "${rts[@]}"
    ;;
dropin)
    engine_setup
    [[ -d $DROPIN_CONTEXT ]] || die "the reference runtimes are not at $REFERENCE_RUNTIMES (set REFERENCE_RUNTIMES)"
    T0=$(now)
    build_images python
    [[ -n $SKIP_BUILD ]] || build_one dropin-python
    status=0
    e2e_run smoke dropin-python || status=$?
    summary dropin-python
    echo "done in $(($(now) - T0)) s"
    exit "$status"
    ;;
standins)
    engine_setup
    [[ $ENGINE == podman ]] || die "stand-ins are only for podman; with Docker the official images are pulled"
    ensure_base_images "${RUNTIMES[@]}"
    echo "stand-ins in use: ${STANDINS_USED[*]:-none}"
    ;;
names)
    for rt in $(select_runtimes "${1:-all}"); do image_name "$rt"; done
    ;;
sizes)
    engine_setup
    show_sizes
    ;;
clean)
    engine_setup
    for rt in "${RUNTIMES[@]}"; do eng rmi -f "$(image_name "$rt")" >/dev/null 2>&1 || true; done
    eng image prune -f >/dev/null
    echo "removed the runtime images and dangling layers (stand-ins kept; remove them with $ENGINE rmi)"
    ;;
*)
    sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'
    [[ -z $cmd || $cmd == help || $cmd == -h || $cmd == --help ]] || exit 2
    ;;
esac
