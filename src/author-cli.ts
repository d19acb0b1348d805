/**
 * `npm run author -- add <name>`: creates an author from a shell, on the
 * database DATABASE_URL names (the same configuration as the app). The
 * password comes from a prompt that does not echo it, or from stdin when
 * stdin is not a terminal (`… < password.txt`, a pipe); never from the
 * command line, where `ps` and the shell's history would keep it.
 *
 * Exit codes: 0 done, 1 refused (a bad name or password, a taken name, a
 * database that cannot be written), 2 usage.
 */
import { validateNewAuthor } from './author.js';
import { ConfigError, loadConfig, type Config } from './config.js';
import { isAppError } from './error.js';
import { hashPassword } from './password.js';
import { LiteFSNode } from './ryw/index.js';
import { SqliteAuthorStore } from './sqlite/author-store.js';
import { SqliteDatabase } from './sqlite/database.js';

export const USAGE = 'usage: npm run author -- add <name>, the password from a prompt or stdin';
/** More than this on stdin is not a password. */
const MAX_STDIN_BYTES = 64 * 1024;

class Exit extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

async function main(argv: readonly string[]): Promise<void> {
  if (argv.length === 1 && (argv[0] === '--help' || argv[0] === '-h')) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const [verb, name, ...rest] = argv;
  if (verb !== 'add') throw new Exit(2, verb === undefined ? 'no command given' : `unknown command ${JSON.stringify(verb)}`);
  if (name === undefined || name === '') throw new Exit(2, "add needs the author's name");
  if (rest.length > 0)
    throw new Exit(2, `add takes one name (quote a name with spaces, e.g. "Ada Lovelace"); the password is never an argument`);

  // The name is checked before the password is asked for.
  const nameOnly = validateNewAuthor({ name, password: 'x'.repeat(64) });
  if (!nameOnly.ok && nameOnly.errors.name) throw new Exit(1, nameOnly.errors.name);

  const config = configuration();
  // A LiteFS replica cannot write: authors are created on the primary. Its role as the app sees it.
  const node = new LiteFSNode({
    databasePath: config.databasePath,
    identity: { region: config.region, instance: config.instance },
    api: null,
  });
  const replica = node.role().role === 'replica';
  node.close();
  if (replica)
    throw new Exit(1, `this instance is a LiteFS replica (${config.databaseDir}/.primary exists): run the command on the primary`);

  const password = process.stdin.isTTY ? await promptTwice() : await passwordFromStdin();
  const checked = validateNewAuthor({ name, password });
  if (!checked.ok) throw new Exit(1, (checked.errors.name ?? checked.errors.password)!);

  // As the app does at start on a primary or standalone: the file and its schema may not exist yet.
  const database = new SqliteDatabase(config.databasePath, { create: true });
  try {
    database.migrate();
    const store = new SqliteAuthorStore(database);
    const author = store.create({ name: checked.value.name, passwordHash: await hashPassword(checked.value.password) })!;
    process.stdout.write(`Created author ${author.name} (id ${author.id}) in ${config.databasePath}. Sign in at /signin.\n`);
  } catch (error) {
    if (isAppError(error)) throw new Exit(1, error.message);
    throw error;
  } finally {
    database.close();
  }
}

function configuration(): Config {
  try {
    return loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) throw new Exit(1, error.message);
    throw error;
  }
}

/** The first line of stdin, without its line ending. */
async function passwordFromStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of process.stdin as AsyncIterable<Buffer>) {
    chunks.push(chunk);
    size += chunk.length;
    if (size > MAX_STDIN_BYTES) throw new Exit(1, `stdin holds more than ${MAX_STDIN_BYTES} bytes: give the password alone, on one line`);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  const line = text.split(/\r?\n/, 1)[0] ?? '';
  if (line === '') throw new Exit(1, 'no password on stdin (give it on the first line)');
  return line;
}

async function promptTwice(): Promise<string> {
  const first = await promptHidden('Password: ');
  const second = await promptHidden('Password again: ');
  if (first !== second) throw new Exit(1, 'the two passwords differ; nothing was created');
  return first;
}

/** Reads a line from the terminal without echoing it (raw mode; the prompt goes to stderr, so stdout stays the result). */
function promptHidden(question: string): Promise<string> {
  const stdin = process.stdin;
  process.stderr.write(question);
  stdin.setRawMode(true);
  stdin.setEncoding('utf8');
  stdin.resume();
  return new Promise((resolve, reject) => {
    let typed = '';
    const done = (error: Exit | null) => {
      stdin.setRawMode(false);
      stdin.pause();
      stdin.off('data', onData);
      process.stderr.write('\n');
      if (error) reject(error);
      else resolve(typed);
    };
    const onData = (chunk: string) => {
      for (const char of chunk) {
        if (char === '\r' || char === '\n') return done(null);
        if (char === '\u0003') return done(new Exit(130, 'interrupted; nothing was created'));
        if (char === '\u0004') return done(typed === '' ? new Exit(1, 'no password given; nothing was created') : null);
        if (char === '\u007f' || char === '\b') typed = [...typed].slice(0, -1).join('');
        else if (char >= ' ') typed += char;
      }
    };
    stdin.on('data', onData);
  });
}

try {
  await main(process.argv.slice(2));
} catch (error) {
  if (!(error instanceof Exit)) throw error;
  process.stderr.write(`author: ${error.message}${error.code === 2 ? ` (${USAGE})` : ''}\n`);
  process.exitCode = error.code;
}
