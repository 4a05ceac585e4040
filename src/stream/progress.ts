/**
 * Progress reporting interface. PLACEHOLDER: the backbone helper replaces this file with the
 * real implementation (TTY bars via cli-progress, periodic lines otherwise) keeping these types.
 */
export interface ProgressHandle {
  /** Sets the count done so far; `note` is shown beside the bar (e.g. "loss 1.23"). */
  update(done: number, note?: string): void;
  setTotal(total: number): void;
  stop(): void;
}

export interface ProgressSink {
  start(name: string, options?: { total?: number; unit?: string }): ProgressHandle;
}

export const silentProgress: ProgressSink = {
  start: () => ({ update() {}, setTotal() {}, stop() {} }),
};
