#!/usr/bin/env bash
# `npm test`: installs what is missing, brings the real services up (or checks
# the configured ones), installs the browser and builds the arena page for the
# end-to-end suite, empties the test database (scripts/reset-test-db.ts), and runs vitest, whose
# global setup migrates it.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d node_modules ] || npm ci --no-audit --no-fund
npm run -s services -- up
eval "$(npm run -s services -- env)"
# The browser suite drives Debian's chromium (installed here as root) and the built arena page.
npx tsx scripts/browser.ts
npx tsx scripts/web-build.ts
# Every run starts from an empty test database: nothing an earlier run wrote decides this one's answers.
npx tsx scripts/reset-test-db.ts --drop-leftovers
export DATABASE_URL="$PARLEY_TEST_DATABASE_URL" PARLEY_ENV=test LOG_LEVEL="${LOG_LEVEL:-warn}"
exec npx vitest run "$@"
