// Lint rules for Ferry: typescript-eslint's strict type-checked set, tuned to this code base
// (each switched-off or adjusted rule says why), plus the project's own layering rule.
// Formatting is prettier's job: eslint-config-prettier comes last and turns off every rule
// that would fight it.
import js from '@eslint/js';
import { defineConfig, globalIgnores } from 'eslint/config';
import prettier from 'eslint-config-prettier';
import tseslint from 'typescript-eslint';

// Browser and Node globals the two plain-JavaScript files use, listed here rather than taken
// from the `globals` package, which is not a dependency of its own.
const browserGlobals = Object.fromEntries(['window', 'document', 'location', 'fetch', 'EventSource', 'alert', 'setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'console', 'URL', 'URLSearchParams'].map((g) => [g, 'readonly']));
const nodeGlobals = Object.fromEntries(['process', 'console', 'require', 'module', '__dirname'].map((g) => [g, 'readonly']));

// Domain code: everything below the presentation layers (CLI, dashboard), including the
// library's own top-level modules (client, redis, queues, log, index).
const DOMAIN = ['src/*.ts', 'src/engine', 'src/steps', 'src/store', 'src/fleet', 'src/monitor', 'src/transfer', 'src/archive', 'src/podman', 'src/ssh', 'src/exec', 'src/config', 'src/errors', 'jobs', 'workers'];

export default defineConfig(
  globalIgnores(['dist/', '.dist-*/', 'node_modules/', 'test-output/', 'docs/']),

  js.configs.recommended,

  {
    files: ['**/*.ts'],
    extends: [tseslint.configs.strictTypeChecked, tseslint.configs.stylisticTypeChecked],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      eqeqeq: ['error', 'always'],
      '@typescript-eslint/switch-exhaustiveness-check': ['error', { considerDefaultExhaustiveForUnions: true }],
      // The `_name` convention marks a parameter a signature requires (Express's error
      // handler) and keys dropped from an object by destructuring it with a rest.
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_', ignoreRestSiblings: true }],
      // Numbers, booleans, absent values (an exit code of null, an optional event field) and
      // regular expressions print as meant in messages; objects and arrays stay forbidden.
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true, allowBoolean: true, allowNullish: true, allowRegExp: true }],
      // `(e) => reject(e)` and `() => done()` are this code's idiom for callbacks; a void
      // result used as a value anywhere else is still reported.
      '@typescript-eslint/no-confusing-void-expression': ['error', { ignoreArrowShorthand: true }],
      // `a || b` on booleans means "either"; `??` would change what false does.
      '@typescript-eslint/prefer-nullish-coalescing': ['error', { ignorePrimitives: { boolean: true } }],
      // Off: without noUncheckedIndexedAccess, TypeScript types `counts[state]` on a Record as
      // always present, so the rule asks to delete `?? 0` guards that are needed, and it also
      // misreads flags set inside callbacks (`stopped`, `requiredError`) as constant.
      '@typescript-eslint/no-unnecessary-condition': 'off',
      // Off: `String(x)` on values read from Redis, job payloads and request params is a
      // deliberate guard at a trust boundary whose static type is more optimistic than the data.
      '@typescript-eslint/no-unnecessary-type-conversion': 'off',
      // Off: its fix turns `x as T` into `x!`, which no-non-null-assertion forbids.
      '@typescript-eslint/non-nullable-type-assertion-style': 'off',
    },
  },

  {
    // Domain code never imports presentation: the arrows run from cli/dashboard down only.
    files: DOMAIN.map((d) => (d.endsWith('.ts') ? d : `${d}/**/*.ts`)),
    rules: {
      '@typescript-eslint/no-restricted-imports': ['error', { patterns: [{ regex: '(^|/)(cli|dashboard)(/|$)', message: 'Domain code must not import src/cli or src/dashboard: move what both need into the domain layer.' }] }],
    },
  },

  {
    files: ['src/**/*.ts', 'jobs/**/*.ts', 'workers/**/*.ts'],
    // Output goes through the logger or the CLI's io, which tests can capture.
    rules: { 'no-console': 'error' },
  },

  {
    files: ['test/**/*.ts'],
    rules: {
      // A wrong guess fails the test with a TypeError, which is what a test should do.
      '@typescript-eslint/no-non-null-assertion': 'off',
      // Fault scenarios implement async hooks; some of them have nothing to await.
      '@typescript-eslint/require-await': 'off',
    },
  },

  {
    // The dashboard's page: plain browser JavaScript, no build step, so not type-checked.
    files: ['src/dashboard/static/**/*.js'],
    languageOptions: { sourceType: 'script', globals: browserGlobals },
  },

  {
    files: ['bin/**/*.js'],
    languageOptions: { sourceType: 'commonjs', globals: nodeGlobals },
  },

  prettier,
);
