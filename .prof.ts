import { conversationSchema } from './schemas/conversation.ts';
import { encodeParquet } from './sinks/parquet-encoder.ts';
import { makeConversations } from './test/sinks/sink-harness.ts';
const recs = makeConversations(30000);
for (let k = 0; k < 3; k++) {
  const t0 = performance.now();
  const b = encodeParquet({ fields: conversationSchema.fields, schemaName: 'c', schemaVersion: 1, records: recs });
  const t1 = performance.now();
  let bad = 0; for (const r of recs) if (conversationSchema.validate(r)) bad++;
  const t2 = performance.now();
  console.log('encode', (t1 - t0).toFixed(0), 'ms', b.length, 'validate', (t2 - t1).toFixed(0), 'ms');
}
