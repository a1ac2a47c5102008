// Module hooks for ./loader.mjs: every import of react, react-dom or @testing-library/react|dom (and their subpaths,
// such as react/jsx-runtime, which esbuild's JSX compiles to), from the package's sources, the tests or dist/, is
// resolved as if made from this folder, whose node_modules holds React 18.3. What those packages require themselves
// resolves inside that node_modules already, so one React is loaded, never both.
const REDIRECTED = /^(react|react-dom|@testing-library\/react|@testing-library\/dom)(\/|$)/
const here = new URL('./', import.meta.url).href
const parentURL = new URL('./package.json', import.meta.url).href

export async function resolve (specifier, context, nextResolve) {
  if (REDIRECTED.test(specifier) && !context.parentURL?.startsWith(here)) {
    return nextResolve(specifier, { ...context, parentURL })
  }
  return nextResolve(specifier, context)
}
