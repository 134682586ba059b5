# syntax=docker/dockerfile:1
# GridWatch: multi-stage build. The runtime image has no compiler, runs as a non-root user and keeps its
# embedded stores on the /data volume. Deployments point it at Redis, PostgreSQL and InfluxDB 2 through
# REDIS_URL, DATABASE_URL and INFLUX_URL / INFLUX_TOKEN (see docker-compose.yml).

FROM node:20-bookworm-slim AS build
WORKDIR /app
# better-sqlite3 compiles from source when no prebuilt binary can be fetched
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY devices ./devices
COPY simulators ./simulators
# the console's static files (dist/console): the runtime image serves them without the sources
RUN npx tsc -p tsconfig.build.json && npm run build:console && npm prune --omit=dev

FROM node:20-bookworm-slim AS runtime
ENV NODE_ENV=production \
    GRIDWATCH_DATA_DIR=/data \
    GRIDWATCH_CONFIG=/app/config/deployment.yaml
WORKDIR /app
# redis-server only for single-container trials without REDIS_URL; deployments use a Redis service
RUN apt-get update && apt-get install -y --no-install-recommends redis-server tini && rm -rf /var/lib/apt/lists/* \
    && groupadd --system gridwatch && useradd --system --gid gridwatch --home /app gridwatch \
    && mkdir -p /data && chown gridwatch:gridwatch /data
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY config ./config
USER gridwatch
VOLUME ["/data"]
EXPOSE 8080 1883 8083 8883
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD node -e "fetch('http://127.0.0.1:8080/healthz').then(r=>process.exit(r.ok?0:1)).catch(()=>process.exit(1))"
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["node", "dist/src/main.js"]
