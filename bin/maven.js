#!/usr/bin/env node
// The `maven` command: loads the TypeScript sources through tsx (no build step).
import { register } from 'tsx/esm/api';

register();
await import('../src/cli/maven.ts');
