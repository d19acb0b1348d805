/**
 * A hash of everything the project's Dockerfile copies into the app image.
 * `setup-docker.sh` labels the image with it; the container tier compares it
 * with the working tree, so that a test never runs an image built from older
 * source than the one being tested. Run directly, it prints the hash.
 */
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The image label that carries the hash. */
export const SOURCE_HASH_LABEL = 'org.litefs-ryw.source-hash';
/** What the Dockerfile COPYs (and the files that decide how it builds). */
export const IMAGE_SOURCES: readonly string[] = [
  'Dockerfile',
  '.dockerignore',
  'package.json',
  'package-lock.json',
  'tsconfig.json',
  'tsconfig.build.json',
  'litefs.yml',
  'src',
  'views',
  'public',
];

export async function imageSourceHash(root: string): Promise<string> {
  const files: string[] = [];
  for (const entry of IMAGE_SOURCES) files.push(...(await listFiles(join(root, entry))));
  const hash = createHash('sha256');
  for (const file of files.map((f) => relative(root, f)).sort()) {
    const content = await readFile(join(root, file));
    hash.update(`${file}\0${createHash('sha256').update(content).digest('hex')}\n`);
  }
  return hash.digest('hex').slice(0, 16);
}

async function listFiles(path: string): Promise<string[]> {
  const entries = await readdir(path, { withFileTypes: true }).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOTDIR') return null; // a file
    if (err.code === 'ENOENT') return [];
    throw err;
  });
  if (entries === null) return [path];
  const files: string[] = [];
  for (const entry of entries) {
    const child = join(path, entry.name);
    if (entry.isDirectory()) files.push(...(await listFiles(child)));
    else if (entry.isFile()) files.push(child);
  }
  return files;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  console.log(await imageSourceHash(resolve(process.argv[2] ?? '.')));
}
