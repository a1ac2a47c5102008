import neostandard from 'neostandard'

export default [
  ...neostandard({ ts: true, ignores: ['dist/**', 'coverage/**', '.tap/**', 'example/public/**'] }),
  {
    // A constant and its type of the same name (`CloseCode`) is deliberate; tsc catches real redeclarations.
    rules: { '@typescript-eslint/no-redeclare': 'off' }
  },
  {
    // Type tests evaluate expressions only for their types.
    files: ['test/types/**'],
    rules: { 'no-void': 'off' }
  }
]
