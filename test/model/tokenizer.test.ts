import test from 'ava';
import { writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { COLORS, SHAPES } from '../../schemas/shapes-world.ts';
import { buildTokenizer, tokenizerConfigFor } from '../../src/model/build-tokenizer.ts';
import { encodeConversation, encodePrompt, VICUNA_SYSTEM_PROMPT, type Turn } from '../../src/model/chat-template.ts';
import { loadTokenizer, tokenizerFromJson } from '../../src/model/tokenizer.ts';
import { tempDir } from '../helpers/temp-dir.ts';

function corpus(): string[] {
  const lines = [VICUNA_SYSTEM_PROMPT, 'USER: ASSISTANT:', 'Answer the question using a single word or phrase.', 'Yes', 'No'];
  for (const c of COLORS) for (const s of SHAPES) {
    lines.push(`Is there a ${c} ${s} in the image?`, `There is a small ${c} ${s} [0.120,0.340,0.560,0.980] and a large ${s}.`);
  }
  return lines;
}

const json = buildTokenizer(corpus(), { vocabSize: 400 });
const tok = tokenizerFromJson(json, tokenizerConfigFor());

test('built tokenizer: specials at LLaMA ids, round trip, frequent words are single tokens', (t) => {
  t.is(tok.unkId, 0); t.is(tok.bosId, 1); t.is(tok.eosId, 2); t.is(tok.padId, 3); t.is(tok.imageId, 4);
  const text = 'Is there a red circle in the image? Yes, a small red circle [0.120,0.340,0.560,0.980].';
  t.is(tok.decode(tok.encode(text)), text);
  t.deepEqual(tok.encode('red circle').map((id) => tok.idToToken(id)), ['\u2581red', '\u2581circle']);
  t.deepEqual(tok.encode('circle?').map((id) => tok.idToToken(id)), ['\u2581circle', '?']);
  t.true(tok.vocabSize <= 400 && tok.vocabSize > 100);
  t.is(tok.decode([tok.bosId, ...tok.encode('Yes'), tok.eosId]), 'Yes');
  t.is(tok.decode([...tok.encode('Yes'), tok.eosId], { skipSpecial: false }), 'Yes</s>');
  t.is(tok.decode([]), '');
});

test('built tokenizer: deterministic and loads from a file through the Hugging Face path', async (t) => {
  t.deepEqual(buildTokenizer(corpus(), { vocabSize: 400 }), json);
  const dir = await tempDir(t, 'ff-tok-');
  await writeFile(path.join(dir, 'tokenizer.json'), JSON.stringify(json));
  const loaded = await loadTokenizer(dir);
  t.deepEqual(loaded.encode('Is there a blue star?'), tok.encode('Is there a blue star?'));
  t.is(loaded.eosId, 2);
});

test('built tokenizer: a newline is a token of its own, so options read "green" then "B", never "green\\nB"', (t) => {
  const options = (a: string, b: string) => `What color is the star?\nA. ${a}\nB. ${b}\nAnswer with the option's letter from the given choices directly.`;
  const lines: string[] = [];
  // the pairs repeat often enough that BPE would merge across the newline if the pre-tokenizer let it
  for (let i = 0; i < 50; i++) for (const a of COLORS) for (const b of COLORS) if (a !== b) lines.push(options(a, b), 'A');
  const mc = tokenizerFromJson(buildTokenizer(lines, { vocabSize: 300 }), tokenizerConfigFor());
  const text = options('green', 'purple');
  const pieces = mc.encode(text).map((id) => mc.idToToken(id));
  t.false(pieces.includes(undefined), 'every id has a token');
  t.false(pieces.some((p) => p !== undefined && p.includes('\n') && p !== '\n'), pieces.join(' | '));
  t.deepEqual(pieces.slice(pieces.indexOf('\u2581green') - 3, pieces.indexOf('\u2581green') + 4), ['\n', 'A', '.', '\u2581green', '\n', 'B', '.']);
  t.is(mc.decode(mc.encode(text)), text);
});

test('loadTokenizer: a missing file and a non-tokenizer give FF_ERR_BAD_INPUT naming the file', async (t) => {
  const dir = await tempDir(t, 'ff-tok-');
  const e1 = await t.throwsAsync(loadTokenizer(path.join(dir, 'nope.json')));
  t.is((e1 as { code?: string }).code, 'FF_ERR_BAD_INPUT');
  t.true(e1!.message.includes('nope.json'));
  await writeFile(path.join(dir, 'tokenizer.json'), '{"version": "1.0"}');
  const e2 = await t.throwsAsync(loadTokenizer(dir));
  t.is((e2 as { code?: string }).code, 'FF_ERR_BAD_INPUT');
  t.true(e2!.message.includes(path.join(dir, 'tokenizer.json')));
});

test('chat template: Vicuna v1 layout, image expansion, and a loss mask exactly on the answers and their </s>', (t) => {
  const turns: Turn[] = [
    { from: 'human', value: '<image>\nIs there a red circle?' },
    { from: 'gpt', value: 'Yes' },
    { from: 'human', value: 'Is there a blue star?' },
    { from: 'gpt', value: 'No, there is a green star.' },
  ];
  const enc = encodeConversation(tok, turns, { imageTokens: 4 });
  const E = (s: string) => tok.encode(s);
  // built by hand, piece by piece
  const expected: [number[], 0 | 1][] = [
    [[tok.bosId], 0],
    [E(`${VICUNA_SYSTEM_PROMPT} USER:`), 0],
    [[4, 4, 4, 4], 0],
    [E('Is there a red circle? ASSISTANT:'), 0],
    [E('Yes'), 1], [[tok.eosId], 1],
    [E('USER: Is there a blue star? ASSISTANT:'), 0],
    [E('No, there is a green star.'), 1], [[tok.eosId], 1],
  ];
  const ids = expected.flatMap(([x]) => x);
  const mask = expected.flatMap(([x, m]) => x.map(() => m));
  t.deepEqual(enc.ids, ids);
  t.deepEqual(enc.lossMask, mask);
  const imgStart = 1 + E(`${VICUNA_SYSTEM_PROMPT} USER:`).length;
  t.deepEqual(enc.imagePositions, [imgStart, imgStart + 1, imgStart + 2, imgStart + 3]);
  // token by token: the masked tokens decode to exactly the two answers with their </s>
  const masked = enc.ids.filter((_, i) => enc.lossMask[i] === 1);
  t.is(tok.decode(masked, { skipSpecial: false }), 'Yes</s> No, there is a green star.</s>');
  t.is(enc.lossMask.filter((m) => m === 1).length, E('Yes').length + E('No, there is a green star.').length + 2);
  // the full text reads as the Vicuna template
  t.is(tok.decode(enc.ids.filter((id) => id !== 4), { skipSpecial: false }),
    `<s> ${VICUNA_SYSTEM_PROMPT} USER: Is there a red circle? ASSISTANT: Yes</s> USER: Is there a blue star? ASSISTANT: No, there is a green star.</s>`);
});

test('chat template: the generation prompt is the exact prefix of the training sequence', (t) => {
  const turns: Turn[] = [{ from: 'human', value: '<image>\nIs there a red circle?' }, { from: 'gpt', value: 'Yes' }];
  const full = encodeConversation(tok, turns, { imageTokens: 3 });
  const prompt = encodePrompt(tok, turns.slice(0, 1), { imageTokens: 3 });
  t.deepEqual(full.ids.slice(0, prompt.ids.length), prompt.ids);
  t.deepEqual(prompt.imagePositions, full.imagePositions);
  t.is(full.lossMask.indexOf(1), prompt.ids.length);
  t.true(tok.decode(prompt.ids).endsWith('ASSISTANT:'));
  // without an image budget the tag is dropped
  const noImg = encodePrompt(tok, [{ from: 'human', value: '<image>\nHi' }], { imageTokens: 0 });
  t.deepEqual(noImg.imagePositions, []);
  t.false(noImg.ids.includes(tok.imageId));
});

test('chat template: bad conversations give FF_ERR_BAD_RECORD with the turn', (t) => {
  const e1 = t.throws(() => encodeConversation(tok, [{ from: 'human', value: 'a' }, { from: 'gpt', value: 'b' }, { from: 'human', value: '<image> c' }, { from: 'gpt', value: 'd' }], { imageTokens: 2 }));
  t.is((e1 as { code?: string }).code, 'FF_ERR_BAD_RECORD');
  t.regex(e1!.message, /turn 2/);
  const e2 = t.throws(() => encodeConversation(tok, [{ from: 'gpt', value: 'a' }], { imageTokens: 2 }));
  t.regex(e2!.message, /turn 0 is from "gpt"/);
  const e3 = t.throws(() => encodePrompt(tok, [{ from: 'human', value: 'a' }, { from: 'gpt', value: 'b' }], { imageTokens: 2 }));
  t.regex(e3!.message, /ends with a "gpt" turn/);
});

test('system prompt: tokenizer_config.json\'s system_prompt opens every conversation, survives a save and load, and options override it', async (t) => {
  const turns: Turn[] = [{ from: 'human', value: '<image>\nIs there a red circle?' }, { from: 'gpt', value: 'Yes' }];
  const E = (s: string) => tok.encode(s);
  t.is(tok.systemPrompt, undefined);
  const none = tokenizerFromJson(json, { ...tokenizerConfigFor(), system_prompt: '' });
  t.is(none.systemPrompt, '');
  // none: "<s> USER: <image x2> Is there ... ASSISTANT: Yes</s>", shorter by exactly the system prompt's tokens
  const plain = encodeConversation(none, turns, { imageTokens: 2 });
  t.deepEqual(plain.ids, [tok.bosId, ...E('USER:'), 4, 4, ...E('Is there a red circle? ASSISTANT:'), ...E('Yes'), tok.eosId]);
  t.deepEqual(plain.imagePositions, [1 + E('USER:').length, 2 + E('USER:').length]);
  const vicuna = encodeConversation(tok, turns, { imageTokens: 2 });
  t.is(vicuna.ids.length - plain.ids.length, E(`${VICUNA_SYSTEM_PROMPT} USER:`).length - E('USER:').length);
  t.deepEqual(plain.lossMask.slice(-E('Yes').length - 1), vicuna.lossMask.slice(-E('Yes').length - 1));
  const own = tokenizerFromJson(json, { ...tokenizerConfigFor(), system_prompt: 'Answer the question.' });
  t.deepEqual(encodePrompt(own, turns.slice(0, 1), { imageTokens: 0 }).ids, [tok.bosId, ...E('Answer the question. USER: Is there a red circle? ASSISTANT:')]);
  // an explicit option wins over the tokenizer's, either way
  t.deepEqual(encodePrompt(none, turns.slice(0, 1), { imageTokens: 0, systemPrompt: VICUNA_SYSTEM_PROMPT }).ids, encodePrompt(tok, turns.slice(0, 1), { imageTokens: 0 }).ids);
  t.deepEqual(encodePrompt(tok, turns.slice(0, 1), { imageTokens: 0, systemPrompt: '' }).ids, encodePrompt(none, turns.slice(0, 1), { imageTokens: 0 }).ids);
  // written and read back as a checkpoint's tokenizer files are
  const dir = await tempDir(t, 'ff-tok-sys-');
  await writeFile(path.join(dir, 'tokenizer.json'), JSON.stringify(json));
  await writeFile(path.join(dir, 'tokenizer_config.json'), JSON.stringify(none.config));
  t.is((await loadTokenizer(dir)).systemPrompt, '');
  // a bad value names the file and the fix
  await writeFile(path.join(dir, 'tokenizer_config.json'), JSON.stringify({ ...tokenizerConfigFor(), system_prompt: 7 }));
  const err = await t.throwsAsync(loadTokenizer(dir));
  t.regex(err!.message, /system_prompt must be a string/);
  t.regex(err!.message, /tokenizer_config\.json|tokenizer\.json/);
  t.throws(() => tokenizerFromJson(json, { system_prompt: 'look: <image>' }), { message: /without "<image>"/ });
});
