import test from 'ava';
import { buildTokenizer, tokenizerConfigFor } from '../../src/model/build-tokenizer.ts';
import { tokenizerFromJson } from '../../src/model/tokenizer.ts';
import { estimateTokens, tokenLength } from '../../transforms/token-length.ts';
import { runStage } from '../sources/harness.ts';

const rec = (id: string, text: string) => ({ id, image: 'a.jpg', conversations: [{ from: 'human', value: `<image>\n${text}` }, { from: 'gpt', value: 'Ok.' }] });

test('word estimate: drops records over the limit, reports a histogram', async (t) => {
  const stage = tokenLength<ReturnType<typeof rec>>({ maxTokens: 20, bins: [8, 16, 32] });
  const input = [rec('a', 'one two three'), rec('b', 'word '.repeat(12)), rec('c', 'word '.repeat(30))];
  const { items, rejected, notes } = await runStage(stage, input);
  t.deepEqual(items.map((r) => r.id), ['a', 'b']);
  // c: "<image>" + 30 words + "Ok." = 32 words -> ceil(32*4/3) = 43 tokens
  t.is(rejected[0]!.reason, '43 tokens (word-estimate) is over the limit of 20');
  const r = stage.report();
  t.is(r.records, 3);
  t.is(r.dropped, 1);
  t.deepEqual(r.bins.map((b) => b.count), [1, 0, 1, 1]); // a: 5 words -> 7; b: 14 words -> 19; c: 43
  t.is(r.max, 43);
  t.regex(notes[0]!, /1 over 20/);
  t.is(estimateTokens('a b  c\n'), 4);
});

test('a tokenizer.json counts real tokens; imageTokens are added for records with an image', async (t) => {
  const json = buildTokenizer(['the cat sat on the mat', 'a dog ran'], { vocabSize: 300 });
  const tokenizer = tokenizerFromJson(json, tokenizerConfigFor());
  const text = 'the cat sat';
  const expected = tokenizer.encode(`<image>\n${text}\nOk.`).length + 10;
  const stage = tokenLength({ tokenizer, imageTokens: 10, maxTokens: expected });
  const { items } = await runStage(stage, [rec('a', text)]);
  t.is(items.length, 1);
  t.is(stage.report().max, expected);
  t.is(stage.report().method, 'tokenizer');
  const strict = tokenLength({ tokenizer, imageTokens: 10, maxTokens: expected - 1 });
  t.is((await runStage(strict, [rec('a', text)])).rejected.length, 1);
});
