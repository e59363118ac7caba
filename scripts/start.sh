#!/usr/bin/env bash
# `npm start`: installs what is missing, brings the services up (or checks the
# configured ones), migrates, starts the API and the workers, and runs the
# live demo discussion. The platform keeps running until Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d node_modules ] || npm ci --no-audit --no-fund
npm run -s services -- up
eval "$(npm run -s services -- env)"
npx tsx scripts/migrate.ts latest
# The arena page (web/ → web/dist, served at /); skipped when nothing it is built from changed.
npx tsx scripts/web-build.ts
exec npx tsx scripts/start.ts "$@"
