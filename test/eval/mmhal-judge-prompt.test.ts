import test from 'ava';
import { MMHAL_RUBRIC, mmhalJudgePrompt } from '../../src/eval/mmhal-judge-prompt.ts';
import { parseRating } from '../../src/eval/parse-rating.ts';

const prompt = mmhalJudgePrompt({
  imageContent: ['Fire hydrant', 'Tree'],
  question: 'What color is the fire hydrant?',
  gtAnswer: 'The fire hydrant is yellow.',
  response: 'It is red.',
});

test('the prompt ends with the four sections, image contents joined by ", "', (t) => {
  t.true(
    prompt.endsWith(
      '### Image Contents\nFire hydrant, Tree\n\n### Question\nWhat color is the fire hydrant?\n\n' +
        '### Standard Human-Generated Answer\nThe fire hydrant is yellow.\n\n### LMM Response to Evaluate\nIt is red.\n',
    ),
  );
});

test('the 0-6 rubric is listed best first in the "Rating: N, ..." form', (t) => {
  t.is(MMHAL_RUBRIC.length, 7);
  MMHAL_RUBRIC.forEach((line, i) => t.true(line.startsWith(`Rating: ${6 - i}, `)));
  t.true(prompt.includes('- Rating: 6, very informative with good analysis or reasoning, no hallucination\n'));
  t.true(prompt.includes('- Rating: 0, not informative, with hallucination\n'));
  t.regex(prompt, /hallucination/i);
  t.regex(prompt, /### Example 1:/);
  // a judge that echoes the whole rubric has no single rating (as in the reference: 0)
  t.is(parseRating(prompt), 0);
});
