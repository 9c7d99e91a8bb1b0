/**
 * Where the real data sets live: an explicit option, else $MAVEN_DATA_DIR, else `../shared/data`
 * next to the project root (found from this file's URL, so it does not depend on the cwd).
 * The folder is read in place and never copied. When it (or a file in it) is missing, a
 * `DataUnavailableError` says what was looked for and how to point at it; tests turn that
 * message into a `skip`, so the suite passes on a machine without the data.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The project root: two levels above src/data/. */
export const PROJECT_ROOT = fileURLToPath(new URL('../../', import.meta.url));

export const DATA_DIR_ENV = 'MAVEN_DATA_DIR';

export class DataUnavailableError extends Error {
  constructor(
    message: string,
    readonly path: string,
  ) {
    super(message);
    this.name = 'DataUnavailableError';
  }
}

export interface DataDirOptions {
  /** Data folder; overrides $MAVEN_DATA_DIR and the default `../shared/data`. */
  dataDir?: string;
}

/** The data folder that would be used (absolute), and where that choice came from. */
export function resolveDataDir(options: DataDirOptions = {}): { dir: string; source: string } {
  if (options.dataDir !== undefined && options.dataDir !== '') {
    return { dir: resolve(options.dataDir), source: 'the dataDir option' };
  }
  const fromEnv = process.env[DATA_DIR_ENV];
  if (fromEnv !== undefined && fromEnv !== '') return { dir: resolve(fromEnv), source: `$${DATA_DIR_ENV}` };
  return { dir: resolve(PROJECT_ROOT, '..', 'shared', 'data'), source: 'the default ../shared/data' };
}

/** The data folder (absolute). Throws `DataUnavailableError` when it does not exist. */
export function dataDir(options: DataDirOptions = {}): string {
  const { dir, source } = resolveDataDir(options);
  if (!existsSync(dir)) {
    throw new DataUnavailableError(
      `data folder ${dir} (from ${source}) does not exist; set ${DATA_DIR_ENV} or pass dataDir to point at the shared data`,
      dir,
    );
  }
  return dir;
}

/**
 * Absolute path of `relative` (e.g. 'nlvr/dev/dev.json') inside the data folder.
 * Throws `DataUnavailableError` naming the path when the folder or the file is missing.
 */
export function dataPath(relative: string, options: DataDirOptions = {}): string {
  const path = resolve(dataDir(options), relative);
  if (!existsSync(path)) {
    throw new DataUnavailableError(
      `data file ${path} is missing (looked for ${relative} in the data folder)`,
      path,
    );
  }
  return path;
}

/**
 * For node:test's `skip`: false when every path exists, else the DataUnavailableError message.
 * Usage: `test('…', { skip: dataSkipReason('nlvr/dev/dev.json') }, async () => …)`.
 */
export function dataSkipReason(
  relatives: string | readonly string[],
  options: DataDirOptions = {},
): string | false {
  try {
    for (const rel of typeof relatives === 'string' ? [relatives] : relatives) dataPath(rel, options);
    return false;
  } catch (err) {
    if (err instanceof DataUnavailableError) return err.message;
    throw err;
  }
}
