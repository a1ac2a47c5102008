/**
 * The docs a reader follows: every relative link of README.md, SECURITY.md and docs/*.md opens a file of this
 * repository, and its `#anchor` a heading of that file (GitHub's slugs); no link leaves the repository (the docs ship in
 * the package and must not send readers to pages that may move or go); and the README stays short enough to read.
 */
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs'
import { dirname, join, relative, resolve, sep } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'

const root = fileURLToPath(new URL('..', import.meta.url))
const README_MAX_LINES = 320

/** External addresses a doc may link to. None so far: each new one should be worth the risk of a dead link. */
const ALLOWED_EXTERNAL: readonly string[] = []

const docs = ['README.md', 'SECURITY.md', ...readdirSync(join(root, 'docs')).filter((f) => f.endsWith('.md')).sort().map((f) => `docs/${f}`)]

interface Link {
  readonly line: number
  readonly target: string
}

/** The text of a Markdown file without its fenced code blocks (lines kept, emptied, so that line numbers hold). */
function withoutCodeBlocks (markdown: string): string[] {
  let fence: string | undefined
  return markdown.split('\n').map((line) => {
    const opening = /^\s*(`{3,}|~{3,})/.exec(line)
    if (fence === undefined && opening) {
      fence = opening[1]!
      return ''
    }
    if (fence !== undefined) {
      if (line.trim().startsWith(fence)) fence = undefined
      return ''
    }
    return line
  })
}

/** Every link GitHub would render: inline links and images, reference definitions, autolinks and bare URLs. */
function linksOf (markdown: string): Link[] {
  const links: Link[] = []
  withoutCodeBlocks(markdown).forEach((raw, index) => {
    const line = raw.replace(/`[^`]*`/g, '') // inline code is text, not a link
    const add = (target: string) => links.push({ line: index + 1, target })
    for (const match of line.matchAll(/!?\[[^\]]*\]\(\s*<?([^)\s>]*)>?(?:\s+"[^"]*")?\s*\)/g)) add(match[1]!)
    const definition = /^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)/.exec(line)
    if (definition) add(definition[1]!)
    for (const match of line.matchAll(/<((?:https?|mailto|ftp):[^>\s]+)>/gi)) add(match[1]!)
    const withoutLinks = line.replace(/\]\([^)]*\)/g, '](…)').replace(/<[^>]*>/g, '')
    for (const match of withoutLinks.matchAll(/\b(?:https?:\/\/|www\.)[^\s)<>]+/gi)) add(match[0])
  })
  return links
}

/** The anchors GitHub gives a Markdown file's headings: lower case, punctuation dropped, spaces to hyphens, -1, -2 for repeats. */
function anchorsOf (markdown: string): Set<string> {
  const anchors = new Set<string>()
  const seen = new Map<string, number>()
  for (const line of withoutCodeBlocks(markdown)) {
    const heading = /^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$/.exec(line)
    if (!heading) continue
    const text = heading[1]!
      .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1') // a link's text only
      .replace(/<[^>]+>/g, '')
      .replace(/[`*]/g, '')
    const slug = text.toLowerCase().replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, '').replace(/ /g, '-')
    const count = seen.get(slug) ?? 0
    seen.set(slug, count + 1)
    anchors.add(count === 0 ? slug : `${slug}-${count}`)
  }
  return anchors
}

/** What is wrong with one link of `file`, or undefined when it opens what it names. */
function problemOf (file: string, target: string): string | undefined {
  if (/^[a-z][a-z0-9+.-]*:/i.test(target) || target.startsWith('//') || /^www\./i.test(target)) {
    return ALLOWED_EXTERNAL.includes(target) ? undefined : 'points outside the repository'
  }
  if (target === '') return 'is empty'
  const hashAt = target.indexOf('#')
  const path = decodeURIComponent(hashAt === -1 ? target : target.slice(0, hashAt))
  const anchor = hashAt === -1 ? undefined : decodeURIComponent(target.slice(hashAt + 1))
  const absolute = path === '' ? join(root, file) : path.startsWith('/') ? join(root, path) : resolve(root, dirname(file), path)
  const inRepo = relative(root, absolute)
  if (inRepo.startsWith('..') || inRepo.split(sep).includes('node_modules')) return 'points outside the repository'
  if (!existsSync(absolute) || !statSync(absolute).isFile()) return `names ${inRepo}, which is not a file of the repository`
  if (anchor === undefined) return undefined
  if (!absolute.endsWith('.md')) return `has an anchor, but ${inRepo} is not Markdown`
  if (!anchorsOf(readFileSync(absolute, 'utf8')).has(anchor)) return `names #${anchor}, which is not a heading of ${inRepo}`
  return undefined
}

t.test('every link of the README, SECURITY.md and docs/ opens a file of the repository, at a heading that exists', async (t) => {
  t.ok(docs.length > 3, 'the docs are found')
  for (const file of docs) {
    const problems = linksOf(readFileSync(join(root, file), 'utf8'))
      .map(({ line, target }) => ({ line, target, problem: problemOf(file, target) }))
      .filter((link) => link.problem !== undefined)
      .map(({ line, target, problem }) => `${file}:${line}: (${target}) ${problem}`)
    t.same(problems, [], `${file}: every link resolves inside the repository`)
  }
})

t.test('the README links every doc of docs/', async (t) => {
  const readme = readFileSync(join(root, 'README.md'), 'utf8')
  const linked = new Set(linksOf(readme).map(({ target }) => target.split('#')[0]))
  const unlinked = docs.filter((file) => file.startsWith('docs/') && !linked.has(file))
  t.same(unlinked, [], 'each file of docs/ is in the README')
})

t.test('the README stays short: the manual lives in docs/', async (t) => {
  const lines = readFileSync(join(root, 'README.md'), 'utf8').split('\n').length
  t.ok(lines < README_MAX_LINES, `README.md has ${lines} lines (fewer than ${README_MAX_LINES})`)
})

t.test('the checker itself: broken links, anchors and external links are caught', async (t) => {
  t.equal(problemOf('README.md', 'docs/options.md'), undefined, 'a file that exists')
  t.equal(problemOf('docs/protocol.md', 'options.md#options'), undefined, 'a heading that exists, relative to the doc')
  t.match(problemOf('README.md', 'docs/no-such-doc.md'), /not a file/, 'a missing file')
  t.match(problemOf('README.md', 'docs/options.md#no-such-heading'), /not a heading/, 'a missing heading')
  t.match(problemOf('README.md', 'https://example.com/'), /outside the repository/, 'a web address')
  t.match(problemOf('README.md', '../elsewhere/PROTOCOL.md'), /outside the repository/, 'a path out of the repository')
  t.same(anchorsOf('# Prometheus: `fastify-pov-realtime/metrics`\n## Limits\n## Limits\n'),
    new Set(['prometheus-fastify-pov-realtimemetrics', 'limits', 'limits-1']), 'GitHub-style slugs, repeats numbered')
  t.same(linksOf('[a](b.md) `[c](d.md)`\n```\n[e](f.md)\n```\nsee https://example.com and <https://x.y>\n[r]: g.md')
    .map((link) => link.target), ['b.md', 'https://x.y', 'https://example.com', 'g.md'], 'links outside code are found, those in code are not')
})
