/**
 * A tokenizer loaded from any Hugging Face `tokenizer.json` through `@huggingface/tokenizers`
 * (a JS port of the Rust library): ours from build-tokenizer.ts and a real Vicuna/LLaMA one take
 * the same path. Special tokens are found by name; a tokenizer without <pad> pads with <unk>
 * (as LLaVA does for LLaMA), and one without <image> marks image positions with the pad id
 * (the positions, not the id, tell the model where visual tokens go).
 */
import { readFile } from 'node:fs/promises';
import * as path from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { BadInputError } from '../errors.ts';
import type { TokenizerJson } from './build-tokenizer.ts';

export interface TextTokenizer {
  /** One more than the largest id (vocabulary plus added tokens): the LM's vocabSize. */
  readonly vocabSize: number;
  readonly bosId: number;
  readonly eosId: number;
  readonly padId: number;
  readonly unkId: number;
  /** Id written at image placeholder positions. */
  readonly imageId: number;
  /** Text to ids, with no special tokens added (templates add <s> and </s> themselves). */
  encode(text: string): number[];
  /** Ids to text; special tokens dropped unless `skipSpecial` is false. */
  decode(ids: readonly number[], options?: { skipSpecial?: boolean }): string;
  tokenToId(token: string): number | undefined;
  idToToken(id: number): string | undefined;
  /**
   * The chat template's system prompt, when tokenizer_config.json names one (`system_prompt`, as
   * sft-train writes it; '' for none). Absent: the template's default (Vicuna v1's). It travels with
   * the tokenizer so every stage after SFT (evaluation, reward models, PPO) prompts as SFT trained.
   */
  readonly systemPrompt?: string;
  /** The tokenizer.json object (and tokenizer_config.json) it was loaded from, for checkpoints. */
  readonly json: TokenizerJson;
  readonly config: Record<string, unknown>;
}

function tokenName(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (v && typeof v === 'object' && typeof (v as { content?: unknown }).content === 'string') return (v as { content: string }).content;
  return undefined;
}

/** Wraps a parsed tokenizer.json (and optional tokenizer_config.json). `source` names it in errors. */
export function tokenizerFromJson(json: TokenizerJson, config: Record<string, unknown> = {}, source = 'tokenizer.json'): TextTokenizer {
  if (!json || typeof json !== 'object' || typeof json.model !== 'object' || json.model === null) {
    throw new BadInputError('not a tokenizer.json: no "model" object', { file: source, fix: 'pass a Hugging Face tokenizer.json (or build one with buildTokenizer)' });
  }
  let tok: Tokenizer;
  try {
    tok = new Tokenizer(json, config);
  } catch (cause) {
    throw new BadInputError(`cannot load tokenizer: ${(cause as Error).message}`, { file: source, cause, fix: 'check that the file is a complete tokenizer.json' });
  }
  const vocab = tok.get_vocab(true);
  let maxId = -1;
  for (const id of vocab.values()) if (id > maxId) maxId = id;
  const find = (configKey: string, ...names: string[]): number | undefined => {
    const fromConfig = tokenName(config[configKey]);
    for (const n of fromConfig ? [fromConfig, ...names] : names) {
      const id = tok.token_to_id(n);
      if (id !== undefined) return id;
    }
    return undefined;
  };
  const unkId = find('unk_token', '<unk>');
  const eosId = find('eos_token', '</s>', '<|endoftext|>', '<|im_end|>');
  const bosId = find('bos_token', '<s>', '<|startoftext|>') ?? eosId;
  if (eosId === undefined || bosId === undefined) {
    throw new BadInputError('tokenizer has no end-of-sequence token (</s>)', { file: source, fix: 'name it in tokenizer_config.json as eos_token' });
  }
  const padId = find('pad_token', '<pad>') ?? unkId ?? eosId;
  const imageId = find('image_token', '<image>') ?? padId;
  const systemPrompt = config.system_prompt;
  if (systemPrompt !== undefined && (typeof systemPrompt !== 'string' || systemPrompt.includes('<image>'))) {
    throw new BadInputError(`tokenizer_config.json: system_prompt must be a string without "<image>", got ${JSON.stringify(systemPrompt).slice(0, 80)}`, { file: source, fix: 'give system_prompt as text ("" for none), or remove it for Vicuna v1\'s' });
  }
  const specials = new Set<number>();
  for (const [id, t] of tok.get_added_tokens_decoder()) if (t.special) specials.add(id);
  for (const id of [bosId, eosId, padId, imageId]) specials.add(id);

  return {
    vocabSize: maxId + 1,
    bosId,
    eosId,
    padId,
    unkId: unkId ?? padId,
    imageId,
    encode: (text) => (text.length === 0 ? [] : tok.encode(text, { add_special_tokens: false }).ids),
    decode(ids, options = {}) {
      const keep = options.skipSpecial === false ? [...ids] : ids.filter((id) => !specials.has(id));
      return keep.length === 0 ? '' : tok.decode(keep, { skip_special_tokens: false });
    },
    ...(systemPrompt === undefined ? {} : { systemPrompt }),
    tokenToId: (t) => tok.token_to_id(t),
    idToToken: (id) => tok.id_to_token(id),
    json,
    config,
  };
}

/**
 * Loads `tokenizer.json` from a file or a directory (a checkpoint or a Hugging Face model
 * folder); reads `tokenizer_config.json` beside it when present.
 */
export async function loadTokenizer(fileOrDir: string): Promise<TextTokenizer> {
  let file = fileOrDir;
  if (!file.endsWith('.json')) file = path.join(fileOrDir, 'tokenizer.json');
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (cause) {
    throw new BadInputError(`cannot read tokenizer: ${(cause as NodeJS.ErrnoException).code ?? (cause as Error).message}`, { file, cause, fix: 'point at a tokenizer.json or a folder holding one' });
  }
  let json: TokenizerJson;
  try {
    json = JSON.parse(text) as TokenizerJson;
  } catch (cause) {
    throw new BadInputError(`tokenizer is not valid JSON: ${(cause as Error).message}`, { file, cause, fix: 'regenerate the tokenizer.json' });
  }
  let config: Record<string, unknown> = {};
  try {
    config = JSON.parse(await readFile(path.join(path.dirname(file), 'tokenizer_config.json'), 'utf8')) as Record<string, unknown>;
  } catch {
    // optional file: specials fall back to the conventional names
  }
  return tokenizerFromJson(json, config, file);
}
