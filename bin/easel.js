#!/usr/bin/env node
// Entry point for the installed `easel` command: runs the compiled CLI (npm run build makes dist/).
import '../dist/cli/main.js';
