/**
 * Conversation records -> encoded training examples: the Vicuna v1 template (loss on assistant
 * tokens only), the context-length policy of `encodeExample`, and the image's normalised pixels
 * through the model's image loader (cached, so epochs and repeated images decode once).
 *
 * Rejected with a reason (dead letter under policy `skip`): a record that is not a conversation,
 * an image that is missing or cannot be decoded, a conversation over `maxLength` (under
 * overflow `skip`, or whose first round alone is too long), turns out of order.
 * Up to `concurrency` images load at once (sharp decodes off the main thread); order is kept.
 */
import { BadInputError, BadRecordError, InvalidOptionError } from '../src/errors.ts';
import { map } from '../src/stream/map.ts';
import type { Stage } from '../src/stream/stage.ts';
import { encodeExample, type OverflowPolicy, type TrainExample } from '../src/model/collate.ts';
import type { ImageLoader } from '../src/model/image-input.ts';
import type { TextTokenizer } from '../src/model/tokenizer.ts';
import { conversationSchema, type Conversation } from '../schemas/conversation.ts';

export interface TokenizeConversationOptions {
  tokenizer: TextTokenizer;
  /** Loads `record.image` (relative to its root) at the model's image size. */
  images: ImageLoader;
  /** Visual tokens per image (imageTokenCount(config)). */
  imageTokens: number;
  /** Longest sequence kept (<= the model's contextLength). */
  maxLength: number;
  /** Over-long conversations: `truncate` (default: keep the leading rounds that fit) or `skip`. */
  overflow?: OverflowPolicy;
  /** System prompt of the template (default Vicuna v1's). */
  systemPrompt?: string;
  /** Images loading at once (default 4). */
  concurrency?: number;
  name?: string;
}

export function tokenizeConversation(options: TokenizeConversationOptions): Stage<Conversation, TrainExample> {
  if (!options || typeof options !== 'object') throw new InvalidOptionError('options', 'expected an object');
  const { tokenizer, images, imageTokens, maxLength } = options;
  if (!tokenizer || typeof tokenizer.encode !== 'function') throw new InvalidOptionError('tokenizer', 'expected a TextTokenizer (loadTokenizer / tokenizerFromJson)');
  if (!images || typeof images.load !== 'function') throw new InvalidOptionError('images', 'expected an image loader (createImageLoader)');
  if (!Number.isInteger(imageTokens) || imageTokens < 0) throw new InvalidOptionError('imageTokens', `must be a non-negative integer, got ${imageTokens}`);
  if (!Number.isInteger(maxLength) || maxLength <= imageTokens + 2) throw new InvalidOptionError('maxLength', `must be an integer above imageTokens + 2 (${imageTokens + 2}), got ${maxLength}`);
  const overflow = options.overflow ?? 'truncate';
  if (overflow !== 'skip' && overflow !== 'truncate') throw new InvalidOptionError('overflow', `must be "skip" or "truncate", got ${JSON.stringify(overflow)}`);
  const encodeOptions = { imageTokens, maxLength, overflow, systemPrompt: options.systemPrompt };

  return map<Conversation, TrainExample>(async (record) => {
    const reason = conversationSchema.validate(record);
    if (reason !== null) throw new BadRecordError(`not a conversation record: ${reason}`, { fix: 'feed conversation shards (pipelines/sft-mix.ts)' });
    let pixels: Float32Array | null = null;
    if (record.image !== null) {
      try {
        pixels = await images.load(record.image);
      } catch (cause) {
        const why = cause instanceof BadInputError ? cause.detail : (cause as Error).message;
        throw new BadRecordError(`image "${record.image}" of record "${record.id}" cannot be read: ${why}`, {
          cause, fix: 'check the image root (images=/world=) and that the file exists and decodes',
        });
      }
    }
    return encodeExample(tokenizer, record.id, record.conversations, pixels, encodeOptions);
  }, { concurrency: options.concurrency ?? 4, name: options.name ?? 'tokenize' });
}
