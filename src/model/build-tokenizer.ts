/**
 * Trains a small byte-pair-encoding tokenizer on a corpus and writes it as a Hugging Face
 * `tokenizer.json`, the format of a real Vicuna/LLaMA tokenizer, so that both load through
 * the same code (`loadTokenizer`). Like LLaMA's: Metaspace ("▁" marks a preceding space),
 * special tokens <unk>=0 <s>=1 </s>=2, plus <pad> and <image>; punctuation is split off so
 * "circle?" and "circle" share a token, and every newline is a token of its own (as LLaMA's
 * <0x0A>), so a line's last word never merges with the next line's first: multiple-choice
 * options "A. green\nB. purple" must read "green" and "B", not one token "green\nB" that ties
 * a colour to the next option's letter. Deterministic: the same corpus gives the same file.
 */
import { InvalidOptionError } from '../errors.ts';

export const SPECIAL_TOKENS = ['<unk>', '<s>', '</s>', '<pad>', '<image>'] as const;
const SPACE = '\u2581';

export interface BuildTokenizerOptions {
  /** Upper bound on the vocabulary (specials + alphabet + merges). Default 1024. */
  vocabSize?: number;
  /** A pair must occur this often to be merged. Default 2. */
  minFrequency?: number;
}

/** The JSON object of a tokenizer.json; opaque outside the tokenizer modules. */
export type TokenizerJson = Record<string, unknown>;

/** Splits text the way the tokenizer's pre-tokenizer does: Metaspace words, punctuation and newlines isolated. */
export function preTokenize(text: string): string[] {
  const out: string[] = [];
  for (const word of text.split(' ')) {
    const w = SPACE + word;
    // Punctuation "Isolated" and Split("\n", "Isolated"): each such character is its own piece
    let cur = '';
    for (const ch of w) {
      if (ch === '\n' || /\p{P}/u.test(ch)) {
        if (cur) out.push(cur);
        out.push(ch);
        cur = '';
      } else cur += ch;
    }
    if (cur) out.push(cur);
  }
  return out;
}

/** Learns BPE merges over the corpus's words and returns the tokenizer.json object. */
export function buildTokenizer(corpus: Iterable<string>, options: BuildTokenizerOptions = {}): TokenizerJson {
  const vocabSize = options.vocabSize ?? 1024;
  const minFrequency = options.minFrequency ?? 2;
  if (!Number.isInteger(vocabSize) || vocabSize < 128) throw new InvalidOptionError('vocabSize', `must be an integer >= 128, got ${vocabSize}`);
  if (!Number.isInteger(minFrequency) || minFrequency < 1) throw new InvalidOptionError('minFrequency', `must be a positive integer, got ${minFrequency}`);

  const wordCounts = new Map<string, number>();
  for (const text of corpus) {
    for (const piece of preTokenize(text)) wordCounts.set(piece, (wordCounts.get(piece) ?? 0) + 1);
  }

  // alphabet: printable ASCII, the space marker, newline, and any other character seen
  const alphabet = new Set<string>([SPACE, '\n']);
  for (let c = 32; c < 127; c++) if (c !== 32) alphabet.add(String.fromCharCode(c));
  for (const w of wordCounts.keys()) for (const ch of w) alphabet.add(ch);
  const vocab = new Map<string, number>();
  for (const s of SPECIAL_TOKENS) vocab.set(s, vocab.size);
  for (const ch of [...alphabet].sort()) vocab.set(ch, vocab.size);

  // words as symbol lists, sorted so that tie-breaking never depends on insertion order
  const words = [...wordCounts.entries()].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)).map(([w, n]) => ({ syms: [...w], n }));
  const merges: [string, string][] = [];
  while (vocab.size < vocabSize) {
    const pairs = new Map<string, number>();
    for (const { syms, n } of words) {
      for (let i = 0; i + 1 < syms.length; i++) {
        const key = syms[i] + '\u0000' + syms[i + 1];
        pairs.set(key, (pairs.get(key) ?? 0) + n);
      }
    }
    let best: string | undefined;
    let bestN = 0;
    for (const [k, n] of pairs) {
      if (n > bestN || (n === bestN && best !== undefined && k < best)) { best = k; bestN = n; }
    }
    if (best === undefined || bestN < minFrequency) break;
    const [a, b] = best.split('\u0000') as [string, string];
    const merged = a + b;
    merges.push([a, b]);
    if (!vocab.has(merged)) vocab.set(merged, vocab.size);
    for (const w of words) {
      const s = w.syms;
      for (let i = 0; i + 1 < s.length; i++) {
        if (s[i] === a && s[i + 1] === b) s.splice(i, 2, merged);
      }
    }
  }

  const metaspace = { type: 'Metaspace', replacement: SPACE, prepend_scheme: 'always', split: true };
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: SPECIAL_TOKENS.map((content, id) => ({
      id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true,
    })),
    normalizer: null,
    pre_tokenizer: {
      type: 'Sequence',
      pretokenizers: [
        metaspace,
        { type: 'Punctuation', behavior: 'Isolated' },
        { type: 'Split', pattern: { String: '\n' }, behavior: 'Isolated', invert: false },
      ],
    },
    post_processor: null,
    decoder: metaspace,
    model: {
      type: 'BPE', dropout: null, unk_token: '<unk>', continuing_subword_prefix: null, end_of_word_suffix: null,
      fuse_unk: true, byte_fallback: false, ignore_merges: false,
      vocab: Object.fromEntries(vocab),
      merges: merges.map(([a, b]) => `${a} ${b}`),
    },
  };
}

/** The companion tokenizer_config.json (names of the special tokens), as Hugging Face writes it. */
export function tokenizerConfigFor(): Record<string, unknown> {
  return { bos_token: '<s>', eos_token: '</s>', unk_token: '<unk>', pad_token: '<pad>', add_bos_token: false, add_eos_token: false, model_max_length: 1_000_000 };
}
