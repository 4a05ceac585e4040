import test from 'ava';
import { SCHEMAS, schemaByName } from '../../schemas/registry.ts';
import { conversationSchema } from '../../schemas/conversation.ts';

test('every record kind is registered once by name', (t) => {
  t.deepEqual(SCHEMAS.map((s) => s.name), ['conversation', 'preference', 'rl-prompt', 'rollout', 'eval']);
  t.is(schemaByName('conversation'), conversationSchema);
  t.is(schemaByName('nope'), undefined);
  for (const s of SCHEMAS) {
    t.is(s.version, 1);
    t.is(new Set(s.fields.map((f) => f.name)).size, s.fields.length);
  }
});
