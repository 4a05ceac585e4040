import test from 'ava';
import { tableFromIPC, tableToIPC } from 'apache-arrow';
import { arrowSchemaOf, arrowToPlain, recordsToArrowTable } from '../../schemas/arrow-schema.ts';
import { preferenceSchema, type Preference } from '../../schemas/preference.ts';
import { rolloutSchema } from '../../schemas/rollout.ts';

test('FieldSpecs map to explicit Arrow types with schema metadata', (t) => {
  const schema = arrowSchemaOf(rolloutSchema);
  const types = Object.fromEntries(schema.fields.map((f) => [f.name, `${String(f.type)}${f.nullable ? '?' : ''}`]));
  t.is(types.conversations, 'List<Struct<{from:Utf8, value:Utf8}>>');
  t.is(types.image, 'Utf8?');
  t.is(types.caption_type, 'Int8');
  t.is(types.length_bonus, 'Float32');
  t.is(types.logprobs, 'List<Float32>');
  t.is(types.response_tokens, 'Int32');
  t.is(types.ended_with_eos, 'Bool');
  t.is(schema.metadata.get('factflow.schema'), 'rollout');
  t.is(schema.metadata.get('factflow.schema_version'), '1');
});

test('recordsToArrowTable round-trips through Arrow IPC', (t) => {
  const records: Preference[] = [
    {
      id: 'p1',
      image: 'a.jpg',
      conversations: [{ from: 'human', value: '<image>\nDescribe.' }],
      output_1: 'A circle.',
      output_2: 'A dog.',
      preference: 1,
      hallucination: null,
      facts: ['A red circle.', 'A blue star.'],
    },
    { id: 'p2', image: null, conversations: [{ from: 'human', value: 'Hi' }], output_1: 'Hello', output_2: 'Hey', preference: 2, hallucination: false, facts: [] },
  ];
  const table = recordsToArrowTable(preferenceSchema, records);
  t.is(table.numRows, 2);
  const back = tableFromIPC(tableToIPC(table, 'file'));
  t.deepEqual(back.toArray().map(arrowToPlain), records);
  t.is(back.schema.metadata.get('factflow.schema'), 'preference');
});
