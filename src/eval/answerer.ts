/**
 * What evaluation needs from a model: answers to questions about images, greedy, one per
 * question, in order. The policy (src/model/) provides one through `loadPolicyAnswerer`;
 * tests and scripted baselines provide their own.
 */

/** One question to answer. */
export interface AnswerItem {
  /** Image path relative to the answerer's image root. */
  image: string;
  /** The question as the model should read it (any prompt suffix already appended). */
  question: string;
}

/**
 * Answers a batch of questions; returns one answer per item, in the items' order.
 * Implementations should stop early and reject when `signal` aborts.
 */
export type Answerer = (items: AnswerItem[], signal: AbortSignal) => Promise<string[]>;
