/**
 * Child process for the kill -9 test: writes generated conversations through the shard
 * sink slowly, so the parent can SIGKILL it midway. Args: <dir> <records> <delayMs>.
 */
import { conversationSchema, type Conversation } from '../../schemas/conversation.ts';
import { shardSink } from '../../sinks/shard-sink.ts';
import { fakeSinkContext, makeConversations } from './sink-harness.ts';

const [dir, n, delay] = [process.argv[2]!, Number(process.argv[3]), Number(process.argv[4])];

async function* slow(): AsyncIterable<Conversation> {
  let i = 0;
  for (const r of makeConversations(n)) {
    if (++i % 10 === 0) await new Promise((resolve) => setTimeout(resolve, delay));
    yield r;
  }
}

await shardSink({ dir, schema: conversationSchema, maxRows: 50, rowGroupRows: 20 }).write(slow(), fakeSinkContext({ dir }));
