/**
 * The arena page's build: React + TypeScript through Vite into web/dist,
 * which the API serves at `/`. `npm run web:build` runs it (and skips it
 * when nothing it depends on changed); `npm start` runs that.
 */
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: '/',
  logLevel: 'warn',
  build: { outDir: 'dist', emptyOutDir: true, sourcemap: false, chunkSizeWarningLimit: 1024 },
  oxc: { jsx: { runtime: 'automatic' } },
});
