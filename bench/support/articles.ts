import Database from 'better-sqlite3';
import { seededRandom } from '../../tools/checker/random.js';
import { migrate } from '../../src/sqlite/migrations.js';
import { searchableText } from '../../src/sqlite/search-text.js';

/**
 * Made-up but shaped-like-text articles: words from a fixed vocabulary drawn
 * with a Zipf-like skew, so that some search terms hit thousands of articles
 * and some a handful, as in a real blog.
 */

const SYLLABLES = [
  'ka',
  'lo',
  'mi',
  'ser',
  'tan',
  'vo',
  'ri',
  'nel',
  'pa',
  'dun',
  'fi',
  'gro',
  'he',
  'jas',
  'ku',
  'bre',
  'sto',
  'wi',
  'zel',
  'mon',
];
export const VOCABULARY_SIZE = 4_000;

export function vocabulary(): string[] {
  const words = new Set<string>();
  const random = seededRandom(7);
  while (words.size < VOCABULARY_SIZE) {
    const n = 2 + Math.floor(random() * 3);
    let word = '';
    for (let i = 0; i < n; i++) word += SYLLABLES[Math.floor(random() * SYLLABLES.length)];
    words.add(word);
  }
  return [...words];
}

/** The word of rank `rank` (0 = most common) in the vocabulary. */
export function wordOfRank(rank: number): string {
  return vocabulary()[rank]!;
}

/** The start of 218 words of the vocabulary, among them some of the most common (ranks 5, 28, 32…): the costliest prefix. */
export const WORST_PREFIX = 'ser';
/** A Japanese sentence in every tenth article (`seedArticles`), and a word inside it the search must find. */
export const CJK_SENTENCE = '東京都に住んでいます。毎朝、電車で通勤します。';
export const CJK_SAMPLE = '東京';

function zipfPicker(words: readonly string[], random: () => number): () => string {
  // Inverse-CDF of a 1/rank distribution over the vocabulary.
  const weights = words.map((_, i) => 1 / (i + 1));
  const total = weights.reduce((a, b) => a + b, 0);
  const cdf: number[] = [];
  let sum = 0;
  for (const w of weights) cdf.push((sum += w / total));
  return () => {
    const r = random();
    let lo = 0;
    let hi = cdf.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cdf[mid]! < r) lo = mid + 1;
      else hi = mid;
    }
    return words[lo]!;
  };
}

/** Creates (or extends) a migrated database with `count` articles of about `words` words each. */
export function seedArticles(path: string, count: number, options: { words?: number; seed?: number } = {}): void {
  const db = new Database(path);
  try {
    migrate(db);
    const random = seededRandom(options.seed ?? 42);
    const pick = zipfPicker(vocabulary(), random);
    const wordsPer = options.words ?? 300;
    // What the store indexes: the text with CJK runs cut into words (the content has no markup).
    const insert = db.prepare('INSERT INTO articles (title, content, search_text, created, updated) VALUES (?, ?, ?, ?, ?)');
    const start = Date.UTC(2024, 0, 1);
    db.transaction(() => {
      for (let i = 0; i < count; i++) {
        const title = Array.from({ length: 3 + Math.floor(random() * 5) }, pick).join(' ');
        const paragraphs = Array.from({ length: 3 }, () => Array.from({ length: Math.round(wordsPer / 3) }, pick).join(' ') + '.');
        if (i % 10 === 0) paragraphs.push(CJK_SENTENCE);
        const created = new Date(start + i * 3_600_000).toISOString();
        const content = paragraphs.join('\n\n');
        insert.run(title, content, searchableText(content), created, created);
      }
    })();
  } finally {
    db.close();
  }
}
