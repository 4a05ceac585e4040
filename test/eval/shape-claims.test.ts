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
