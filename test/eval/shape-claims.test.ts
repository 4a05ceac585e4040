import test from 'ava';
import { answerClaims, askedValue, extractClaims, leadingYesNo, questionFrame } from '../../src/eval/shape-claims.ts';

const texts = (s: string) => extractClaims(s).map((c) => c.text);

test('noun phrases: size, colour, shape, counts, generic heads', (t) => {
  t.deepEqual(texts('There is a small red circle.'), ['small red circle']);
  t.deepEqual(texts('two squares'), ['2 squares']);
  t.deepEqual(texts('I can see a white hexagon, two black triangles and a purple diamond.'), ['white hexagon', '2 black triangles', 'purple diamond']);
  t.deepEqual(texts('The image shows three shapes.'), ['3 objects']);
  t.deepEqual(texts('There are two red objects and a big star.'), ['2 red objects', 'large star']);
  t.deepEqual(texts('The shapes do not overlap each other. Each shape is drawn in a flat, solid color.'), [], 'generic phrases without content assert nothing');
  t.deepEqual(texts('Is there anything red?'), ['red object']);
});

test('predicates, positions (after or fronted) and the background', (t) => {
  t.deepEqual(texts('The circle is red and small.'), ['small red circle']);
  t.deepEqual(texts('The shape at the top left is yellow.'), ['yellow object (top left)']);
  t.deepEqual(texts('A large blue star can be seen on the right.'), ['large blue star (right)']);
  t.deepEqual(texts('At the bottom, there is a green square.'), ['green square (bottom)']);
  t.deepEqual(texts('On the left side of the image is a blue star.'), ['blue star (left)']);
  t.deepEqual(texts('A red circle sits in the upper right corner of the picture.'), ['red circle (top right)']);
  t.deepEqual(texts('The shapes are on a grey background.'), ['grey background']);
  t.deepEqual(texts('The background is white.'), ['white background']);
});

test('relations and negation', (t) => {
  t.deepEqual(texts('the blue star is to the left of the green circle'), ['blue star', 'green circle', 'blue star left of green circle']);
  t.deepEqual(texts('A red circle is above a black square.'), ['red circle', 'black square', 'red circle above black square']);
  t.deepEqual(texts('There is no red circle or blue star in the image.'), ['no red circle', 'no blue star']);
  t.deepEqual(texts("There aren't any green stars, but there is a red star."), ['no green star', 'red star']);
  t.deepEqual(texts('The star is not blue.'), ['star', 'no blue star']);
  t.deepEqual(texts('A red circle is next to a blue star.'), ['red circle', 'blue star'], '"next to" is not checked');
});

test('question frames', (t) => {
  t.is(questionFrame('Is there a red circle in the image?').kind, 'yesno');
  t.like(questionFrame('<image>\nHow many red objects are there?'), { kind: 'count', subject: { color: 'red' } });
  t.like(questionFrame('How many circles are red?'), { kind: 'count', subject: { shape: 'circle', color: 'red' } });
  t.like(questionFrame('What color is the star?'), { kind: 'attribute', asked: 'color', subject: { shape: 'star' } });
  t.like(questionFrame('Which shape in the picture is red?'), { kind: 'attribute', asked: 'shape', subject: { color: 'red' } });
  t.like(questionFrame('Is the blue star small or large?'), { kind: 'attribute', asked: 'size' });
  t.like(questionFrame('Where is the blue star?'), { kind: 'attribute', asked: 'position' });
  t.is(questionFrame('What color is the background?').kind, 'background');
  t.is(questionFrame('Describe the image in detail.').kind, 'open');
});

test('short answers complete their question', (t) => {
  const a = (q: string, ans: string) => answerClaims(q, ans).map((c) => c.text);
  t.deepEqual(a('Is there a red circle in the image?', 'Yes.'), ['red circle']);
  t.deepEqual(a('Is there a red circle in the image?', 'No, there is not.'), ['no red circle']);
  t.deepEqual(a('How many squares are there?', '3'), ['3 squares']);
  t.deepEqual(a('What color is the star?', 'Red.'), ['red star']);
  t.deepEqual(a('What color is the star?', 'The star is red.'), ['red star'], 'no duplicate claim');
  t.deepEqual(a('Where is the blue star?', 'top left'), ['blue star (top left)']);
  t.deepEqual(a('What color is the background?', 'It is gray.'), ['grey background']);
  t.deepEqual(a('Is the blue star to the left of the green circle?', 'No'), ['blue star not left of green circle']);
  t.is(leadingYesNo('  YES, it is'), 'yes');
  t.is(askedValue(questionFrame('Is there a cat?'), 'There is no red circle.'), null);
  t.is(askedValue(questionFrame('Is there a red circle?'), 'There is no red circle.'), 'no');
});

test('attributes bind to the phrase they occur in; "There is no X" is a denial', (t) => {
  const f = questionFrame('What color is the circle in the image?');
  const gt = 'There is no circle in the image. It shows a small black diamond.';
  t.deepEqual(texts(gt), ['no circle', 'small black diamond']);
  t.deepEqual(answerClaims('What color is the circle in the image?', gt).map((c) => c.text), ['no circle', 'small black diamond'], 'no "black circle"');
  t.is(askedValue(f, gt), 'none');
  // a correct statement about another object is not the circle's colour
  t.deepEqual(answerClaims('What color is the circle?', 'The circle is red, and a blue star is on the right.').map((c) => c.text), ['red circle', 'blue star (right)']);
  t.is(askedValue(f, 'A blue star is on the right. The circle is red.'), 'red');
  t.is(askedValue(f, 'A blue star is on the right.'), null);
  // words that belong to no phrase complete the subject, only when unambiguous
  t.deepEqual(answerClaims('What color is the circle?', 'It is red.').map((c) => c.text), ['red circle']);
  t.deepEqual(answerClaims('What color is the circle?', 'The circle in the image is red.').map((c) => c.text), ['circle', 'red circle']);
  t.deepEqual(answerClaims('What color is the circle?', 'Red or blue.').map((c) => c.text), []);
  // a phrase that agrees with the subject and adds the asked attribute
  t.deepEqual(answerClaims('What shape is the red object?', 'A circle.').map((c) => c.text), ['circle', 'red circle']);
  t.deepEqual(answerClaims('What shape is the red object?', 'There is a blue circle.').map((c) => c.text), ['blue circle']);
  t.is(askedValue(questionFrame('Is the square small or large?'), 'The square is small; it is a small red square.'), 'small');
});

test('the background: colour after "is", with modifiers and a colour noun', (t) => {
  t.deepEqual(texts('The background is a plain beige color with no texture.'), ['beige background']);
  t.deepEqual(texts('The background is beige.'), ['beige background']);
  t.deepEqual(texts('The background colour of the image is light gray.'), ['grey background']);
  t.deepEqual(texts('The shapes sit on a white colored background.'), ['white background']);
  t.deepEqual(texts('The background is not white.'), ['not white background']);
  t.deepEqual(texts('The shapes stand out against the background.'), []);
  const f = questionFrame('What does the background of the image look like?');
  t.is(f.kind, 'background');
  t.is(askedValue(f, 'The background is a plain grey color with no texture.'), 'grey');
  t.is(askedValue(f, 'Plain and beige.'), 'beige');
  t.deepEqual(answerClaims('What does the background of the image look like?', 'It is plain and beige.').map((c) => c.text), ['beige background']);
  t.is(questionFrame('Is the background grey?').kind, 'yesno');
});

test('size comparisons, superlatives and relation questions', (t) => {
  t.deepEqual(texts('The red circle is larger than the blue star.'), ['red circle', 'blue star', 'red circle larger than blue star']);
  t.deepEqual(texts('The red circle is about the same size as the blue star.'), ['red circle', 'blue star', 'red circle same size as blue star']);
  t.deepEqual(texts('The red circle is closest to the top edge of the image.'), ['red circle', 'red circle closest to the top']);
  t.deepEqual(texts('The red circle is not at the top.'), ['red circle', 'no red circle (top)']);
  const yes = questionFrame('Is the black diamond larger than the green circle?');
  t.like(yes, { kind: 'comparison', form: 'yesno', relation: 'larger than', a: { color: 'black', shape: 'diamond' }, b: { color: 'green', shape: 'circle' } });
  const same = 'They are about the same size: both are large.';
  t.deepEqual(answerClaims('Is the black diamond larger than the green circle?', same).map((c) => c.text), [
    'black diamond same size as green circle', 'large black diamond', 'large green circle',
  ]);
  t.is(askedValue(yes, same), 'no');
  t.is(askedValue(yes, 'Yes.'), 'yes');
  const which = questionFrame('Which is larger, the black diamond or the green circle?');
  t.like(which, { kind: 'comparison', form: 'which' });
  t.deepEqual(answerClaims('Which is larger, the black diamond or the green circle?', 'The green circle is larger.').map((c) => c.text), ['green circle', 'green circle larger than black diamond']);
  t.is(askedValue(which, 'The green circle is larger.'), 'a<b');
  t.is(askedValue(which, 'The black diamond.'), 'a>b');
  const top = questionFrame('Which shape is closest to the top edge of the image?');
  t.like(top, { kind: 'extreme', side: 'top' });
  t.is(askedValue(top, 'The red circle is closest to the top.'), 'red circle');
  t.deepEqual(answerClaims('Which shape is closest to the top edge of the image?', 'The red circle.').map((c) => c.text), ['red circle', 'red circle closest to the top']);
  const rel = questionFrame('Where is the red circle relative to the blue star?');
  t.like(rel, { kind: 'relation', a: { color: 'red', shape: 'circle' }, b: { color: 'blue', shape: 'star' } });
  t.is(askedValue(rel, 'The blue star is to the right of the red circle.'), 'left of');
  t.deepEqual(answerClaims('Where is the red circle relative to the blue star?', 'To the left of the blue star.').map((c) => c.text), ['blue star', 'red circle left of blue star']);
});
