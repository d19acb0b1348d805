/**
 * `npm run bench -- --only a,b --update`: writes the sections this run
 * measured into docs/benchmarks.md and keeps every other one as it was
 * (sections of earlier runs, and those measured by hand or by other
 * benchmarks' owners), so that rerunning a few benchmarks does not erase
 * the rest.
 */

/** A document cut at its `## ` headings; the part before the first is `preamble`. */
interface Doc {
  readonly preamble: string[];
  readonly sections: { heading: string; lines: string[] }[];
}

function parse(markdown: string): Doc {
  const preamble: string[] = [];
  const sections: Doc['sections'] = [];
  let fenced = false;
  for (const line of markdown.split('\n')) {
    if (line.startsWith('```')) fenced = !fenced;
    if (!fenced && line.startsWith('## ')) sections.push({ heading: line, lines: [line] });
    else (sections.at(-1)?.lines ?? preamble).push(line);
  }
  return { preamble, sections };
}

/** The number of a generated section (`## 7. …` → 7), or null for one written by hand. */
const numberOf = (heading: string): number | null => {
  const match = /^## (\d+)\. /.exec(heading);
  return match ? Number(match[1]) : null;
};

const MACHINE = '## Machine and commands';

/**
 * `existing` with the preamble, the machine section and every numbered
 * section of `generated` put in place: a section of the same number is
 * replaced, a new one goes before the first section of a higher number or
 * written by hand.
 */
export function mergeDoc(existing: string, generated: string): string {
  const old = parse(existing);
  const fresh = parse(generated);
  const sections = [...old.sections];
  for (const section of fresh.sections) {
    const n = numberOf(section.heading);
    const at = sections.findIndex((s) => (section.heading === MACHINE ? s.heading === MACHINE : n !== null && numberOf(s.heading) === n));
    if (at !== -1) {
      sections[at] = section;
      continue;
    }
    const before = sections.findIndex((s) => {
      const m = numberOf(s.heading);
      return s.heading !== MACHINE && (m === null || (n !== null && m > n));
    });
    sections.splice(before === -1 ? sections.length : before, 0, section);
  }
  // Every section ends with one blank line, whichever document it came from.
  const lines = [...fresh.preamble, ...sections.flatMap((s) => trimEnd(s.lines).concat(''))];
  return `${trimEnd(lines).join('\n')}\n`;
}

function trimEnd(lines: readonly string[]): string[] {
  let end = lines.length;
  while (end > 0 && lines[end - 1]!.trim() === '') end--;
  return lines.slice(0, end);
}
