# rivet as a container image: the compiled Linux binary of a release on Debian slim, run as an
# unprivileged user. The binary is built beforehand (scripts/compile.ts, or the release workflow)
# and verified against its .sha256 before this build; the image only copies it.
#
#   deno run -A scripts/compile.ts --target x86_64-unknown-linux-gnu --out-dir dist
#   docker build -t rivet .
#   docker run --rm -v "$PWD:/work" -e DATABASE_URL rivet run -c plan.yaml
#
# The working directory /work is where the config (and so its .rivet_state.db) and relative
# output paths live: mount a folder the rivet user (uid 10001) can write.
FROM debian:12-slim

# The asset name as scripts/compile.ts writes it (arm64: rivet-aarch64-unknown-linux-gnu).
ARG RIVET_BINARY=rivet-x86_64-unknown-linux-gnu

# ca-certificates: object stores and TLS database connections verified against the system roots
# too (Deno carries its own set; a company CA is added here by deriving from this image).
RUN apt-get update \
  && apt-get install -y --no-install-recommends ca-certificates \
  && rm -rf /var/lib/apt/lists/* \
  && groupadd --system --gid 10001 rivet \
  && useradd --system --uid 10001 --gid rivet --home-dir /work --create-home --shell /usr/sbin/nologin rivet

COPY --chmod=0755 dist/${RIVET_BINARY} /usr/local/bin/rivet

LABEL org.opencontainers.image.title="rivet" \
  org.opencontainers.image.description="Export PostgreSQL, MySQL/MariaDB and SQL Server tables and queries to Parquet or CSV" \
  org.opencontainers.image.licenses="Apache-2.0"

USER 10001:10001
WORKDIR /work
ENTRYPOINT ["/usr/local/bin/rivet"]
CMD ["--help"]
