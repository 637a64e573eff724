#!/usr/bin/env bash
# Build and smoke-test the runtime images (Dockerfile.python, Dockerfile.nodejs, Dockerfile.php).
#
#   scripts/images.sh build [python|nodejs|php|all]   build images actionloop-<runtime>:latest
#   scripts/images.sh smoke [python|nodejs|php|all]   build, then start each image, curl /init
#                                                      and /run of a hello action, check the
#                                                      answers and the sentinel in the logs
#   scripts/images.sh dropin                          build the Python image, then a copy of the
#                                                      OpenServerless python v3.12 image with it as
#                                                      /bin/proxy (deploy/dropin/), and smoke-test it
#   scripts/images.sh standins                        only build the local base-image stand-ins
#   scripts/images.sh sizes                           list the images and their sizes
#   scripts/images.sh clean                           remove the runtime images and dangling layers
#
# Engine: Docker when its engine answers (`docker info`), else podman. ENGINE=docker|podman forces.
# With podman, global flags and run/build flags default to what works on a host with hybrid
# cgroups and fixed ulimits (crun refuses those cgroups; the default ulimits cannot be raised):
#   PODMAN_FLAGS     default: --runtime runc --cgroup-manager cgroupfs
#   PODMAN_LIMITS    default: --ulimit nofile=1024:1024 --ulimit nproc=1000:1000
# Containers use the host network with podman (`--network host`), a published port with Docker.
#
# STAND-INS. The Dockerfiles name official images (rust, python, node, php, composer). Where
# podman cannot pull them (no Docker Hub from this machine), this script builds LOCAL STAND-INS
# tagged with the official names, so that the Dockerfiles build unchanged:
#   - a Debian bookworm base from `debootstrap --variant=minbase`, imported with `podman import`;
#   - python/node/php images: that base plus Debian's python3 + pip, nodejs + npm, php-cli;
#   - the Rust image: that base plus gcc and this machine's own Rust toolchain (`rustc --print
#     sysroot`), since Debian's rustc is too old for the crate;
#   - the Composer image: a one-file image whose /usr/bin/composer runs Debian's composer package
#     (installed in the php stand-in), and a local Composer repository in the php stand-in that
#     serves Debian's Guzzle, because packagist.org cannot be reached from this machine.
# Stand-ins carry the label actionloop.standin=<official name> and are reused while their recipe
# is unchanged (label actionloop.standin.recipe). They are never pushed anywhere.
#   STANDINS=auto    (default) use a local image of that name, else try to pull it, else build
#                    a stand-in
#   STANDINS=never   never build stand-ins (pull failures are errors)
#   STANDINS=rebuild rebuild the stand-ins even when cached
# The Debian mirror for debootstrap and the stand-ins' apt: DEBIAN_MIRROR (default
# http://deb.debian.org/debian).
#
# Other settings: RUST_IMAGE, PYTHON_IMAGE, NODE_IMAGE, PHP_IMAGE, COMPOSER_IMAGE (the build
# arguments; defaults read from the Dockerfiles), IMAGE_PREFIX (default actionloop), IMAGE_TAG
# (default latest), BUILD_CA_BUNDLE (podman only: a CA bundle mounted read-only at
# /etc/ssl/certs/ca-certificates.crt during builds, for hosts that reach the registries through
# a TLS-inspecting proxy; default: the host's own bundle when it has local CAs, "none" disables),
# SMOKE_TIMEOUT (seconds to wait for a container to listen, default 30).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

RUNTIMES=(python nodejs php)
# The drop-in proof: an official image's layout with actionloop as /bin/proxy. Its build context
# is the upstream image folder in the shared reference runtimes (REFERENCE_RUNTIMES).
REFERENCE_RUNTIMES=${REFERENCE_RUNTIMES:-$ROOT/../shared/reference-runtimes}
DROPIN_CONTEXT=$REFERENCE_RUNTIMES/openserverless-runtimes/python/v3.12
IMAGE_PREFIX=${IMAGE_PREFIX:-actionloop}
IMAGE_TAG=${IMAGE_TAG:-latest}
STANDINS=${STANDINS:-auto}
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
SMOKE_TIMEOUT=${SMOKE_TIMEOUT:-30}
SENTINEL=XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX
LOG_DIR=${LOG_DIR:-${TMPDIR:-/tmp}/actionloop-images}
mkdir -p "$LOG_DIR"
STANDIN_BASE=localhost/actionloop-standin-base:bookworm
# Bump when a stand-in recipe changes in a way the recipe hash cannot see.
STANDIN_VERSION=1

log() { printf '==> %s\n' "$*" >&2; }
die() {
    printf 'images.sh: error: %s\n' "$*" >&2
    exit 1
}
now() { date +%s; }

# ---------------------------------------------------------------- engine

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
    BUILD_FLAGS=()
    ;;
podman)
    read -r -a _pf <<<"${PODMAN_FLAGS---runtime runc --cgroup-manager cgroupfs}"
    read -r -a _pl <<<"${PODMAN_LIMITS---ulimit nofile=1024:1024 --ulimit nproc=1000:1000}"
    ENGINE_CMD=(podman "${_pf[@]}")
    BUILD_FLAGS=("${_pl[@]}" --network host)
    # Stand-ins install from Debian over plain http and need no CA mount (it would be in the way
    # of configuring the ca-certificates package).
    STANDIN_BUILD_FLAGS=("${BUILD_FLAGS[@]}")
    RUN_FLAGS=("${_pl[@]}" --network host)
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
eng() { "${ENGINE_CMD[@]}" "$@"; }

image_exists() { eng image inspect "$1" >/dev/null 2>&1; }
image_label() { eng image inspect --format "{{ index .Config.Labels \"$2\" }}" "$1" 2>/dev/null || true; }
image_size() { eng image inspect --format '{{.Size}}' "$1" 2>/dev/null || echo 0; }
human() { awk -v b="$1" 'BEGIN { split("B KB MB GB", u); i = 1; while (b >= 1000 && i < 4) { b /= 1000; i++ } printf (i == 1 ? "%d %s" : "%.1f %s"), b, u[i] }'; }

# The default of a build argument, read from the Dockerfiles (single source of truth).
arg_default() {
    sed -n "s/^ARG $1=\(.*\)$/\1/p" Dockerfile.python Dockerfile.nodejs Dockerfile.php | awk 'NR == 1'
}
RUST_IMAGE=${RUST_IMAGE:-$(arg_default RUST_IMAGE)}
PYTHON_IMAGE=${PYTHON_IMAGE:-$(arg_default PYTHON_IMAGE)}
NODE_IMAGE=${NODE_IMAGE:-$(arg_default NODE_IMAGE)}
PHP_IMAGE=${PHP_IMAGE:-$(arg_default PHP_IMAGE)}
COMPOSER_IMAGE=${COMPOSER_IMAGE:-$(arg_default COMPOSER_IMAGE)}

# docker.io/library/NAME for an official short name, so podman finds the stand-in exactly where a
# Dockerfile's FROM NAME looks.
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

# ---------------------------------------------------------------- stand-ins (podman only)

STANDIN_DIR=""
cleanup_standin_dir() { [[ -n $STANDIN_DIR ]] && rm -rf "$STANDIN_DIR"; }

recipe_hash() { printf '%s\n' "$STANDIN_VERSION" "$@" | sha256sum | cut -c1-16; }

# standin_needed NAME RECIPE_HASH: 0 when NAME must be (re)built as a stand-in.
standin_needed() {
    local name=$1 hash=$2 ref
    ref=$(qualify "$name")
    if image_exists "$ref"; then
        if [[ $(image_label "$ref" actionloop.standin) == "" ]]; then
            return 1 # a real image of that name: use it
        fi
        if [[ $STANDINS != rebuild && $(image_label "$ref" actionloop.standin.recipe) == "$hash" ]]; then
            return 1 # cached stand-in with the same recipe
        fi
        return 0
    fi
    [[ $STANDINS == rebuild ]] && return 0
    log "pulling $ref"
    if eng pull -q "$ref" >/dev/null 2>&1; then
        return 1
    fi
    [[ $STANDINS == never ]] && die "cannot pull $ref and STANDINS=never"
    log "cannot pull $ref: building a LOCAL STAND-IN with that name"
    return 0
}

build_standin_base() {
    local hash=$1
    if image_exists "$STANDIN_BASE" && [[ $STANDINS != rebuild ]] &&
        [[ $(image_label "$STANDIN_BASE" actionloop.standin.recipe) == "$hash" ]]; then
        return 0
    fi
    command -v debootstrap >/dev/null || die "debootstrap is needed to build the stand-ins (apt-get install debootstrap)"
    local t0 root
    t0=$(now)
    root=$(mktemp -d /var/tmp/actionloop-standin-root.XXXXXX)
    log "stand-in base: debootstrap --variant=minbase bookworm (about a minute)"
    if ! debootstrap --variant=minbase --include=ca-certificates bookworm "$root" "$DEBIAN_MIRROR" \
        >"$root.log" 2>&1; then
        tail -n 20 "$root.log" >&2
        rm -rf "$root" "$root.log"
        die "debootstrap failed"
    fi
    cat >"$root/etc/apt/sources.list" <<EOF
deb $DEBIAN_MIRROR bookworm main
deb $DEBIAN_MIRROR bookworm-updates main
deb ${DEBIAN_MIRROR%/debian}/debian-security bookworm-security main
EOF
    # Like Docker's Debian images: no recommends, no docs, small apt caches.
    printf 'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n' \
        >"$root/etc/apt/apt.conf.d/90standin"
    printf 'path-exclude /usr/share/doc/*\npath-exclude /usr/share/man/*\npath-exclude /usr/share/info/*\npath-exclude /usr/share/locale/*\npath-include /usr/share/locale/locale.alias\n' \
        >"$root/etc/dpkg/dpkg.cfg.d/90standin-nodoc"
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/usr/share/doc/* \
        "$root"/usr/share/man/* "$root/$root.log"
    tar -C "$root" --numeric-owner -c . | eng import --quiet \
        --change 'LABEL actionloop.standin=debian:bookworm' \
        --change "LABEL actionloop.standin.recipe=$hash" \
        --change 'CMD ["/bin/bash"]' \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8' \
        - "$STANDIN_BASE" >/dev/null
    rm -rf "$root" "$root.log"
    log "stand-in base: $STANDIN_BASE in $(($(now) - t0)) s"
}

# build_standin NAME HASH CONTEXT_DIR [extra build flags...]: builds CONTEXT_DIR/Containerfile
# and tags it with the official NAME.
build_standin() {
    local name=$1 hash=$2 ctx=$3 t0 ref
    shift 3
    ref=$(qualify "$name")
    t0=$(now)
    log "stand-in $ref: building"
    eng build "${STANDIN_BUILD_FLAGS[@]}" "$@" --pull=never \
        --label "actionloop.standin=$name" --label "actionloop.standin.recipe=$hash" \
        --label "org.opencontainers.image.description=LOCAL STAND-IN for $name, built by scripts/images.sh from Debian packages; not the official image" \
        -t "$ref" -f "$ctx/Containerfile" "$ctx" >"$ctx/build.log" 2>&1 || {
        tail -n 30 "$ctx/build.log" >&2
        die "building the stand-in $ref failed"
    }
    log "stand-in $ref: $(human "$(image_size "$ref")") in $(($(now) - t0)) s"
}

# The apt-get prelude of every stand-in recipe.
APT_INSTALL='apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq'
APT_CLEAN='apt-get clean && rm -rf /var/lib/apt/lists/*'

recipe_python() {
    cat <<EOF
FROM $STANDIN_BASE
RUN $APT_INSTALL python3 python3-pip python-is-python3 ca-certificates && $APT_CLEAN
# Debian marks its Python as externally managed; the official image does not.
ENV PIP_BREAK_SYSTEM_PACKAGES=1
CMD ["python3"]
EOF
}

recipe_node() {
    cat <<EOF
FROM $STANDIN_BASE
RUN $APT_INSTALL nodejs npm ca-certificates && $APT_CLEAN && npm config --global set update-notifier false
# Node.js ships its own CA list; make it also trust the system bundle (and a build's mounted one).
ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt
CMD ["node"]
EOF
}

# Debian's Guzzle 7 and the PSR packages it needs, bundled as one Composer package in a local
# repository, and Composer's global config pointing at it instead of packagist.org.
PHP_LIBS='php-guzzlehttp-guzzle php-guzzlehttp-promises php-guzzlehttp-psr7 php-psr-http-message php-psr-http-client php-psr-http-factory php-getallheaders php-symfony-deprecation-contracts'
recipe_php() {
    cat <<EOF
FROM $STANDIN_BASE
# The official image has no php.ini (PHP's defaults: variables_order EGPCS fills \$_ENV); Debian's
# sets GPCS. Drop it so the stand-in behaves like the official image.
RUN $APT_INSTALL php-cli composer $PHP_LIBS unzip ca-certificates && $APT_CLEAN \\
    && rm -f /etc/php/*/cli/php.ini
ENV COMPOSER_HOME=/usr/local/share/composer-standin
COPY composer-config.json /usr/local/share/composer-standin/config.json
RUN cd /usr/share/php \\
    && tar --exclude='*autoload.php' -cf /usr/local/share/composer-standin/guzzle.tar \\
        GuzzleHttp Psr/Http getallheaders Symfony/Contracts/Deprecation \\
    && v=\$(dpkg-query -W -f='\${Version}' php-guzzlehttp-guzzle | sed 's/-.*//') \\
    && sed -i "s/@GUZZLE_VERSION@/\$v/" /usr/local/share/composer-standin/config.json
CMD ["php", "-a"]
EOF
}
composer_config() {
    cat <<'EOF'
{
    "_comment": "LOCAL STAND-IN: packagist.org is unreachable here; Debian's Guzzle and its PSR dependencies are served as one package",
    "repositories": [
        {"packagist.org": false},
        {
            "type": "package",
            "package": {
                "name": "guzzlehttp/guzzle",
                "version": "@GUZZLE_VERSION@",
                "description": "LOCAL STAND-IN: Debian bookworm's Guzzle with promises, psr7, psr/http-* and getallheaders bundled",
                "dist": {"type": "tar", "url": "/usr/local/share/composer-standin/guzzle.tar"},
                "autoload": {
                    "psr-4": {
                        "GuzzleHttp\\": "GuzzleHttp/",
                        "Psr\\Http\\Message\\": "Psr/Http/Message/",
                        "Psr\\Http\\Client\\": "Psr/Http/Client/"
                    },
                    "files": [
                        "GuzzleHttp/functions_include.php",
                        "GuzzleHttp/Promise/functions_include.php",
                        "getallheaders/getallheaders.php",
                        "Symfony/Contracts/Deprecation/function.php"
                    ]
                }
            }
        }
    ]
}
EOF
}

# The official Composer image's /usr/bin/composer is the composer phar. The stand-in's is a
# wrapper that runs Debian's composer of the php stand-in (the only image it is copied into).
recipe_composer() {
    cat <<'EOF'
FROM scratch
COPY composer /usr/bin/composer
EOF
}
composer_wrapper() {
    cat <<'EOF'
#!/bin/sh
# LOCAL STAND-IN for the official Composer image's /usr/bin/composer: runs Debian's composer
# package, which only the local php stand-in has.
[ -x /usr/bin/composer ] && [ "$0" != /usr/bin/composer ] || {
    echo "composer stand-in: needs Debian's composer in /usr/bin (the php stand-in image)" >&2
    exit 1
}
exec /usr/bin/composer "$@"
EOF
}

recipe_rust() {
    cat <<EOF
FROM $STANDIN_BASE
RUN $APT_INSTALL gcc libc6-dev ca-certificates && $APT_CLEAN
ENV RUSTUP_HOME=/usr/local/rustup CARGO_HOME=/usr/local/cargo \\
    PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
RUN t=/usr/local/rustup/toolchains/host && mkdir -p \$t /usr/local/cargo/bin \\
    && cp -a /mnt/toolchain/bin /mnt/toolchain/lib /mnt/toolchain/libexec /mnt/toolchain/etc \$t/ \\
    && ln -s \$t/bin/* /usr/local/cargo/bin/ \\
    && cargo --version && rustc --version
EOF
}

# Which stand-ins the given runtimes need.
ensure_base_images() {
    [[ $ENGINE == podman ]] || return 0
    local rt need=() hash
    for rt in "$@"; do
        case $rt in
        python) need+=(python) ;;
        nodejs) need+=(node) ;;
        php) need+=(php composer) ;;
        esac
    done
    need+=(rust)
    STANDIN_DIR=$(mktemp -d /var/tmp/actionloop-standins.XXXXXX)
    trap cleanup_standin_dir EXIT

    local base_hash
    base_hash=$(recipe_hash "$DEBIAN_MIRROR" "base")
    local item name ctx sysroot=""
    for item in "${need[@]}"; do
        ctx="$STANDIN_DIR/$item"
        mkdir -p "$ctx"
        local extra=()
        sysroot=""
        case $item in
        python)
            name=$PYTHON_IMAGE
            recipe_python >"$ctx/Containerfile"
            ;;
        node)
            name=$NODE_IMAGE
            recipe_node >"$ctx/Containerfile"
            ;;
        php)
            name=$PHP_IMAGE
            recipe_php >"$ctx/Containerfile"
            composer_config >"$ctx/composer-config.json"
            ;;
        composer)
            name=$COMPOSER_IMAGE
            recipe_composer >"$ctx/Containerfile"
            composer_wrapper >"$ctx/composer"
            chmod 0755 "$ctx/composer"
            ;;
        rust)
            name=$RUST_IMAGE
            command -v rustc >/dev/null || die "the Rust stand-in copies this machine's toolchain, but rustc is not on PATH"
            sysroot=$(rustc --print sysroot)
            recipe_rust >"$ctx/Containerfile"
            extra=(-v "$sysroot:/mnt/toolchain:ro")
            ;;
        esac
        hash=$(recipe_hash "$base_hash" "$(cat "$ctx"/Containerfile "$ctx"/composer* 2>/dev/null)" \
            "${sysroot:+$(rustc --version)}")
        if standin_needed "$name" "$hash"; then
            [[ $item == composer ]] || build_standin_base "$base_hash"
            build_standin "$name" "$hash" "$ctx" "${extra[@]}"
            if [[ $item == rust && $name != *"$(rustc --version | awk '{print $2}' | cut -d. -f1,2)"* ]]; then
                log "note: the stand-in $name holds this machine's $(rustc --version | awk '{print $2}')"
            fi
            STANDINS_BUILT+=("$name")
        fi
        if [[ -n $(image_label "$(qualify "$name")" actionloop.standin) ]]; then
            STANDINS_USED+=("$name")
        fi
    done
}
STANDINS_BUILT=()
STANDINS_USED=()

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
    ensure_base_images "$@"
    local rt
    for rt in "$@"; do build_one "$rt"; done
}

# ---------------------------------------------------------------- smoke test

# A JSON string literal of $1.
json_str() {
    local s=$1
    s=${s//\\/\\\\}
    s=${s//\"/\\\"}
    s=${s//$'\n'/\\n}
    s=${s//$'\t'/\\t}
    s=${s//$'\r'/\\r}
    printf '"%s"' "$s"
}

# Each hello action loads the library its image preinstalls, so /init fails if it is missing.
hello_code() {
    case $1 in
    dropin-python)
        # Through the upstream compile script and launcher, as a user's plain action.
        cat <<'EOF'
def main(args):
    print("smoke: dropin-python action, through the upstream launcher")
    return {"greeting": "Hello " + args.get("name", "stranger")}
EOF
        ;;
    python)
        cat <<'EOF'
import requests  # preinstalled in the image

def main(args):
    print("smoke: python action, requests", requests.__version__)
    return {"greeting": "Hello " + args.get("name", "stranger")}
EOF
        ;;
    nodejs)
        cat <<'EOF'
const openwhisk = require('openwhisk'); // preinstalled in the image

function main(args) {
    console.log('smoke: nodejs action, openwhisk client', typeof openwhisk);
    return { greeting: 'Hello ' + (args.name || 'stranger') };
}
EOF
        ;;
    php)
        cat <<'EOF'
<?php
if (!class_exists('GuzzleHttp\Client')) {
    throw new Exception('GuzzleHttp\Client is not preinstalled');
}

function main(array $args): array
{
    echo "smoke: php action, guzzle ", GuzzleHttp\Client::MAJOR_VERSION, "\n";
    return ["greeting" => "Hello " . ($args["name"] ?? "stranger")];
}
EOF
        ;;
    esac
}

free_port() {
    local p
    for ((p = ${SMOKE_PORT_BASE:-18080}; p < ${SMOKE_PORT_BASE:-18080} + 200; p++)); do
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            echo "$p"
            return 0
        fi
    done
    die "no free port found"
}

# http METHOD URL [BODY]: sets HTTP_STATUS and HTTP_BODY.
http() {
    local out
    out=$(curl -sS -m 30 -X "$1" -H 'Content-Type: application/json' ${3:+--data-binary "$3"} \
        -w '\n%{http_code}' "$2") || {
        HTTP_STATUS=000
        HTTP_BODY=$out
        return 0
    }
    HTTP_STATUS=${out##*$'\n'}
    HTTP_BODY=${out%$'\n'*}
}

SMOKE_CONTAINERS=()
remove_smoke_containers() {
    local c
    for c in "${SMOKE_CONTAINERS[@]}"; do eng rm -f "$c" >/dev/null 2>&1 || true; done
}

declare -A SMOKE_RESULT=() SMOKE_DETAIL=()
# smoke_one RUNTIME: 0 when the image answered /init and /run and logged the sentinels.
smoke_one() {
    local rt=$1 img port name t0
    img=$(image_name "$rt")
    port=$(free_port)
    name="actionloop-smoke-$rt-$$"
    t0=$(now)
    log "smoke $img: starting on port $port"
    eng rm -f "$name" >/dev/null 2>&1 || true
    SMOKE_CONTAINERS+=("$name")
    if [[ $ENGINE == podman ]]; then
        eng run -d --name "$name" "${RUN_FLAGS[@]}" "$img" --port "$port" >/dev/null
    else
        docker run -d --name "$name" -p "127.0.0.1:$port:8080" "$img" >/dev/null
    fi
    local fail=""
    # Wait until it listens: any HTTP answer will do.
    local i up=""
    for ((i = 0; i < SMOKE_TIMEOUT * 5; i++)); do
        if curl -s -o /dev/null -m 2 "http://127.0.0.1:$port/" 2>/dev/null; then
            up=1
            break
        fi
        if [[ $(eng inspect --format '{{.State.Running}}' "$name" 2>/dev/null) != true ]]; then
            break
        fi
        sleep 0.2
    done
    [[ -n $up ]] || fail="container did not listen on $port within ${SMOKE_TIMEOUT}s"

    local user=""
    if [[ -z $fail ]]; then
        user=$(eng exec "$name" id -u 2>/dev/null || echo "?")
        [[ $user != 0 ]] || fail="the proxy runs as root"
    fi
    if [[ -z $fail ]]; then
        local code
        code=$(json_str "$(hello_code "$rt")")
        http POST "http://127.0.0.1:$port/init" "{\"value\":{\"name\":\"hello\",\"main\":\"main\",\"binary\":false,\"code\":$code}}"
        printf '    POST /init -> %s %s\n' "$HTTP_STATUS" "$HTTP_BODY"
        if [[ $HTTP_STATUS != 200 || ! $HTTP_BODY =~ ^[[:space:]]*\{[[:space:]]*\"ok\"[[:space:]]*:[[:space:]]*true[[:space:]]*\}[[:space:]]*$ ]]; then
            fail="/init answered $HTTP_STATUS $HTTP_BODY"
        fi
    fi
    if [[ -z $fail ]]; then
        local who want
        for who in smoke ""; do
            if [[ -n $who ]]; then
                http POST "http://127.0.0.1:$port/run" "{\"value\":{\"name\":\"$who\"},\"activation_id\":\"smoke-$rt\"}"
                want="Hello $who"
            else
                http POST "http://127.0.0.1:$port/run" '{"value":{}}'
                want="Hello stranger"
            fi
            printf '    POST /run  -> %s %s\n' "$HTTP_STATUS" "$HTTP_BODY"
            if [[ $HTTP_STATUS != 200 || ! $HTTP_BODY =~ ^[[:space:]]*\{[[:space:]]*\"greeting\"[[:space:]]*:[[:space:]]*\"$want\"[[:space:]]*\}[[:space:]]*$ ]]; then
                fail="/run answered $HTTP_STATUS $HTTP_BODY, expected {\"greeting\":\"$want\"}"
                break
            fi
        done
    fi
    # Logs: the container's stdout and stderr, apart (docker and podman logs keep the streams).
    local out err logs out_sentinels err_sentinels printed
    sleep 0.3
    out=$(eng logs "$name" 2>/dev/null || true)
    err=$(eng logs "$name" 2>&1 >/dev/null || true)
    logs="$out"$'\n'"$err"
    out_sentinels=$(grep -cx "$SENTINEL" <<<"$out" || true)
    err_sentinels=$(grep -cx "$SENTINEL" <<<"$err" || true)
    printed=$(grep -c "^smoke: $rt action" <<<"$out" || true)
    if [[ -z $fail ]]; then
        # Two activations: one sentinel on stdout and one on stderr each.
        if ((out_sentinels != 2 || err_sentinels != 2)); then
            fail="expected 2 sentinel lines on stdout and 2 on stderr (2 activations), saw $out_sentinels and $err_sentinels"
        elif ((printed != 2)); then
            fail="the action's own output is missing from the container's stdout"
        fi
    fi
    printf '    logs: stdout %s action lines + %s sentinels, stderr %s sentinels; uid %s\n' \
        "$printed" "$out_sentinels" "$err_sentinels" "${user:-?}"
    grep -E "^smoke: |^$SENTINEL\$" <<<"$out" | head -n 6 | sed 's/^/      stdout | /' || true
    grep -E "^smoke: |^$SENTINEL\$" <<<"$err" | head -n 4 | sed 's/^/      stderr | /' || true
    if [[ -n $fail ]]; then
        printf -- '---- container logs (%s) ----\n%s\n----\n' "$name" "$logs" >&2
    fi
    eng rm -f "$name" >/dev/null 2>&1 || true
    if [[ -n $fail ]]; then
        SMOKE_RESULT[$rt]=FAIL
        SMOKE_DETAIL[$rt]=$fail
        log "smoke $img: FAIL: $fail"
        return 1
    fi
    SMOKE_RESULT[$rt]=ok
    SMOKE_DETAIL[$rt]="init ok, 2 runs ok, sentinels 2+2, $(($(now) - t0)) s"
    log "smoke $img: ok"
}

summary() {
    local rt img
    echo
    echo "Runtime images ($ENGINE):"
    printf '  %-28s %10s  %-6s %s\n' IMAGE SIZE SMOKE DETAIL
    for rt in "$@"; do
        img=$(image_name "$rt")
        printf '  %-28s %10s  %-6s %s\n' "$img" "$(human "$(image_size "$img")")" \
            "${SMOKE_RESULT[$rt]:--}" "${SMOKE_DETAIL[$rt]:-built in ${BUILD_SECS[$rt]:-?} s}"
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
    for rt in "${RUNTIMES[@]}"; do
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

cmd=${1:-}
shift || true
case $cmd in
build)
    read -r -a rts <<<"$(select_runtimes "${1:-all}")"
    T0=$(now)
    build_images "${rts[@]}"
    summary "${rts[@]}"
    echo "done in $(($(now) - T0)) s"
    ;;
smoke)
    command -v curl >/dev/null || die "curl is needed"
    read -r -a rts <<<"$(select_runtimes "${1:-all}")"
    T0=$(now)
    build_images "${rts[@]}"
    trap 'remove_smoke_containers; cleanup_standin_dir' EXIT
    failed=0
    for rt in "${rts[@]}"; do smoke_one "$rt" || failed=1; done
    summary "${rts[@]}"
    echo "done in $(($(now) - T0)) s"
    if ((failed)); then
        echo "SMOKE FAILED" >&2
        exit 1
    fi
    echo "SMOKE OK: ${#rts[@]} images answered /init and /run and logged the sentinels"
    ;;
dropin)
    command -v curl >/dev/null || die "curl is needed"
    [[ -d $DROPIN_CONTEXT ]] || die "the reference runtimes are not at $REFERENCE_RUNTIMES (set REFERENCE_RUNTIMES)"
    T0=$(now)
    build_images python
    build_one dropin-python
    trap 'remove_smoke_containers; cleanup_standin_dir' EXIT
    failed=0
    smoke_one dropin-python || failed=1
    summary dropin-python
    echo "done in $(($(now) - T0)) s"
    if ((failed)); then
        echo "SMOKE FAILED" >&2
        exit 1
    fi
    echo "SMOKE OK: the OpenServerless python image with actionloop as /bin/proxy answered /init and /run and logged the sentinels"
    ;;
standins)
    [[ $ENGINE == podman ]] || die "stand-ins are only for podman; with Docker the official images are pulled"
    ensure_base_images "${RUNTIMES[@]}"
    echo "stand-ins in use: ${STANDINS_USED[*]:-none}"
    ;;
sizes)
    show_sizes
    ;;
clean)
    for rt in "${RUNTIMES[@]}"; do eng rmi -f "$(image_name "$rt")" >/dev/null 2>&1 || true; done
    eng image prune -f >/dev/null
    echo "removed the runtime images and dangling layers (stand-ins kept; remove them with $ENGINE rmi)"
    ;;
*)
    sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
    [[ -z $cmd || $cmd == help || $cmd == -h || $cmd == --help ]] || exit 2
    ;;
esac
