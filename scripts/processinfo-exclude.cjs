// Preloaded into every test process (package.json "tap" → "node-arg"; --require runs before any --import): keeps the
// files under node_modules/ out of what @tapjs/processinfo records. It records each module a test process loads, for
// `tap --changed` and coverage, by reading the file again and measuring its lines: about 0.2 s of CPU per test file
// here, where each process loads ~1,000 modules, nearly all from node_modules/, which coverage leaves out anyway
// (tap excludes the root node_modules from it) and which `--changed` need not watch.
//
// An environment variable is processinfo's only setting for this, and a "test-env" entry cannot set it: tap's runner
// writes its own value into each test process's environment after applying "test-env". processinfo reads it when its
// --import loads, after this file; child processes a test starts inherit it.
//
// The --import entry points of tap's plugins (node_modules/@tapjs/*/dist/esm/import.mjs) are still recorded:
// processinfo starts its coverage session and its exit handler with the first file it records, and that must come
// before @tapjs/core loads async-hook-domain, which keeps the process.emit of that moment and puts it back later,
// dropping the exit handler that writes .tap/processinfo/ and .tap/coverage/. Our own loader, the first file outside
// node_modules, loads too late for that.
const tapPluginEntry = String.raw`@tapjs[\\/][^\\/]+[\\/]dist[\\/]esm[\\/]import\.mjs$`
process.env._TAPJS_PROCESSINFO_EXCLUDE_ = String(new RegExp(
  String.raw`(^(node|tapmock):|[\\/](\.tap|tap-snapshots)[\\/]|[\\/]node_modules[\\/](?!${tapPluginEntry}))`
))
