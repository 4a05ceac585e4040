import test from 'ava';
import { buildTokenizer, tokenizerConfigFor } from '../../src/model/build-tokenizer.ts';
import { encodePrompt, VICUNA_SYSTEM_PROMPT, type Turn } from '../../src/model/chat-template.ts';
import { tokenizerFromJson } from '../../src/model/tokenizer.ts';
import {
  encodeRewardPrompt,
  evaluationText,
  FACTS_ABOVE,
  FACTS_FIRST_CORPUS,
  FACTS_FIRST_HEADER,
  FACTS_HEADER,
  orderFacts,
  REWARD_CLOSING,
  REWARD_PROMPT_CORPUS,
  REWARD_REQUEST,
  rewardPromptText,
  type RewardPromptInput,
} from '../../src/model/reward-prompt.ts';

const CAPTIONS = [
  'A red circle and a blue square on a white background.',
  'Two shapes: a red circle and a blue square.',
  'A small red circle at the top left of the image.',
];

const turns: Turn[] = [{ from: 'human', value: '<image>\nDescribe the image in detail.' }];
const record: RewardPromptInput = { id: 'img-7_0', turns, response: 'There is a red circle and a green star.', facts: CAPTIONS };

const tok = tokenizerFromJson(
  buildTokenizer([VICUNA_SYSTEM_PROMPT, 'USER: ASSISTANT:', ...REWARD_PROMPT_CORPUS, ...FACTS_FIRST_CORPUS, ...CAPTIONS, ...CAPTIONS, record.response, record.response, 'Describe the image in detail.'], { vocabSize: 600 }),
  tokenizerConfigFor(),
);

test('prompt text without facts (vanilla RLHF): conversation, response, evaluation request', (t) => {
  const text = rewardPromptText(record, { facts: false, seed: 1 });
  t.is(
    text,
    `${VICUNA_SYSTEM_PROMPT} USER: <image>\nDescribe the image in detail. ASSISTANT: There is a red circle and a green star.</s>` +
      'USER: Please evaluate the quality of your last response. A good response is accurate, helpful, natural and concise. ' +
      'ASSISTANT: The quality score of my last response is',
  );
  // facts given but switched off, or facts on but none given: the same prompt
  t.is(rewardPromptText({ ...record, facts: [] }, { facts: true, seed: 1 }), text);
});

test('prompt text with facts (Fact-RLHF): the captions one per line after the criteria, in the seeded order', (t) => {
  const text = rewardPromptText(record, { facts: true, seed: 1 });
  const order = orderFacts(record.id, CAPTIONS, 1);
  t.is(
    text,
    `${VICUNA_SYSTEM_PROMPT} USER: <image>\nDescribe the image in detail. ASSISTANT: There is a red circle and a green star.</s>` +
      'USER: Please evaluate the quality of your last response. A good response is accurate, helpful, natural and concise. ' +
      'The response should be fully supported by the combination of the following captions:\n' +
      `${order[0]}\n${order[1]}\n${order[2]} ` +
      'ASSISTANT: The quality score of my last response is',
  );
  t.true(text.includes('accurate, helpful, natural and concise'));
  t.is(evaluationText(order), `USER: ${REWARD_REQUEST} ${FACTS_HEADER}\n${order.join('\n')} ${REWARD_CLOSING}`);
});

test('caption order: a permutation, deterministic in (record id, seed), varying across records and seeds', (t) => {
  const a = orderFacts('img-7_0', CAPTIONS, 1);
  t.deepEqual(orderFacts('img-7_0', CAPTIONS, 1), a);
  t.deepEqual([...a].sort(), [...CAPTIONS].sort());
  const five = ['c1', 'c2', 'c3', 'c4', 'c5'];
  const orders = new Set<string>();
  for (let i = 0; i < 20; i++) orders.add(orderFacts(`rec-${i}`, five, 1).join('|'));
  for (let s = 0; s < 20; s++) orders.add(orderFacts('rec-0', five, s).join('|'));
  t.true(orders.size > 10, `only ${orders.size} distinct orders`);
  // blank captions are dropped, whitespace collapsed
  t.deepEqual(orderFacts('x', ['  a  b ', '', '   '], 3), ['a b']);
});

test('no EOS: a response cut at the token limit is not closed with </s>', (t) => {
  const text = rewardPromptText({ ...record, endedWithEos: false }, { facts: false, seed: 1 });
  t.true(text.includes('a green star. USER: Please evaluate'));
  const enc = encodeRewardPrompt(tok, { ...record, endedWithEos: false }, { facts: false, seed: 1, imageTokens: 4 });
  t.false(enc.ids.slice(enc.response[0], enc.response[1]).includes(tok.eosId));
});

test('encoding: the policy prompt is a prefix, image positions come from the template, pieces line up', (t) => {
  const enc = encodeRewardPrompt(tok, record, { facts: true, seed: 1, imageTokens: 4 });
  const prompt = encodePrompt(tok, turns, { imageTokens: 4 });
  t.deepEqual(enc.ids.slice(0, prompt.ids.length), prompt.ids);
  t.deepEqual(enc.imagePositions, prompt.imagePositions);
  const [s, e] = enc.response;
  t.is(s, prompt.ids.length);
  t.deepEqual(enc.ids.slice(s, e), [...tok.encode(record.response), tok.eosId]);
  t.is(tok.decode(enc.ids.slice(e)), `USER: ${REWARD_REQUEST} ${FACTS_HEADER}\n${orderFacts(record.id, CAPTIONS, 1).join('\n')} ${REWARD_CLOSING}`);
  t.is(enc.factsGiven, 3);
  t.is(enc.factsKept, 3);
  const vanilla = encodeRewardPrompt(tok, record, { facts: false, seed: 1, imageTokens: 4 });
  t.deepEqual(vanilla.ids.slice(0, e), enc.ids.slice(0, e));
  t.true(vanilla.ids.length < enc.ids.length);
  t.is(vanilla.factsKept, 0);
});

test('factsAt start: the captions follow the system prompt, the response reads them before the request', (t) => {
  const order = orderFacts(record.id, CAPTIONS, 1);
  const text = rewardPromptText(record, { facts: true, seed: 1, factsAt: 'start' });
  t.is(
    text,
    `${VICUNA_SYSTEM_PROMPT} ${FACTS_FIRST_HEADER}\n${order.join('\n')} USER: <image>\nDescribe the image in detail. ASSISTANT: There is a red circle and a green star.</s>` +
      `USER: ${REWARD_REQUEST} ${FACTS_ABOVE} ${REWARD_CLOSING}`,
  );
  // no captions: the same prompt as vanilla
  t.is(rewardPromptText(record, { facts: false, seed: 1, factsAt: 'start' }), rewardPromptText(record, { facts: false, seed: 1 }));
  const enc = encodeRewardPrompt(tok, record, { facts: true, seed: 1, imageTokens: 4, factsAt: 'start' });
  const prompt = encodePrompt(tok, turns, { imageTokens: 4, systemPrompt: `${VICUNA_SYSTEM_PROMPT} ${FACTS_FIRST_HEADER}\n${order.join('\n')}` });
  t.deepEqual(enc.ids.slice(0, prompt.ids.length), prompt.ids);
  t.deepEqual(enc.imagePositions, prompt.imagePositions);
  const [s, e] = enc.response;
  t.is(s, prompt.ids.length);
  t.deepEqual(enc.ids.slice(s, e), [...tok.encode(record.response), tok.eosId]);
  t.is(tok.decode(enc.ids.slice(e)), `USER: ${REWARD_REQUEST} ${FACTS_ABOVE} ${REWARD_CLOSING}`);
  t.is(enc.factsKept, 3);
  // truncation drops captions from the end of the order, and the response moves up with them
  const full = enc.ids.length;
  const cut = encodeRewardPrompt(tok, record, { facts: true, seed: 1, imageTokens: 4, factsAt: 'start', maxLength: full - 1 });
  t.is(cut.factsKept, 2);
  t.true(cut.ids.length <= full - 1);
  t.deepEqual(cut.ids.slice(cut.response[0], cut.response[1]), [...tok.encode(record.response), tok.eosId]);
  t.true(tok.decode(cut.ids).includes(order[1]!) && !tok.decode(cut.ids).includes(order[2]!));
  t.throws(() => encodeRewardPrompt(tok, record, { facts: true, seed: 1, imageTokens: 4, factsAt: 'middle' as never }), { message: /factsAt/ });
});

test('truncation: captions are dropped from the end of the seeded order; the response is never cut', (t) => {
  const full = encodeRewardPrompt(tok, record, { facts: true, seed: 1, imageTokens: 4 });
  const vanilla = encodeRewardPrompt(tok, record, { facts: false, seed: 1, imageTokens: 4 });
  const order = orderFacts(record.id, CAPTIONS, 1);
  // room for the first caption only
  const limit = full.response[1] + tok.encode(evaluationText(order.slice(0, 1))).length + 1;
  const cut = encodeRewardPrompt(tok, record, { facts: true, seed: 1, imageTokens: 4, maxLength: limit });
  t.is(cut.factsKept, 1);
  t.true(cut.ids.length <= limit && cut.ids.length < full.ids.length);
  t.deepEqual(cut.ids.slice(cut.response[0], cut.response[1]), full.ids.slice(full.response[0], full.response[1]));
  t.true(tok.decode(cut.ids).includes(order[0]!));
  t.false(tok.decode(cut.ids).includes(order[1]!));
  // no room for any caption: the prompt falls back to the vanilla one
  const none = encodeRewardPrompt(tok, record, { facts: true, seed: 1, imageTokens: 4, maxLength: vanilla.ids.length });
  t.deepEqual(none.ids, vanilla.ids);
  t.is(none.factsKept, 0);
  t.is(none.factsGiven, 3);
});

test('a prompt too long without any caption is a BadRecordError giving the lengths', (t) => {
  const vanilla = encodeRewardPrompt(tok, record, { facts: false, seed: 1, imageTokens: 4 });
  const err = t.throws(() => encodeRewardPrompt(tok, record, { facts: true, seed: 1, imageTokens: 4, maxLength: vanilla.ids.length - 1 }));
  t.is((err as { code?: string }).code, 'FF_ERR_BAD_RECORD');
  t.regex(err!.message, new RegExp(`${vanilla.ids.length} tokens without facts .*over the limit ${vanilla.ids.length - 1}`));
});

test('bad input: empty response, <image> in the response, bad options', (t) => {
  const e1 = t.throws(() => encodeRewardPrompt(tok, { ...record, response: '  ', endedWithEos: false }, { facts: true, seed: 1, imageTokens: 4 }));
  t.is((e1 as { code?: string }).code, 'FF_ERR_BAD_RECORD');
  t.regex(e1!.message, /empty and did not end with <\/s>/);
  // an immediate </s> is scored: the response is the single </s> token
  const eosOnly = encodeRewardPrompt(tok, { ...record, response: '', endedWithEos: true }, { facts: true, seed: 1, imageTokens: 4 });
  t.deepEqual(eosOnly.ids.slice(eosOnly.response[0], eosOnly.response[1]), [tok.eosId]);
  const e2 = t.throws(() => rewardPromptText({ ...record, response: '<image> hi' }, { facts: true, seed: 1 }));
  t.is((e2 as { code?: string }).code, 'FF_ERR_BAD_RECORD');
  const e3 = t.throws(() => encodeRewardPrompt(tok, record, { facts: true, seed: 1, imageTokens: 4, maxLength: 0 }));
  t.is((e3 as { code?: string }).code, 'FF_ERR_INVALID_OPTION');
  t.regex(e3!.message, /maxLength/);
  const e4 = t.throws(() => encodeRewardPrompt(tok, record, { facts: 'yes' as unknown as boolean, seed: 1, imageTokens: 4 }));
  t.regex(e4!.message, /option "facts"/);
});

test('maxFacts keeps the first captions of the seeded order', (t) => {
  const order = orderFacts(record.id, CAPTIONS, 1);
  const two = encodeRewardPrompt(tok, record, { facts: true, seed: 1, imageTokens: 4, maxFacts: 2 });
  t.is(two.factsKept, 2);
  t.is(two.factsGiven, 3);
  t.is(tok.decode(two.ids.slice(two.response[1])), evaluationText(order.slice(0, 2)));
  const zero = encodeRewardPrompt(tok, record, { facts: true, seed: 1, imageTokens: 4, maxFacts: 0 });
  t.deepEqual(zero.ids, encodeRewardPrompt(tok, record, { facts: false, seed: 1, imageTokens: 4 }).ids);
  t.regex(t.throws(() => encodeRewardPrompt(tok, record, { facts: true, seed: 1, imageTokens: 4, maxFacts: -1 }))!.message, /maxFacts/);
});


test('factMatch: 1 on each response token that occurs in the kept captions; none without facts', (t) => {
  const enc = encodeRewardPrompt(tok, record, { facts: true, seed: 1, imageTokens: 4 });
  const response = enc.ids.slice(enc.response[0], enc.response[1]);
  t.is(enc.factMatch.length, response.length);
  const words = response.map((id) => tok.decode([id]).trim());
  const matched = words.filter((_, i) => enc.factMatch[i] === 1);
  // "There is a red circle and a green star." against captions with red circles and blue squares
  t.true(matched.includes('red') && matched.includes('circle'), `matched: ${matched}`);
  t.false(matched.includes('green') || matched.includes('star'), `matched: ${matched}`);
  t.is(enc.factMatch[enc.factMatch.length - 1], 0, '</s> matches nothing');
  const vanilla = encodeRewardPrompt(tok, record, { facts: false, seed: 1, imageTokens: 4 });
  t.deepEqual(vanilla.factMatch, new Array<number>(vanilla.factMatch.length).fill(0));
  // other captions, other matches
  const one = encodeRewardPrompt(tok, { ...record, facts: ['A green star.'] }, { facts: true, seed: 1, imageTokens: 4 });
  const oneWords = one.ids.slice(one.response[0], one.response[1]).map((id) => tok.decode([id]).trim()).filter((_, i) => one.factMatch[i] === 1);
  t.true(oneWords.includes('green') && !oneWords.includes('red'), `matched: ${oneWords}`);
});

test('the reward prompt opens with the tokenizer\'s system prompt: none leaves the captions first, or "USER:" first without them', (t) => {
  const none = tokenizerFromJson(tok.json, { ...tok.config, system_prompt: '' });
  const order = orderFacts(record.id, CAPTIONS, 1);
  const atStart = encodeRewardPrompt(none, record, { facts: true, seed: 1, imageTokens: 4, factsAt: 'start' });
  const prompt = encodePrompt(none, turns, { imageTokens: 4, systemPrompt: `${FACTS_FIRST_HEADER}\n${order.join('\n')}` });
  t.deepEqual(atStart.ids.slice(0, prompt.ids.length), prompt.ids);
  t.deepEqual(atStart.ids.slice(1, 1 + tok.encode(FACTS_FIRST_HEADER).length), tok.encode(FACTS_FIRST_HEADER));
  const vanilla = encodeRewardPrompt(none, record, { facts: false, seed: 1, imageTokens: 4 });
  t.deepEqual(vanilla.ids.slice(0, 1 + tok.encode('USER:').length), [tok.bosId, ...tok.encode('USER:')]);
  // the same prompts under Vicuna's are longer by exactly its tokens
  const vicuna = encodeRewardPrompt(tok, record, { facts: false, seed: 1, imageTokens: 4 });
  t.is(vicuna.ids.length - vanilla.ids.length, tok.encode(`${VICUNA_SYSTEM_PROMPT} USER:`).length - tok.encode('USER:').length);
  t.is(rewardPromptText(record, { facts: true, seed: 1, factsAt: 'start', systemPrompt: '' }).split(' USER:')[0], `${FACTS_FIRST_HEADER}\n${order.join('\n')}`);
  t.true(rewardPromptText(record, { facts: false, seed: 1, systemPrompt: '' }).startsWith('USER: <image>'));
});
