/** The shape of a `maven` subcommand, and small helpers for parsing its options. */
export interface Command {
  name: string;
  summary: string;
  usage: string;
  /** Returns the process exit code; throws for errors that should be printed as `maven: …`. */
  run(argv: string[]): Promise<number>;
}

export class UsageError extends Error {}

export function numberOption(
  value: string | undefined,
  name: string,
  check?: (n: number) => boolean,
): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || (check && !check(n)))
    throw new UsageError(`--${name}: invalid value '${value}'`);
  return n;
}
