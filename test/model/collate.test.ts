import test from 'ava';
import { buildTokenizer, tokenizerConfigFor } from '../../src/model/build-tokenizer.ts';
import { encodeConversation, type Turn } from '../../src/model/chat-template.ts';
import { bucketByLength, bucketWindow, collate, encodeExample, realTokens, turnWeights, type TrainExample } from '../../src/model/collate.ts';
import { tokenizerFromJson } from '../../src/model/tokenizer.ts';
import { Rng } from '../../src/stream/random.ts';

const SYSTEM = 'A chat.';
const tok = tokenizerFromJson(
  buildTokenizer(['A chat. USER: ASSISTANT:', 'Is there a red circle? Yes No', 'What color is the star? It is blue.', 'How many shapes are there? Three.'], { vocabSize: 200 }),
  tokenizerConfigFor(),
);
const N_IMG = 4;
const pixels = () => new Float32Array(2 * 2 * 3).fill(0.5);

const rounds = (n: number): Turn[] => {
  const turns: Turn[] = [];
  for (let i = 0; i < n; i++) {
    turns.push({ from: 'human', value: `${i === 0 ? '<image>\n' : ''}Is there a red circle?` }, { from: 'gpt', value: i % 2 ? 'No' : 'Yes' });
  }
  return turns;
};

test('encodeExample: ids, loss mask on the answers only, image positions', (t) => {
  const e = encodeExample(tok, 'r1', rounds(2), pixels(), { imageTokens: N_IMG, maxLength: 200, systemPrompt: SYSTEM });
  const ref = encodeConversation(tok, rounds(2), { imageTokens: N_IMG, systemPrompt: SYSTEM });
  t.deepEqual([...e.ids], ref.ids);
  t.deepEqual([...e.lossMask], ref.lossMask);
  t.is(e.imagePositions.length, N_IMG);
  t.true([...e.imagePositions].every((p) => e.ids[p] === tok.imageId));
  // the masked tokens decode to exactly the two answers with their </s>
  const learned = [...e.ids].filter((_, i) => e.lossMask[i]);
  t.is(tok.decode(learned, { skipSpecial: false }).replace(/ /g, ''), 'Yes</s>No</s>');
  t.is(e.id, 'r1');
});

test('encodeExample: over max_length keeps the leading rounds under "truncate", rejects under "skip"', (t) => {
  const full = encodeExample(tok, 'x', rounds(6), pixels(), { imageTokens: N_IMG, maxLength: 1000, systemPrompt: SYSTEM });
  const two = encodeExample(tok, 'x', rounds(2), pixels(), { imageTokens: N_IMG, maxLength: 1000, systemPrompt: SYSTEM });
  const cut = encodeExample(tok, 'x', rounds(6), pixels(), { imageTokens: N_IMG, maxLength: two.ids.length + 2, systemPrompt: SYSTEM });
  t.deepEqual([...cut.ids], [...two.ids]);
  const err = t.throws(() => encodeExample(tok, 'x', rounds(6), pixels(), { imageTokens: N_IMG, maxLength: two.ids.length, overflow: 'skip', systemPrompt: SYSTEM }));
  t.is((err as { code?: string }).code, 'FF_ERR_BAD_RECORD');
  t.true(err!.message.includes(`${full.ids.length} tokens`) && err!.message.includes(`max_length ${two.ids.length}`), err!.message);
});

test('encodeExample: a first round longer than max_length, and <image> without an image, are rejected with reasons', (t) => {
  const e1 = t.throws(() => encodeExample(tok, 'x', rounds(1), pixels(), { imageTokens: N_IMG, maxLength: 8, systemPrompt: SYSTEM }));
  t.is((e1 as { code?: string }).code, 'FF_ERR_BAD_RECORD');
  t.regex(e1!.message, /first round alone has \d+ tokens/);
  const e2 = t.throws(() => encodeExample(tok, 'x', rounds(1), null, { imageTokens: N_IMG, maxLength: 100, systemPrompt: SYSTEM }));
  t.is((e2 as { code?: string }).code, 'FF_ERR_BAD_RECORD');
  t.regex(e2!.message, /holds <image> but the record has no image/);
  const e3 = t.throws(() => encodeExample(tok, 'x', [{ from: 'gpt', value: 'Yes' }], null, { imageTokens: N_IMG, maxLength: 100 }));
  t.is((e3 as { code?: string }).code, 'FF_ERR_BAD_RECORD');
});

test('collate: right padding, masks, images; a text-only row gets no image positions', (t) => {
  const a = encodeExample(tok, 'a', rounds(1), pixels(), { imageTokens: N_IMG, maxLength: 200, systemPrompt: SYSTEM });
  const b = encodeExample(tok, 'b', [{ from: 'human', value: 'How many shapes are there?' }, { from: 'gpt', value: 'Three.' }], null, { imageTokens: N_IMG, maxLength: 200, systemPrompt: SYSTEM });
  const batch = collate([a, b], { padId: tok.padId, imageTokens: N_IMG, pixelsPerImage: 12, padMultiple: 8 });
  const L = Math.ceil(Math.max(a.ids.length, b.ids.length) / 8) * 8;
  t.is(batch.batch, 2);
  t.is(batch.length, L);
  t.deepEqual([...batch.ids.subarray(0, a.ids.length)], [...a.ids]);
  t.true([...batch.ids.subarray(a.ids.length, L)].every((id) => id === tok.padId));
  t.is([...batch.attentionMask!.subarray(L, 2 * L)].reduce((x, y) => x + y, 0), b.ids.length);
  t.deepEqual([...batch.lossMask.subarray(L, L + b.ids.length)], [...b.lossMask]);
  t.true([...batch.lossMask.subarray(L + b.ids.length, 2 * L)].every((m) => m === 0));
  t.deepEqual([...batch.imagePositions!.subarray(0, N_IMG)], [...a.imagePositions]);
  t.deepEqual([...batch.imagePositions!.subarray(N_IMG)], [-1, -1, -1, -1]);
  t.is(batch.images!.length, 24);
  t.true([...batch.images!.subarray(12)].every((v) => v === 0));
  t.is(realTokens(batch), a.ids.length + b.ids.length);
  const textOnly = collate([b], { padId: tok.padId, imageTokens: N_IMG, pixelsPerImage: 12 });
  t.is(textOnly.images, null);
  t.is(textOnly.imagePositions, null);
  t.throws(() => collate([], { padId: 0, imageTokens: N_IMG, pixelsPerImage: 12 }), { code: 'FF_ERR_INVALID_OPTION' });
});

const fake = (id: number, len: number): TrainExample => ({ id: String(id), ids: new Int32Array(len), lossMask: new Uint8Array(len), imagePositions: new Int32Array(0), pixels: null });

test('turnWeights: each run of answer tokens shares weight 1; collate with lossWeighting "turn" writes them', (t) => {
  t.deepEqual([...turnWeights(Uint8Array.from([0, 1, 1, 0, 0, 1, 1, 1, 1, 0, 1]))], [0, 0.5, 0.5, 0, 0, 0.25, 0.25, 0.25, 0.25, 0, 1]);
  const ex = encodeExample(tok, 'a', rounds(2), pixels(), { imageTokens: N_IMG, maxLength: 200, systemPrompt: SYSTEM });
  const tokenBatch = collate([ex], { padId: tok.padId, imageTokens: N_IMG, pixelsPerImage: 12 });
  const turnBatch = collate([ex], { padId: tok.padId, imageTokens: N_IMG, pixelsPerImage: 12, lossWeighting: 'turn' });
  t.true(tokenBatch.lossMask instanceof Uint8Array);
  t.true(turnBatch.lossMask instanceof Float32Array);
  // two answers: the weights sum to 2, and are non-zero exactly where the token mask is
  t.true(Math.abs([...turnBatch.lossMask].reduce((a, x) => a + x, 0) - 2) < 1e-6);
  t.deepEqual([...turnBatch.lossMask].map((w) => w > 0), [...tokenBatch.lossMask].map((w) => w > 0));
  t.throws(() => collate([ex], { padId: tok.padId, imageTokens: N_IMG, pixelsPerImage: 12, lossWeighting: 'row' as never }), { message: /lossWeighting/ });
});

test('bucketWindow: batches hold neighbours in length, order seeded and deterministic', (t) => {
  const items = Array.from({ length: 24 }, (_, i) => fake(i, 10 + ((i * 7) % 24)));
  const batches = bucketWindow(items, (e) => e.ids.length, 4, new Rng(5));
  t.is(batches.length, 6);
  for (const b of batches) {
    const lens = b.map((e) => e.ids.length);
    t.true(Math.max(...lens) - Math.min(...lens) <= 3, `spread ${lens}`);
  }
  t.deepEqual(bucketWindow(items, (e) => e.ids.length, 4, new Rng(5)).map((b) => b.map((e) => e.id)), batches.map((b) => b.map((e) => e.id)));
});

test('bucketByLength: every item exactly once, windows of windowBatches x batchSize, last batch partial', async (t) => {
  async function* gen() { for (let i = 0; i < 37; i++) yield fake(i, 5 + (i % 9)); }
  const out: TrainExample[][] = [];
  for await (const b of bucketByLength(gen(), (e) => e.ids.length, { batchSize: 4, windowBatches: 3, seed: 1 })) out.push(b);
  t.deepEqual(out.flat().map((e) => Number(e.id)).sort((x, y) => x - y), Array.from({ length: 37 }, (_, i) => i));
  t.is(out.length, 10);
  t.is(out.filter((b) => b.length < 4).length, 1);
  // the first window (12 items) is exactly the first 12 inputs
  t.deepEqual(out.slice(0, 3).flat().map((e) => Number(e.id)).sort((x, y) => x - y), Array.from({ length: 12 }, (_, i) => i));
  await t.throwsAsync(async () => { for await (const _ of bucketByLength(gen(), () => 1, { batchSize: 0, seed: 1 })) void _; }, { code: 'FF_ERR_INVALID_OPTION' });
});
