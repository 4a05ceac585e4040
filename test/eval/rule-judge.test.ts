import test from 'ava';
import { checkClaim, explainVerdict, positionMatches, ruleJudge, ruleVerdict } from '../../src/eval/rule-judge.ts';
import type { ShapesTruth } from '../../src/eval/judge.ts';
import { parseRating } from '../../src/eval/parse-rating.ts';

// 300x300 image; thirds at 100 and 200 (positions from box centres):
//   small red circle    centre ( 40, 40)  top left
//   large blue star     centre (250,160)  right
//   small green square  centre (150,250)  bottom
//   small green square  centre ( 40,240)  bottom left
const truth: ShapesTruth = {
  width: 300,
  height: 300,
  background: 'grey',
  objects: [
    { shape: 'circle', color: 'red', size: 'small', box: [20, 20, 60, 60] },
    { shape: 'star', color: 'blue', size: 'large', box: [210, 120, 290, 200] },
    { shape: 'square', color: 'green', size: 'small', box: [130, 230, 170, 270] },
    { shape: 'square', color: 'green', size: 'small', box: [20, 220, 60, 260] },
  ],
};

const judge = (question: string, gt_answer: string, response: string) => ruleVerdict({ question, gt_answer, response }, truth);

test('existence question: bare yes, detailed yes, wrong no', (t) => {
  const q = 'Is there a red circle in the image?';
  const gt = 'Yes, there is a red circle.';
  // "Yes." -> red circle (true, 1 fact); answers the question -> somewhat informative -> 4
  t.like(judge(q, gt, 'Yes.'), { score: 4, hallucinated: false, trueFacts: 1, answersQuestion: true });
  // + small red circle at the top left (1 + 1 for the position) -> 3 facts -> very informative -> 5
  t.like(judge(q, gt, 'Yes, there is a small red circle at the top left.'), { score: 5, trueFacts: 3 });
  // a wrong denial is not a hallucination: not informative -> 3
  t.like(judge(q, gt, 'No.'), { score: 3, hallucinated: false, trueFacts: 0, answersQuestion: false });
  t.like(ruleVerdict({ question: q, gt_answer: gt, response: 'No.' }, truth, { falseDenialIsHallucination: true }), { score: 0, hallucinated: true });
});

test('adversarial question about an absent object', (t) => {
  const q = 'Is there a yellow star in the image?';
  const gt = 'No, there is no yellow star.';
  t.like(judge(q, gt, 'Yes, there is a yellow star.'), { score: 0, hallucinated: true, answersQuestion: false });
  t.like(judge(q, gt, 'No.'), { score: 4, hallucinated: false, trueFacts: 1, answersQuestion: true });
  // answered without a leading no, by denial
  t.like(judge(q, gt, 'There is no yellow star, but there is a blue star on the right.'), { score: 6 - 1, hallucinated: false });
});

test('counting: exact counts are checked', (t) => {
  const q = 'How many squares are there?';
  const gt = 'There are two squares.';
  // "2" -> exactly 2 squares (1 + 1 for the count) -> 2 facts, answers -> 5
  t.like(judge(q, gt, '2'), { score: 5, trueFacts: 2, answersQuestion: true });
  t.like(judge(q, gt, 'There are three squares.'), { score: 0, hallucinated: true });
  t.like(judge(q, gt, 'Two green squares.'), { score: 5, hallucinated: false });
  t.like(judge('How many shapes are in the image?', 'Four.', 'There are five shapes.'), { hallucinated: true, score: 0 });
});

test('attribute questions: colour, size, position, background', (t) => {
  t.like(judge('What color is the star?', 'The star is blue.', 'Blue.'), { score: 4, hallucinated: false, answersQuestion: true });
  t.like(judge('What color is the star?', 'The star is blue.', 'The star is red.'), { score: 0, hallucinated: true });
  t.like(judge('Is the blue star small or large?', 'It is large.', 'Small.'), { score: 0, hallucinated: true });
  t.like(judge('Is the blue star small or large?', 'It is large.', 'The blue star is large.'), { score: 4, hallucinated: false });
  t.like(judge('Where is the blue star?', 'The blue star is on the right.', 'On the right side.'), { score: 5, answersQuestion: true });
  t.like(judge('Where is the blue star?', 'The blue star is on the right.', 'At the top left.'), { hallucinated: true });
  t.like(judge('What color is the background?', 'The background is grey.', 'Gray.'), { score: 4, hallucinated: false });
  t.like(judge('What color is the background?', 'The background is grey.', 'White.'), { score: 0, hallucinated: true });
  t.like(judge('What shape is the red object?', 'It is a circle.', 'A circle.'), { hallucinated: false, answersQuestion: true });
  t.like(judge('What shape is the red object?', 'It is a circle.', 'A square.'), { hallucinated: true, answersQuestion: false });
});

test('relations between two objects', (t) => {
  const q = 'Is the red circle to the left of the blue star?';
  t.like(judge(q, 'Yes.', 'Yes, the red circle is to the left of the blue star.'), { score: 5, hallucinated: false, trueFacts: 3 });
  t.like(judge(q, 'Yes.', 'No.'), { score: 3, hallucinated: false });
  // the reverse relation is false; the two objects are real -> somewhat informative, with hallucination
  const v = judge(q, 'Yes.', 'The blue star is to the left of the red circle.');
  t.like(v, { score: 1, hallucinated: true, trueFacts: 2, answersQuestion: false });
  t.true(v.claims.some((c) => c.verdict === 'hallucinated' && c.claim.kind === 'relation'));
  // above / below use the centres: circle (y 40) is above the squares (y 240-250)
  t.like(judge('Describe the image.', '', 'The red circle is above the green square.'), { hallucinated: false });
  t.like(judge('Describe the image.', '', 'The red circle is below the green square.'), { hallucinated: true });
});

test('holistic description: full and correct -> 6; one invented object -> 2; nothing -> 3', (t) => {
  const q = 'Describe the image in detail.';
  const gt = 'There are four shapes: a small red circle, a large blue star and two small green squares on a grey background.';
  const full =
    'The image shows four shapes on a grey background. There is a small red circle at the top left. ' +
    'A large blue star can be seen on the right. Two green squares sit at the bottom.';
  // facts: 4 objects (1+1), grey background (1), small red circle top left (2), large blue star right (2),
  // 2 green squares bottom (1+1+1) -> 10; covers red circle, blue star, green square -> answers; positions -> 6
  t.like(judge(q, gt, full), { score: 6, hallucinated: false, trueFacts: 10, answersQuestion: true });
  t.like(judge(q, gt, `${full} You can also see a purple hexagon at the top.`), { score: 2, hallucinated: true });
  t.like(judge(q, gt, 'I am not sure what this picture shows.'), { score: 3, hallucinated: false, trueFacts: 0 });
  // a wrong total count alone is a hallucination too
  t.like(judge(q, gt, 'The image shows five shapes: a red circle and a blue star.'), { hallucinated: true, score: 2 });
  // partial but faithful: covers 2 of 3 kinds -> answers; 2 facts -> very informative -> 5
  t.like(judge(q, gt, 'I can see a red circle and a blue star.'), { score: 5, hallucinated: false });
});

test('positions: a side accepts its three cells, a cell only itself', (t) => {
  t.true(positionMatches('left', 'bottom left'));
  t.true(positionMatches('top', 'top right'));
  t.false(positionMatches('top left', 'left'));
  t.false(positionMatches('center', 'top'));
  t.is(checkClaim({ kind: 'object', spec: { color: 'green', shape: 'square', position: 'bottom' }, exact: 2, negated: false, text: '' }, truth).verdict, 'true');
  t.is(checkClaim({ kind: 'object', spec: { color: 'green', shape: 'square', position: 'bottom left' }, exact: 2, negated: false, text: '' }, truth).verdict, 'hallucinated');
});

test('the explanation lists verdicts and carries a parseable rating', (t) => {
  const v = judge('Is there a yellow star in the image?', 'No.', 'Yes, there is a yellow star and a red circle.');
  const text = explainVerdict(v);
  t.regex(text, /hallucinated: yellow star \(no such object in the image\)/);
  t.regex(text, /true: red circle/);
  t.is(parseRating(text), v.score);
});

test('ruleJudge implements Judge; an item without ground truth is a clear error', async (t) => {
  const j = ruleJudge();
  t.is(j.name, 'rule');
  const [r] = await j.judge([{ image_content: [], question: 'Is there a red circle?', gt_answer: 'Yes', response: 'Yes', truth }]);
  t.like(r, { score: 4, hallucinated: false });
  const e = await t.throwsAsync(j.judge([{ question_id: 'q9', image_content: [], question: 'x', gt_answer: 'y', response: 'z' }]));
  t.is((e as { code?: string }).code, 'FF_ERR_BAD_RECORD');
  t.regex(e!.message, /^record #0: item has no ground truth \(question_id q9\)/);
});

test('a background colour outside the object palette can still be wrong', (t) => {
  t.like(judge('What color is the background?', 'Grey.', 'Brown.'), { hallucinated: true, score: 0 });
});

test('adversarial colour question: the gt answer is a denial plus true objects, not a "black diamond"-coloured circle', (t) => {
  const q = 'What color is the diamond in the image?';
  const gt = 'There is no diamond in the image. It shows a small red circle, a large blue star, a small green square and a small green square.';
  // no diamond (1) + red circle + blue star + green square (1 each) -> 4 facts; answers "none" -> very informative, no position -> 5
  t.like(judge(q, gt, gt), { score: 5, hallucinated: false, trueFacts: 4, answersQuestion: true });
  t.like(judge(q, gt, 'There is no diamond.'), { score: 4, hallucinated: false, answersQuestion: true });
  // taking the bait: the diamond is given a colour
  t.like(judge(q, gt, 'The diamond is red.'), { score: 0, hallucinated: true, answersQuestion: false });
  t.like(judge(q, gt, 'Red.'), { score: 0, hallucinated: true });
  t.like(judge(q, gt, 'It is a small red diamond next to the blue star.'), { hallucinated: true, score: 1 });
});

test('attribute questions: true statements about other objects are not the asked attribute', (t) => {
  const q = 'What color is the circle in the image?';
  const gt = 'The circle is red.';
  t.like(judge(q, gt, 'The circle is red. There is also a large blue star on the right.'), { score: 6 - 1, hallucinated: false, answersQuestion: true });
  t.like(judge(q, gt, 'A large blue star is on the right, and the circle is red.'), { hallucinated: false, answersQuestion: true });
  // only another object: true, but does not answer -> somewhat informative
  t.like(judge(q, gt, 'I can see a large blue star.'), { score: 4, hallucinated: false, answersQuestion: false });
  t.like(judge(q, gt, 'The circle is green, like the squares.'), { hallucinated: true });
});

test('environment: "a plain beige color with no texture" is read', (t) => {
  const q = 'What does the background of the image look like?';
  const gt = 'The background is a plain grey color with no texture.';
  // one checkable fact (the colour): somewhat informative, no hallucination
  t.like(judge(q, gt, gt), { score: 4, hallucinated: false, trueFacts: 1, answersQuestion: true });
  t.like(judge(q, gt, 'The background is a plain beige color with no texture.'), { score: 0, hallucinated: true });
  t.like(judge(q, gt, 'It is grey, and a red circle sits at the top left.'), { score: 5, hallucinated: false });
});

test('size comparisons use the size classes', (t) => {
  // red circle small, blue star large, green squares small
  t.like(judge('Is the red circle larger than the blue star?', 'No, the blue star is larger.', 'No, the blue star is larger.'), { score: 5, hallucinated: false, answersQuestion: true });
  t.like(judge('Is the red circle larger than the blue star?', 'No, the blue star is larger.', 'Yes.'), { score: 0, hallucinated: true });
  t.like(judge('Which is larger, the red circle or the blue star?', 'The blue star is larger.', 'The red circle is larger.'), { hallucinated: true, answersQuestion: false });
  const same = judge('Is the red circle larger than the green square?', 'They are about the same size: both are small.', 'They are about the same size: both are small.');
  t.like(same, { score: 5, hallucinated: false, answersQuestion: true, trueFacts: 3 });
  t.like(judge('Is the red circle larger than the green square?', 'They are about the same size: both are small.', 'They are about the same size: both are large.'), { hallucinated: true });
});

test('superlatives and "where is a relative to b"', (t) => {
  const q = 'Which shape is closest to the top edge of the image?';
  const gt = 'The red circle is closest to the top.';
  t.like(judge(q, gt, gt), { score: 5, hallucinated: false, answersQuestion: true, trueFacts: 2 });
  t.like(judge(q, gt, 'The circle.'), { hallucinated: false, answersQuestion: true });
  t.like(judge(q, gt, 'The blue star is closest to the top.'), { score: 1, hallucinated: true, answersQuestion: false });
  const r = 'Where is the red circle relative to the blue star?';
  const rgt = 'The red circle is to the left of the blue star.';
  t.like(judge(r, rgt, rgt), { score: 5, hallucinated: false, answersQuestion: true });
  // another true relation answers it too (the circle is also above the star)
  t.like(judge(r, rgt, 'It is above the blue star.'), { hallucinated: false, answersQuestion: true });
  t.like(judge(r, rgt, 'To the right of the blue star.'), { hallucinated: true, answersQuestion: false });
});
