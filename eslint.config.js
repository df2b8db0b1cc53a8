// Type-aware lint for all TypeScript sources; package boundaries are enforced here too.
import js from '@eslint/js'
import simpleImportSort from 'eslint-plugin-simple-import-sort'
import tseslint from 'typescript-eslint'

const boundary = (message, patterns) => ({
  'no-restricted-imports': ['error', { patterns: [{ group: patterns, message }] }],
})

export default tseslint.config(
  {
    ignores: [
      '**/node_modules/**',
      'dist/**',
      '.desklink/**',
      'bin/**',
      'scripts/**',
      'eslint.config.js',
      'bench/**/*.mjs',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    plugins: { 'simple-import-sort': simpleImportSort },
    rules: {
      'simple-import-sort/imports': 'error',
      'simple-import-sort/exports': 'error',
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      'no-console': 'error',
    },
  },
  {
    files: ['packages/agent/**/*.ts'],
    rules: boundary('The agent never imports server code.', [
      '@desklink/server',
      '**/server/src/**',
    ]),
  },
  {
    files: ['packages/server/**/*.ts'],
    rules: boundary('The server never imports agent or CLI code.', [
      '@desklink/agent',
      '@desklink/cli',
      '**/agent/src/**',
      '**/cli/src/**',
    ]),
  },
  {
    files: ['packages/protocol/**/*.ts'],
    rules: boundary('protocol depends on nothing of ours.', [
      '@desklink/server',
      '@desklink/agent',
      '@desklink/cli',
    ]),
  },
  {
    files: ['**/*.test.ts', 'test/**/*.ts', 'bench/**/*.ts'],
    rules: {
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      '@typescript-eslint/no-non-null-assertion': 'off',
    },
  },
)
