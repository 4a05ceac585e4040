import test from 'ava';
import { findBoxes } from '../../src/inspect/find-boxes.ts';
import { boxOverlaySvg, recordTexts } from '../../src/inspect/render-boxes.ts';

test('finds single and ;-joined boxes with the phrase before them', (t) => {
  const found = findBoxes('A man [0.120,0.340,0.560,0.980] rides a brown horse [0.1,0.5,0.3,0.9;0.400,0.500,0.600,0.900].');
  t.deepEqual(found, [
    { label: 'A man', boxes: [[0.12, 0.34, 0.56, 0.98]] },
    { label: 'rides a brown horse', boxes: [[0.1, 0.5, 0.3, 0.9], [0.4, 0.5, 0.6, 0.9]] },
  ]);
});

test('the label stops at clause breaks and keeps at most six words; <image> is dropped', (t) => {
  const found = findBoxes('<image>\nIn this picture, one can see a very small red circle near the top [0,0,1,1]');
  t.deepEqual(found, [{ label: 'a very small red circle near the top'.split(' ').slice(-6).join(' '), boxes: [[0, 0, 1, 1]] }]);
});

test('ignores brackets that are not normalised boxes', (t) => {
  t.deepEqual(findBoxes('see [1] and [0.2,0.3] and [12,30,40,50] and [0.5,0.5,0.2,0.9] and [a,b,c,d]'), []);
  t.deepEqual(findBoxes('no boxes here'), []);
});

test('recordTexts gathers turns and answers; the overlay names each phrase', (t) => {
  const texts = recordTexts({ conversations: [{ from: 'human', value: 'q' }, { from: 'gpt', value: 'a' }], response: 'r', model_answer: 'm' });
  t.deepEqual(texts, ['q', 'a', 'r', 'm']);
  const svg = boxOverlaySvg([{ label: 'a <red> dog', boxes: [[0.25, 0.25, 0.75, 0.75]] }], 200, 100);
  t.regex(svg, /<rect x="50\.0" y="25\.0" width="100\.0" height="50\.0" fill="none"/);
  t.regex(svg, />a &lt;red&gt; dog<\/text>/);
});
