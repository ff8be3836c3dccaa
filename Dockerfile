# Build stage: a release binary, dependencies cached in their own layer.
FROM rust:1-slim-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
RUN mkdir src && echo 'fn main() {}' > src/main.rs && touch src/lib.rs \
    && cargo build --release --locked && rm -rf src
COPY src ./src
COPY migrations ./migrations
COPY templates ./templates
RUN touch src/main.rs src/lib.rs && cargo build --release --locked

# Runtime stage: small, non-root, only CA certificates besides the binary.
# A volume mounted at /data (Fly.io, docker -v) comes owned by root, hiding the image's own
# /data: the entrypoint, started as root, hands /data to the unprivileged user and drops to it
# (setpriv, from util-linux, already in the base image) before anything else runs.
FROM debian:bookworm-slim
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="greenlight" \
      org.opencontainers.image.description="Continuous delivery in the pull-request thread: /approve-release deploys exactly the commit that passed." \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.documentation="README.md"
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --home-dir /data greenlight \
    && mkdir -p /data && chown greenlight:greenlight /data \
    && printf '%s\n' '#!/bin/sh' 'set -e' \
       'if [ "$(id -u)" = 0 ]; then' \
       '  chown -R greenlight:greenlight /data' \
       '  exec setpriv --reuid=greenlight --regid=greenlight --init-groups -- greenlight "$@"' \
       'fi' \
       'exec greenlight "$@"' > /usr/local/bin/greenlight-entrypoint \
    && chmod 0755 /usr/local/bin/greenlight-entrypoint
COPY --from=build /src/target/release/greenlight /usr/local/bin/greenlight
WORKDIR /data
# No DATABASE_URL here: the default, sqlite://greenlight.db in the working directory, is
# /data/greenlight.db, and an image-wide DATABASE_URL would conflict with DATABASE_URL_FILE.
ENV GREENLIGHT_LISTEN=0.0.0.0:8080 \
    LOG_FORMAT=json
EXPOSE 8080
# Ready = the database answers and is migrated. bash's /dev/tcp: no curl in the image.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/${GREENLIGHT_LISTEN##*:} && printf 'GET /readyz HTTP/1.0\\r\\n\\r\\n' >&3 && head -n1 <&3 | grep -q ' 200 '"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["greenlight-entrypoint"]
CMD ["serve"]
