/**
 * Bundles the React page (`client/main.tsx`) into `public/bundle.js` with esbuild: no dev server, one build at start.
 * `fastify-pov-realtime/hooks` resolves through the package's own `exports` (the built `dist/`), as in a user's app.
 */
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'

const here = (path) => fileURLToPath(new URL(path, import.meta.url))

/** Where the bundle is written (git-ignored). */
export const BUNDLE_PATH = here('./public/bundle.js')

/**
 * Builds the page bundle (minified, with a source map next to it).
 * @returns {Promise<void>} resolves once `public/bundle.js` is written; rejects with esbuild's errors
 */
export async function bundlePage () {
  await build({
    entryPoints: [here('./client/main.tsx')],
    outfile: BUNDLE_PATH,
    bundle: true,
    minify: true,
    sourcemap: true,
    format: 'esm',
    target: 'es2022',
    jsx: 'automatic',
    define: { 'process.env.NODE_ENV': '"production"' },
    logLevel: 'warning'
  })
}
