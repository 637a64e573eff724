#!/usr/bin/env bash
# BUILD-MACHINE TOOLING, not part of the product: local stand-ins for the official base images
# that the Dockerfiles name (rust, python, node, php, composer), for machines whose podman cannot
# pull them (no Docker Hub from here, as on our CI machines). The runtime images themselves are
# built and tested by scripts/images.sh, which sources this file; with Docker, or wherever the
# official images can be pulled, nothing here is used.
#
#   scripts/standins.sh [python|nodejs|php|all]   build (or reuse) the stand-ins those need
#   scripts/images.sh standins                    the same, for all three
#
# The stand-ins are tagged with the official names, so that the Dockerfiles build unchanged:
#   - a Debian bookworm base from `debootstrap --variant=minbase`, imported with `podman import`;
#   - python/node/php images: that base plus Debian's python3 + pip, nodejs + npm, php-cli;
#   - the Rust image: that base plus gcc and this machine's own Rust toolchain (`rustc --print
#     sysroot`), since Debian's rustc is too old for the crate;
#   - the Composer image: a one-file image whose /usr/bin/composer runs Debian's composer package
#     (installed in the php stand-in), and a local Composer repository in the php stand-in that
#     serves Debian's Guzzle, because packagist.org cannot be reached from this machine.
# So they differ from the official images: Debian's interpreter versions (bookworm: Python 3.11,
# Node.js 18, PHP 8.2), not the ones the tags name. Stand-ins carry the label
# actionloop.standin=<official name> and are reused while their recipe is unchanged (label
# actionloop.standin.recipe). They are never pushed anywhere.
#   STANDINS=auto    (default) use a local image of that name, else try to pull it, else build
#                    a stand-in
#   STANDINS=never   never build stand-ins (pull failures are errors)
#   STANDINS=rebuild rebuild the stand-ins even when cached
# The Debian mirror for debootstrap and the stand-ins' apt: DEBIAN_MIRROR (default
# http://deb.debian.org/debian). Needs debootstrap, and rustc on PATH for the Rust stand-in.

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
    # Run on its own: set up like images.sh does, build, report.
    set -euo pipefail
    ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
    # shellcheck source=scripts/engine.sh
    source "$ROOT/scripts/engine.sh"
    STANDINS_MAIN=1
fi

STANDINS=${STANDINS:-auto}
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
STANDIN_BASE=localhost/actionloop-standin-base:bookworm
# Bump when a stand-in recipe changes in a way the recipe hash cannot see.
STANDIN_VERSION=1

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
    # Stand-ins install from Debian over plain http and need no CA mount (it would be in the way
    # of configuring the ca-certificates package).
    eng build "${BASE_BUILD_FLAGS[@]}" "$@" --pull=never \
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

if [[ -n ${STANDINS_MAIN:-} ]]; then
    engine_setup
    [[ $ENGINE == podman ]] || die "stand-ins are only for podman; with Docker the official images are pulled"
    case ${1:-all} in
    all) set -- python nodejs php ;;
    python | nodejs | php) ;;
    *) die "unknown runtime '$1' (python, nodejs, php or all)" ;;
    esac
    ensure_base_images "$@"
    echo "stand-ins in use: ${STANDINS_USED[*]:-none}"
    ((${#STANDINS_BUILT[@]})) && echo "built in this run: ${STANDINS_BUILT[*]}"
    exit 0
fi
