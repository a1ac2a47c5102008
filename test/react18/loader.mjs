// `--import` this file to run a test under React 18.3 (scripts/test-react18.mjs does): it registers
// ./loader-hooks.mjs, which resolves react, react-dom and @testing-library/* from this folder's node_modules.
import { register } from 'node:module'

register('./loader-hooks.mjs', import.meta.url)
