# syntax=docker/dockerfile:1
#
# One container image for the three pixelpipe GCP functions, for Cloud Run services or Knative
# (infra/knative/service-*.yaml). The function is chosen when the container starts:
#   FUNCTION_TARGET=upload|process|notify      entry point (also names the bundle dist/gcp/<target>)
#   FUNCTION_SIGNATURE_TYPE=http|cloudevent    http for upload, cloudevent for process and notify
#   FUNCTION=<folder>                          optional: bundle folder when it differs from the target
#
#   docker build -t pixelpipe .
#   docker run -p 8080:8080 -e FUNCTION_TARGET=upload -e FUNCTION_SIGNATURE_TYPE=http ... pixelpipe
#
# (Cloud Functions deployments by scripts/deploy-gcp.sh do not use this file: they upload dist/gcp/<fn>.)

ARG NODE_IMAGE=node:22-slim

# --- build: full dev install, then the esbuild bundles --------------------------------------------
FROM ${NODE_IMAGE} AS build
WORKDIR /src
# The whole context before `npm ci`: its "prepare" script runs scripts/build.mjs on the sources.
COPY . .
RUN --mount=type=cache,target=/root/.npm npm ci --no-audit --no-fund
RUN npm run build \
 && test -f dist/gcp/upload/index.js \
 && test -f dist/gcp/process/index.js \
 && test -f dist/gcp/notify/index.js \
 && test -f dist/gcp/images/index.js \
 && test -f dist/gcp/cascade/index.js

# --- deps: only what the bundles load at run time ---------------------------------------------------
# The native modules the bundles keep external (listed in dist/gcp/<fn>/package.json: sharp and
# heic-decode for process) and the Functions Framework, pinned to the versions of package-lock.json and
# installed for this image's platform (linux/glibc: sharp's prebuilt libvips).
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package-lock.json /tmp/package-lock.json
COPY scripts/lib/runtime-package.cjs /tmp/runtime-package.cjs
COPY --from=build /src/dist/gcp /tmp/bundles
RUN node /tmp/runtime-package.cjs /tmp/package-lock.json /tmp/bundles package.json upload images process notify cascade \
 && npm install --omit=dev --no-audit --no-fund --no-package-lock \
 && npm cache clean --force

# --- runtime ------------------------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production \
    PORT=8080 \
    MALLOC_ARENA_MAX=2 \
    FUNCTION_TARGET=upload \
    FUNCTION_SIGNATURE_TYPE=http
WORKDIR /app
# Root-owned and read-only for the process: the service never writes to its own files.
COPY --from=deps /app/package.json ./package.json
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /src/dist/gcp ./dist/gcp
# Non-root: the "node" user (uid 1000) of the official image.
USER node
EXPOSE 8080
CMD ["sh", "-c", "exec node_modules/.bin/functions-framework --source=\"dist/gcp/${FUNCTION:-$FUNCTION_TARGET}\" --target=\"$FUNCTION_TARGET\" --signature-type=\"$FUNCTION_SIGNATURE_TYPE\""]
