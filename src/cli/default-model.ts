/** The embedded default model, used by every command whose --model is left out. */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const DEFAULT_MODEL_DIR = join(ROOT, 'models', 'maven-tiny');

/** The package's version, from package.json (for `maven --version`). */
export const PACKAGE_JSON = join(ROOT, 'package.json');
