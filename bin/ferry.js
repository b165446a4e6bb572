#!/usr/bin/env node
'use strict';
// Thin launcher: the CLI lives in TypeScript, compiled to dist/ by `npm run build`.
const { main } = require('../dist/src/cli/main.js');
main(process.argv).then((code) => {
  process.exitCode = code;
});
