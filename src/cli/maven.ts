/**
 * `maven` — the command line. Each subcommand lives in its own file under src/cli/commands/ and
 * exports `{ name, summary, usage, run(argv) }`.
 */

import { readFileSync } from 'node:fs';
import { type Command, UsageError } from './command.ts';
import { dataCommand } from './commands/data.ts';
import { demoCommand } from './commands/demo.ts';
import { evalCommand } from './commands/eval.ts';
import { exportCommand } from './commands/export.ts';
import { generateCommand } from './commands/generate.ts';
import { labelsCommand } from './commands/labels.ts';
import { quantizeCommand } from './commands/quantize.ts';
import { serveCommand } from './commands/serve.ts';
import { trainCommand } from './commands/train.ts';
import { PACKAGE_JSON } from './default-model.ts';

const commands: Command[] = [
  demoCommand,
  generateCommand,
  trainCommand,
  labelsCommand,
  dataCommand,
  evalCommand,
  serveCommand,
  exportCommand,
  quantizeCommand,
];

function help(): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  return [
    'usage: maven <command> [options]',
    '',
    'commands:',
    ...commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    "run 'maven <command> --help' for a command's options; 'maven --version' for the version",
  ].join('\n');
}

function version(): string {
  const pkg = JSON.parse(readFileSync(PACKAGE_JSON, 'utf8')) as { name: string; version: string };
  return `${pkg.name} ${pkg.version} (node ${process.version})`;
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    console.log(help());
    return name ? 0 : 1;
  }
  if (name === '--version' || name === '-V' || name === 'version') {
    console.log(version());
    return 0;
  }
  const command = commands.find((c) => c.name === name);
  if (!command) {
    console.error(`maven: unknown command '${name}'\n\n${help()}`);
    return 2;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    console.log(command.usage);
    return 0;
  }
  return command.run(rest);
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    console.error(`maven: ${e instanceof Error ? e.message : String(e)}`);
    if (process.env.MAVEN_DEBUG && e instanceof Error) console.error(e.stack);
    process.exitCode = e instanceof UsageError ? 2 : 1;
  },
);
