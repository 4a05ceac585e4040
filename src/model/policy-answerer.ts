/**
 * ADAPTER (placeholder): the lead replaces this file with the real policy answerer built on
 * the model core (checkpoint loading + greedy generation). Until then it only checks its
 * arguments and throws CheckpointError, so `policy=DIR` fails clearly instead of silently.
 *
 * Contract the real implementation keeps: `loadPolicyAnswerer(dir, {backend, imageRoot,
 * maxNewTokens})` loads the policy checkpoint in `dir` and resolves to a function with the
 * shape of `Answerer` (src/eval/answerer.ts): `(items: {image, question}[], signal) =>
 * Promise<string[]>`, images read from `imageRoot`, greedy decoding, at most `maxNewTokens`
 * new tokens per answer. (The type is written out here because src/model imports nothing
 * outside the model.)
 */
import { CheckpointError } from '../errors.ts';

export interface PolicyAnswererOptions {
  /** tfjs backend name (`auto`, `webgpu`, `wasm`, ...). */
  backend: string;
  /** Folder the items' image paths are relative to. */
  imageRoot: string;
  maxNewTokens: number;
}

export type PolicyAnswerer = (items: { image: string; question: string }[], signal: AbortSignal) => Promise<string[]>;

export async function loadPolicyAnswerer(dir: string, options: PolicyAnswererOptions): Promise<PolicyAnswerer> {
  void options;
  throw new CheckpointError('policy answering needs the model core', {
    file: dir,
    fix: 'score existing answers with answers=FILE until the policy answerer is wired in',
  });
}
