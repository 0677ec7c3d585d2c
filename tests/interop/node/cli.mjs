// Command-line plumbing shared by the Node interop drivers (interop.mjs, oauth.mjs): the
// output contract of tests/interop/README.md (the result on stdout and exit status 0, or
// one `error: <message>` line on stderr and exit status 1), strict flag parsing, and
// reading JSON files.

import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

/** Error raised for a usage or policy failure detected by a driver itself. */
export class InteropError extends Error {}

/** Reads a file that must hold a single JSON object, naming the file in any error. */
export function readJsonObject(path) {
  let text;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new InteropError(`cannot read ${path}: ${err.message}`);
  }
  let value;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new InteropError(`${path} is not valid JSON: ${err.message}`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new InteropError(`${path} must contain a JSON object`);
  }
  return value;
}

/** Parses argv into [command spec, flags], enforcing the command's required flags. */
function parseCommandLine(commands, script, argv) {
  const [command, ...rest] = argv;
  const spec = commands[command];
  if (spec === undefined) {
    const names = Object.keys(commands).join('|');
    throw new InteropError(`usage: ${script} <${names}> [flags] (got ${JSON.stringify(command ?? '')})`);
  }
  let values;
  try {
    ({ values } = parseArgs({ args: rest, options: spec.options, strict: true, allowPositionals: false }));
  } catch (err) {
    throw new InteropError(err.message);
  }
  for (const name of spec.required) {
    if (values[name] === undefined) {
      throw new InteropError(`${command}: --${name} is required`);
    }
  }
  return [spec, values];
}

/**
 * Runs the command named by process.argv: `commands` maps a name to
 * `{options, required, run}`. Any failure becomes one `error:` line and exit status 1.
 */
export async function runCli(commands, script) {
  try {
    const [spec, values] = parseCommandLine(commands, script, process.argv.slice(2));
    await spec.run(values);
  } catch (err) {
    // jose errors carry a machine-readable code (e.g. ERR_JWT_EXPIRED); include it so
    // test failures are easy to diagnose.
    const code = err && typeof err.code === 'string' ? `${err.code}: ` : '';
    const message = err instanceof Error ? err.message : String(err);
    process.stderr.write(`error: ${code}${message}`.replace(/\s*\n\s*/g, ' ') + '\n');
    process.exitCode = 1;
  }
}
