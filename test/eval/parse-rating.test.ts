import test from 'ava';
import { parseRating, ratingMatches } from '../../src/eval/parse-rating.ts';

// Mirrors MMHal-Bench eval_gpt4.py: for s in 0..6, `f'rating: {s}' in response.lower()`;
// exactly one distinct s -> s, otherwise 0.
test('one rating is found, case-insensitively', (t) => {
  t.is(parseRating('The answer is accurate.\nRating: 5, very informative, no hallucination'), 5);
  t.is(parseRating('RATING: 3'), 3);
  t.is(parseRating('rating: 0'), 0);
});

test('the same rating twice is still one rating', (t) => {
  t.is(parseRating('Rating: 4 ... so, to repeat, rating: 4.'), 4);
});

test('no rating, or several different ones, give 0 as in the reference', (t) => {
  t.is(parseRating('I think it is pretty good.'), 0);
  t.is(parseRating('Rating: 4? No wait. Rating: 5'), 0);
  t.deepEqual(ratingMatches('Rating: 4? No wait. Rating: 5'), [4, 5]);
  t.is(parseRating(''), 0);
});

test('reference substring quirks are kept', (t) => {
  t.is(parseRating('Rating:5'), 0, 'no space after the colon: not found');
  t.is(parseRating('Rating - 5'), 0);
  t.is(parseRating('rating: 7'), 0, 'outside 0-6: not found');
  t.is(parseRating('rating: 10'), 1, '"rating: 1" is a substring of "rating: 10"');
  t.is(parseRating('Rating: 2.5'), 2);
  t.is(parseRating('My rating: 6 (very informative with good analysis)'), 6);
});
