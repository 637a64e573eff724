# actionloop runtime image for PHP actions: the proxy binary plus the official PHP CLI image.
#
#   docker build -f Dockerfile.php -t actionloop-php .
#   docker run --rm -p 8080:8080 actionloop-php
#
# Base images are build arguments, e.g. --build-arg PHP_IMAGE=php:8.4-cli-bookworm.
# Keep the builder on the same Debian release as the final image (glibc).
ARG RUST_IMAGE=rust:1.95-slim-bookworm
ARG PHP_IMAGE=php:8.3-cli-bookworm
ARG COMPOSER_IMAGE=composer:2

# Composer itself comes from the official Composer image (its /usr/bin/composer).
FROM ${COMPOSER_IMAGE} AS composer

# ---- builder: compiles the proxy (this stage is identical in the three Dockerfiles) ----
FROM ${RUST_IMAGE} AS builder
WORKDIR /src
# Dependencies first, in their own layer: only a change to Cargo.toml or Cargo.lock rebuilds them.
# Best effort: if the manifest names files that are not there yet, the full build below does it all.
COPY Cargo.toml Cargo.lock ./
RUN mkdir -p src && echo 'fn main() {}' > src/main.rs \
    && (cargo build --release --locked && cargo clean --release --package actionloop \
        || echo "dependency pre-build skipped: the full build below compiles everything") \
    && rm -rf src
COPY . .
RUN touch src/main.rs \
    && cargo build --release --locked \
    && install -D -m 0755 target/release/actionloop /out/proxy

# ---- runtime: interpreter + proxy, no compiler ----
FROM ${PHP_IMAGE}
# OW_PRELOAD: a file the prewarmed interpreter includes before any action arrives, which loads
# Guzzle's client classes through the autoloader, so an action's first use of them is free.
ENV OW_RUNTIME=php \
    OW_PRELOAD=/opt/ow/php/preload.php \
    PHP_INI_SCAN_DIR=:/opt/ow/php/conf.d
COPY --from=composer /usr/bin/composer /usr/local/bin/composer
# Composer needs unzip for its downloads. Guzzle goes to /opt/ow/php/vendor, and an ini file
# (read through PHP_INI_SCAN_DIR, after PHP's own conf.d) prepends its autoloader to every
# script, so actions can use GuzzleHttp\Client without a require. An action zip that brings
# its own vendor/ still wins: Composer's autoloaders are prepended, the latest registered first.
# Then the unprivileged user that runs the proxy; the libraries stay owned by root.
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends unzip \
    && rm -rf /var/lib/apt/lists/* \
    && mkdir -p /opt/ow/php/conf.d \
    && COMPOSER_ALLOW_SUPERUSER=1 composer require --working-dir=/opt/ow/php \
        --no-interaction --no-progress --prefer-dist --optimize-autoloader \
        guzzlehttp/guzzle:^7.4 \
    && rm -rf /root/.composer /root/.cache \
    && echo 'auto_prepend_file=/opt/ow/php/vendor/autoload.php' > /opt/ow/php/conf.d/ow-libs.ini \
    && echo '<?php exit(class_exists("GuzzleHttp\\Client") ? 0 : 1);' > /tmp/check.php \
    && php /tmp/check.php && rm /tmp/check.php \
    && echo '<?php class_exists("GuzzleHttp\\Client"); class_exists("GuzzleHttp\\Psr7\\Request");' \
        > /opt/ow/php/preload.php \
    && groupadd --gid 10001 ow \
    && useradd --uid 10001 --gid 10001 --no-log-init --home-dir /proxy --shell /usr/sbin/nologin ow \
    && mkdir -p /proxy && chown 10001:10001 /proxy
COPY --from=builder /out/proxy /bin/proxy
# The proxy writes its actions under ./action/<n>/ of this directory.
WORKDIR /proxy
USER 10001:10001
EXPOSE 8080
ENTRYPOINT ["/bin/proxy"]
