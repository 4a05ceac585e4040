import test from 'ava';
import {
  correctnessBonus,
  DEFAULT_SHAPING_COEFS,
  readYesNo,
  resolveShapingCoefs,
  shapeReward,
  tokenRewards,
  type ShapeRewardInput,
} from '../../src/rl/reward-shaping.ts';

const near = (a: number, b: number, tol = 1e-12) => Math.abs(a - b) <= tol;

// Common case: RM score 1.5, 20 of at most 100 tokens, length_bonus 1:
// length = -10 * 20 / 100 * 1 = -2
const base: ShapeRewardInput = {
  rewardModel: 1.5,
  responseTokens: 20,
  maxResponseTokens: 100,
  lengthBonus: 1,
  captionType: 1,
  responseText: 'There is a red circle.',
  endedWithEos: true,
};

test('caption_type 1 (general): RM + length only', (t) => {
  const r = shapeReward(base);
  t.deepEqual(r.terms, { reward_model: 1.5, length: -2, correctness: 0, no_eos: 0 });
  t.true(near(r.total, -0.5)); // 1.5 - 2
});

test('length term scales with length_bonus and the coefficient', (t) => {
  // -10 * 20 / 100 * 0.5 = -1
  t.is(shapeReward({ ...base, lengthBonus: 0.5 }).terms.length, -1);
  // -4 * 50 / 100 * 1 = -2
  t.is(shapeReward({ ...base, responseTokens: 50 }, { lengthCoef: 4 }).terms.length, -2);
  // length_bonus missing -> 1
  const { lengthBonus: _omit, ...noBonus } = base;
  t.is(shapeReward(noBonus).terms.length, -2);
});

test('caption_types 2-5 (multiple choice): "X." at the start or "correct option is X."', (t) => {
  const mc = (captionType: number, responseText: string) => shapeReward({ ...base, captionType, responseText });
  // 2 = A: "A. ..." -> +1; total = 1.5 - 2 + 1 = 0.5
  t.true(near(mc(2, 'A. The circle is red.').total, 0.5));
  t.is(mc(3, '  B. leading spaces are trimmed').terms.correctness, 1);
  t.is(mc(4, 'The square is left of the star. So the correct option is C.').terms.correctness, 1);
  t.is(mc(5, 'D. yes').terms.correctness, 1);
  t.is(mc(3, 'A. wrong letter').terms.correctness, 0);
  t.is(mc(3, 'the correct option is B').terms.correctness, 0, 'needs the final period, as the reference');
  t.is(mc(3, 'b. lower case').terms.correctness, 0, 'case-sensitive, as the reference');
  t.is(mc(3, 'B').terms.correctness, 0, 'a bare letter is not rewarded by default (DESIGN.md literally)');
  t.is(shapeReward({ ...base, captionType: 3, responseText: ' B ' }, { acceptBareLetter: true }).terms.correctness, 1);
  t.is(shapeReward({ ...base, captionType: 2, responseText: 'A. x' }, { correctBonus: 2 }).terms.correctness, 2);
});

test('caption_type 6 ("No" questions): +0.5 for No, -0.5 for Yes, 0 otherwise', (t) => {
  const no = (responseText: string, coefs = {}) => shapeReward({ ...base, captionType: 6, responseText }, coefs).terms.correctness;
  t.is(no('No, there is no star.'), 0.5);
  t.is(no('no.'), 0.5, 'first word, case-insensitive, punctuation stripped');
  t.is(no('Yes, there is a star.'), -0.5);
  t.is(no('YES!'), -0.5);
  t.is(no('There is no star.'), 0, 'only the first word counts');
  t.is(no('Nobody knows'), 0);
  // reference mode: startswith("No") / startswith("Yes"), case-sensitive
  t.is(no('Nobody knows', { yesNoMatch: 'reference' }), 0.5);
  t.is(no('no, none', { yesNoMatch: 'reference' }), 0);
  // total: 1.5 - 2 + 0.5 = 0
  t.true(near(shapeReward({ ...base, captionType: 6, responseText: 'No.' }).total, 0));
});

test('caption_type 7 ("Yes" questions): 0 by default, mirror of 6 on request', (t) => {
  const yes = (responseText: string, coefs = {}) => shapeReward({ ...base, captionType: 7, responseText }, coefs).terms.correctness;
  t.is(yes('Yes, there is.'), 0);
  t.is(yes('No.'), 0);
  t.is(yes('Yes, there is.', { rewardYesQuestions: true }), 0.5);
  t.is(yes('No.', { rewardYesQuestions: true }), -0.5);
});

test('no EOS: additive -8 by default; replace mode swaps out the RM score', (t) => {
  const add = shapeReward({ ...base, endedWithEos: false });
  // 1.5 - 2 + 0 - 8 = -8.5
  t.is(add.terms.no_eos, -8);
  t.true(near(add.total, -8.5));
  const rep = shapeReward({ ...base, endedWithEos: false }, { noEosMode: 'replace' });
  // RM 1.5 replaced by -8: no_eos = -8 - 1.5 = -9.5; total = -8 - 2 = -10
  t.is(rep.terms.no_eos, -9.5);
  t.true(near(rep.total, -10));
  const t2 = rep.terms;
  t.true(near(t2.reward_model + t2.length + t2.correctness + t2.no_eos, rep.total), 'terms sum to the total');
  t.is(shapeReward({ ...base, endedWithEos: false }, { noEosPenalty: -3 }).terms.no_eos, -3);
});

test('EOS and correctness together (multiple choice, truncated)', (t) => {
  // 1.5 - 2 + 1 - 8 = -7.5
  t.true(near(shapeReward({ ...base, captionType: 2, responseText: 'A. the', endedWithEos: false }).total, -7.5));
});

test('bad records throw FF_ERR_BAD_RECORD; bad coefficients FF_ERR_INVALID_OPTION with their path', (t) => {
  for (const bad of [
    { captionType: 9 },
    { captionType: 2.5 },
    { rewardModel: Number.NaN },
    { responseTokens: -1 },
    { maxResponseTokens: 0 },
  ]) {
    const e = t.throws(() => shapeReward({ ...base, ...bad }));
    t.is((e as { code?: string }).code, 'FF_ERR_BAD_RECORD', JSON.stringify(bad));
  }
  const e = t.throws(() => resolveShapingCoefs({ lengthCoef: Number.POSITIVE_INFINITY }, 'params.shaping'));
  t.is((e as { code?: string }).code, 'FF_ERR_INVALID_OPTION');
  t.regex(e!.message, /"params\.shaping\.lengthCoef"/);
  t.throws(() => resolveShapingCoefs({ yesNoMatch: 'loose' as never }), { message: /shaping\.yesNoMatch/ });
  t.deepEqual(resolveShapingCoefs({ lengthCoef: undefined }), { ...DEFAULT_SHAPING_COEFS });
});

test('readYesNo and correctnessBonus directly', (t) => {
  t.is(readYesNo('  "Yes," he said'), 'yes');
  t.is(readYesNo(''), null);
  t.is(correctnessBonus(1, 'anything'), 0);
});

test('per-token rewards: -klCoef * kl on each token, terminal added to the last', (t) => {
  // kl = [0.1, 0, 0.3], coef 0.1: [-0.01, 0, -0.03 + 2] = [-0.01, 0, 1.97]
  const r = tokenRewards(2, [0.1, 0, 0.3], 0.1);
  t.true(near(r[0]!, -0.01) && Object.is(r[1], 0) && near(r[2]!, 1.97));
  t.deepEqual(tokenRewards(-1, [0.5], 0), [-1]);
  const e = t.throws(() => tokenRewards(1, [], 0.1));
  t.is((e as { code?: string }).code, 'FF_ERR_BAD_RECORD');
});
