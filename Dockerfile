# syntax=docker/dockerfile:1
# The app under `litefs mount`. Base images are build arguments so that the
# same file builds on Fly.io from public images and, where no registry can be
# reached, from local ones (see docs/testing-with-lag.md):
#   docker build --build-arg NODE_IMAGE=local/node:20 --build-arg LITEFS_IMAGE=local/litefs:0.5.14 .
ARG NODE_IMAGE=node:20-bookworm-slim
ARG LITEFS_IMAGE=flyio/litefs:0.5.14

FROM ${LITEFS_IMAGE} AS litefs

FROM ${NODE_IMAGE} AS build
WORKDIR /app
# better-sqlite3 builds from source when no prebuilt binary can be fetched.
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
# The product only: the cluster harness, edge router and checker (tools/) and
# the benchmarks never enter the image, and src/ imports none of them.
COPY src ./src
RUN npm run build && npm prune --omit=dev

FROM ${NODE_IMAGE}
RUN apt-get update && apt-get install -y --no-install-recommends fuse3 ca-certificates && rm -rf /var/lib/apt/lists/*
COPY --from=litefs /usr/local/bin/litefs /usr/local/bin/litefs
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json litefs.yml ./
COPY views ./views
COPY public ./public
ENV NODE_ENV=production \
    PORT=8080 \
    DATABASE_URL=file:/litefs/app.db \
    LITEFS_API=http://127.0.0.1:20202
EXPOSE 8080
# LiteFS mounts the database, runs the migrations on lease candidates, then
# execs the app and forwards signals to it. The mount supervisor around it
# exits as LiteFS does, except when LiteFS refuses its own database after a
# crash: then the node rejoins from the primary (docs/decisions/0012-store-recovery.md).
ENTRYPOINT ["node", "/app/dist/mount.js", "--", "litefs", "mount", "-config", "/app/litefs.yml"]
