/**
 * Validators answer "is the shape right?" with compiled yes/no checks and build reason
 * text only on failure: they must flag every record `checkFields` flags, with its reason.
 */
import test from 'ava';
import { conversationSchema } from '../../schemas/conversation.ts';
import { evalSchema } from '../../schemas/eval.ts';
import type { FieldSpec, RecordSchema } from '../../schemas/field.ts';
import { rolloutSchema } from '../../schemas/rollout.ts';
import { checkFields, checkImagePath, checkTurns, defineRecordSchema } from '../../schemas/validate-util.ts';
import { Rng } from '../../src/stream/random.ts';

const BAD_VALUES: unknown[] = [null, undefined, '', 'text', 0, -1, 1.5, 300, 2 ** 40, NaN, Infinity, true, 5n, 2n ** 70n, [], ['a'], [1, 2], {}, { from: 'human' }, new Float32Array(2), new Date(0)];

/** Copies `value` with one random leaf or key changed, added or removed. */
function mutate(rng: Rng, value: unknown): unknown {
  if (Array.isArray(value)) {
    if (value.length === 0 || rng.next() < 0.2) return [...value, rng.pick(BAD_VALUES)];
    const i = rng.int(value.length);
    const copy = [...value];
    copy[i] = rng.next() < 0.3 ? rng.pick(BAD_VALUES) : mutate(rng, copy[i]);
    return copy;
  }
  if (value !== null && typeof value === 'object' && !ArrayBuffer.isView(value)) {
    const copy: Record<string, unknown> = { ...(value as Record<string, unknown>) };
    const keys = Object.keys(copy);
    const r = rng.next();
    if (r < 0.1) copy[`extra${rng.int(3)}`] = 1;
    else if (r < 0.2 && keys.length > 0) delete copy[rng.pick(keys)];
    else if (keys.length > 0) {
      const k = rng.pick(keys);
      copy[k] = rng.next() < 0.4 ? rng.pick(BAD_VALUES) : mutate(rng, copy[k]);
    }
    return copy;
  }
  return rng.pick(BAD_VALUES);
}

function agrees<T>(t: import('ava').ExecutionContext, schema: RecordSchema<T>, good: unknown, seed: number): void {
  const rng = new Rng(seed);
  let flagged = 0;
  for (let i = 0; i < 3000; i++) {
    let r = good;
    for (let k = rng.range(1, 3); k > 0; k--) r = mutate(rng, r);
    const shape = checkFields(schema.fields, r);
    if (shape === null) continue;
    flagged++;
    t.is(schema.validate(r), shape);
  }
  t.true(flagged > 1000);
}

test('conversation: every shape error checkFields finds is the reason validate gives', (t) => {
  const good = { id: 'c1', image: 'coco/1.jpg', conversations: [{ from: 'human', value: '<image>\nQ?' }, { from: 'gpt', value: 'A.' }], source: 'vqav2', meta: '' };
  t.is(conversationSchema.validate(good), null);
  agrees(t, conversationSchema, good, 1);
});

test('rollout and eval (numbers, typed arrays, nullable ints and bools) agree too', (t) => {
  const rollout = {
    id: 'r', image: null, conversations: [{ from: 'human', value: 'Say hi.' }], caption_type: 2, length_bonus: 1, facts: ['f'],
    response: 'Hi.', response_tokens: 2, ended_with_eos: true, logprobs: new Float32Array([-1, -2]), ref_logprobs: [-1, -2], values: [0, 1],
    reward_model: 0.5, reward_total: 0.5, reward_length: 0, reward_correctness: 1, reward_no_eos: 0, kl_mean: 0.1, policy_version: 3,
  };
  t.is(rolloutSchema.validate(rollout), null);
  agrees(t, rolloutSchema, rollout, 2);
  const evalRecord = { question_id: 'q', image: 'a.jpg', question: 'Q?', question_type: 'attribute', gt_answer: 'A', facts: [], model_answer: 'B', score: null, hallucinated: null, judge_text: '' };
  t.is(evalSchema.validate(evalRecord), null);
  agrees(t, evalSchema, evalRecord, 3);
});

test('int64 fields and nested structs: range, bigint and unknown keys', (t) => {
  const fields: FieldSpec[] = [
    { name: 'n', type: 'int64' },
    { name: 'box', type: { struct: [{ name: 'label', type: 'string', nullable: true }, { name: 'xy', type: { list: 'int32' } }] }, nullable: true },
  ];
  const schema = defineRecordSchema({ name: 'x', version: 1, fields });
  t.is(schema.validate({ n: 2n ** 62n, box: null }), null);
  t.is(schema.validate({ n: 2n ** 63n, box: null }), 'field "n" is out of int64 range.');
  t.is(schema.validate({ n: 1, box: { label: null, xy: [1], z: 0 } }), 'field "box.z" is not part of the schema.');
  agrees(t, schema, { n: 1, box: { label: 'a', xy: [1, 2] } }, 4);
});

test('the rule fast paths keep their reasons', (t) => {
  t.is(checkImagePath('C:/x.jpg'), 'field "image" must be relative to the image root, got absolute path "C:/x.jpg".');
  t.is(checkImagePath('\\\\srv\\x.jpg'), 'field "image" must be relative to the image root, got absolute path "\\\\\\\\srv\\\\x.jpg".');
  t.is(checkImagePath('a/../b.jpg'), 'field "image" must not contain a ".." segment, got "a/../b.jpg".');
  t.is(checkImagePath('a/..b/c..d.jpg'), null);
  t.is(checkImagePath(' \u3000'), 'field "image" is an empty path; use null for a text-only record.');
  const turns = (a: string) => [{ from: 'human' as const, value: a }, { from: 'gpt' as const, value: 'A.' }];
  t.is(checkTurns(turns('<image>\n\u00a0 '), { image: 'x.jpg', ending: 'gpt' }), 'turn 0 has no text after "<image>\\n".');
  t.is(checkTurns(turns('<image>\nQ <image>'), { image: 'x.jpg', ending: 'gpt' }), 'turn 0 holds "<image>" outside the start of the first human turn.');
  t.is(checkTurns(turns('Q <image>'), { image: null, ending: 'gpt' }), 'turn 0 holds "<image>" but the record has no image.');
  t.is(checkTurns(turns('\n\t'), { image: null, ending: 'gpt' }), 'turn 0 has an empty value.');
  t.is(checkTurns(turns(' Q?'), { image: null, ending: 'gpt' }), null);
});
