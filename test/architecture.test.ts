/**
 * The layout's rules, checked on the sources' import graph (every import, type-only ones included, since a cycle or
 * a wrong-way arrow of types is a design fault even when it costs nothing at run time): no cycle; `types/` (the wire
 * protocol) imports nothing of `lib/` or `hooks/`; the client imports nothing of the server; the brokers in
 * `lib/redis/` and `lib/in-process/` are reached only through their entry files; no route file imports another;
 * no folder grows past ~20 files.
 */
import { readFileSync, readdirSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import ts from 'typescript'

const root = fileURLToPath(new URL('../', import.meta.url))
const SOURCE_ROOTS = ['index.ts', 'lib', 'hooks', 'types']
const MAX_FILES_PER_FOLDER = 20
const BROKER_FOLDERS = ['lib/redis/', 'lib/in-process/']

function sourceFiles (): string[] {
  const files: string[] = []
  for (const entry of SOURCE_ROOTS) {
    if (entry.endsWith('.ts')) { files.push(entry); continue }
    for (const file of readdirSync(path.join(root, entry), { recursive: true }) as string[]) {
      if (/\.tsx?$/.test(file) && !file.endsWith('.d.ts')) files.push(path.posix.join(entry, file.split(path.sep).join('/')))
    }
  }
  return files.sort()
}

/** Each source file's relative imports, as repo paths. */
function importGraph (files: readonly string[]): Map<string, string[]> {
  const known = new Set(files)
  const graph = new Map<string, string[]>()
  for (const file of files) {
    const { importedFiles } = ts.preProcessFile(readFileSync(path.join(root, file), 'utf8'), true, true)
    const targets: string[] = []
    for (const { fileName } of importedFiles) {
      if (!fileName.startsWith('.')) continue
      const base = path.posix.normalize(path.posix.join(path.posix.dirname(file), fileName)).replace(/\.js$/, '')
      const target = [`${base}.ts`, `${base}.tsx`].find((candidate) => known.has(candidate))
      if (target === undefined) throw new Error(`${file}: cannot resolve ${fileName}`)
      targets.push(target)
    }
    graph.set(file, targets)
  }
  return graph
}

/** Every cycle, each as the path that closes it (Tarjan's strongly connected components of more than one file). */
function cyclesOf (graph: ReadonlyMap<string, readonly string[]>): string[][] {
  let next = 0
  const index = new Map<string, number>()
  const low = new Map<string, number>()
  const stack: string[] = []
  const onStack = new Set<string>()
  const components: string[][] = []
  const visit = (file: string): void => {
    index.set(file, next)
    low.set(file, next++)
    stack.push(file)
    onStack.add(file)
    for (const target of graph.get(file) ?? []) {
      if (!index.has(target)) {
        visit(target)
        low.set(file, Math.min(low.get(file)!, low.get(target)!))
      } else if (onStack.has(target)) {
        low.set(file, Math.min(low.get(file)!, index.get(target)!))
      }
    }
    if (low.get(file) === index.get(file)) {
      const component: string[] = []
      let member: string
      do {
        member = stack.pop()!
        onStack.delete(member)
        component.push(member)
      } while (member !== file)
      if (component.length > 1 || graph.get(file)!.includes(file)) components.push(component.sort())
    }
  }
  for (const file of graph.keys()) if (!index.has(file)) visit(file)
  return components
}

const files = sourceFiles()
const graph = importGraph(files)
const arrows = [...graph].flatMap(([from, targets]) => targets.map((to) => ({ from, to })))

t.test('the sources were found and their imports resolved', async (t) => {
  t.ok(files.length > 80, `${files.length} source files`)
  t.ok(arrows.length > 200, `${arrows.length} imports`)
})

t.test('no import cycle', async (t) => {
  t.same(cyclesOf(graph), [])
})

t.test('types/ imports nothing of lib/ or hooks/', async (t) => {
  t.same(arrows.filter(({ from, to }) => from.startsWith('types/') && !to.startsWith('types/')), [])
})

t.test('the client (hooks/) imports nothing of the server (lib/, index.ts)', async (t) => {
  t.same(arrows.filter(({ from, to }) => from.startsWith('hooks/') && (to.startsWith('lib/') || to === 'index.ts')), [])
})

t.test('the brokers are reached from outside their folder only through its index.ts', async (t) => {
  const sideways = arrows.filter(({ from, to }) => BROKER_FOLDERS.some((folder) =>
    to.startsWith(folder) && !from.startsWith(folder) && to !== `${folder}index.ts`))
  t.same(sideways, [])
})

t.test('no route file imports another (what two routes share lives in a module of its own)', async (t) => {
  const isRoute = (file: string): boolean => file.endsWith('-route.ts')
  t.same(arrows.filter(({ from, to }) => isRoute(from) && isRoute(to)), [])
})

t.test(`no source folder holds more than ${MAX_FILES_PER_FOLDER} files`, async (t) => {
  const perFolder = new Map<string, number>()
  for (const file of files) perFolder.set(path.posix.dirname(file), (perFolder.get(path.posix.dirname(file)) ?? 0) + 1)
  t.same([...perFolder].filter(([, count]) => count > MAX_FILES_PER_FOLDER).map(([folder, count]) => `${folder}: ${count}`), [])
})

t.test('the cycle finder finds a cycle', async (t) => {
  const cyclic = new Map([['a.ts', ['b.ts']], ['b.ts', ['c.ts']], ['c.ts', ['a.ts']], ['d.ts', ['a.ts']]])
  t.same(cyclesOf(cyclic), [['a.ts', 'b.ts', 'c.ts']])
  t.same(cyclesOf(new Map([['a.ts', ['b.ts']], ['b.ts', []]])), [])
})
