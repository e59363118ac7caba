# syntax=docker/dockerfile:1
# One image for every Parley process: the API (default command), the workers
# and the one-shot migration, chosen by the command. See docs/deployment.md.
#
#   docker build -t parley .
#   docker run --rm parley node --import tsx scripts/migrate.ts latest
#   docker run -p 3000:3000 parley                                  # API
#   docker run parley node --import tsx workers/main.ts            # workers
#
# Nothing secret is baked in: every credential comes from the environment or a
# mounted file at run time (`<NAME>_FILE`, platform/config.ts).

ARG NODE_VERSION=20.19

# Stage 1: production dependencies only. Native modules (tree-sitter, argon2)
# install from their prebuilds; the compilers are here for the rare platform
# that has none, and stay in this stage.
FROM node:${NODE_VERSION}-bookworm-slim AS deps
WORKDIR /app
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
ENV SCARF_ANALYTICS=false
RUN npm ci --omit=dev --no-audit --no-fund \
 && npm cache clean --force

# Stage 2: the arena page (web/, built by Vite on the SDK) into web/dist; its
# build tools are dev dependencies and stay in this stage.
FROM deps AS web
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY shared ./shared
COPY sdk ./sdk
COPY web ./web
COPY scripts/web-build.ts ./scripts/
RUN node --import tsx scripts/web-build.ts

# Stage 3: the runtime. Source runs through tsx (a production dependency), the
# same way `npm run api` runs it, so there is no separate build output to drift.
FROM node:${NODE_VERSION}-bookworm-slim AS runtime
ENV NODE_ENV=production \
    PARLEY_ENV=production \
    PORT=3000 \
    PARLEY_WORKER_PORT=9464 \
    PARLEY_WORKER_HOST=0.0.0.0
WORKDIR /app
COPY --from=deps --chown=root:root /app/node_modules ./node_modules
COPY --chown=root:root package.json tsconfig.json ./
COPY --chown=root:root shared ./shared
COPY --chown=root:root platform ./platform
COPY --chown=root:root api ./api
COPY --chown=root:root workers ./workers
COPY --chown=root:root migrations ./migrations
COPY --chown=root:root scripts/migrate.ts scripts/user.ts scripts/keys.ts ./scripts/
COPY --from=web --chown=root:root /app/web/dist ./web/dist
# The code is owned by root and read-only to the process; it runs as `node` (uid 1000).
# Uploaded repositories (PARLEY_CODE_DIR in docker-compose.yml) go to a folder node owns, so a fresh
# volume mounted there inherits that owner.
RUN mkdir -p /var/lib/parley/code && chown node:node /var/lib/parley/code
USER node
EXPOSE 3000 9464
# Liveness of the API process. The workers' service overrides it with their
# own port (PARLEY_WORKER_PORT), see docker-compose.yml.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# node is PID 1 and gets SIGTERM directly (no npm in between), so graceful drain works.
CMD ["node", "--import", "tsx", "api/main.ts"]
