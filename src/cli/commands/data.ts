/** `maven data stats`: what the data pipeline produces, as counts and a contact sheet. */
import { parseArgs } from 'node:util';
import { runDataStats } from '../../data/data-stats.ts';
import { type Command, numberOption, UsageError } from '../command.ts';

const usage = `usage: maven data stats [options]

Counts per split, task and category of the generated multi-image tasks (and the Fashion-MNIST
tasks when the data folder has it), and a contact sheet PNG of sample examples with their
questions and answers.

options:
  --per-task N     examples generated per task and split for the counts (default 500)
  --samples N      examples per task on the contact sheet (default 2)
  --seed S         generator seed (default 0)
  --out FILE.png   contact sheet path (default data-stats.png; '' for none)
  --data DIR       data folder (default $MAVEN_DATA_DIR or ../shared/data)`;

export const dataCommand: Command = {
  name: 'data',
  summary: 'data statistics and a contact sheet of generated examples (maven data stats)',
  usage,
  async run(argv) {
    const [sub, ...rest] = argv;
    if (sub !== 'stats') throw new UsageError(`unknown 'maven data' subcommand '${sub ?? ''}'\n\n${usage}`);
    const { values } = parseArgs({
      args: rest,
      options: {
        'per-task': { type: 'string' },
        samples: { type: 'string' },
        seed: { type: 'string' },
        out: { type: 'string' },
        data: { type: 'string' },
      },
    });
    const count = (n: number) => Number.isInteger(n) && n >= 0;
    await runDataStats({
      perTask: numberOption(values['per-task'], 'per-task', count),
      samples: numberOption(values.samples, 'samples', count),
      seed: numberOption(values.seed, 'seed', Number.isInteger),
      out: values.out,
      dataDir: values.data,
    });
    return 0;
  },
};
