/**
 * Progress reporting: one handle per long-running thing (a source's records, a sink's rows,
 * training steps). On a TTY: a cli-progress MultiBar with one bar per handle; elsewhere
 * (logs, CI): plain lines every `intervalMs`, and a final line when a handle stops.
 * Library code only calls the ProgressSink interface; the CLI decides which stream it writes to.
 */
import cliProgress from 'cli-progress';

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

export interface ProgressOptions {
  /** Plain-line mode: how often every active handle prints a line (default 10 000 ms). */
  intervalMs?: number;
  /** Force a mode instead of looking at `stream.isTTY`. */
  tty?: boolean;
}

/** What one progress line shows. */
export interface ProgressState {
  name: string;
  done: number;
  total?: number;
  unit?: string;
  note?: string;
  elapsedMs: number;
}

type Output = NodeJS.WritableStream & { isTTY?: boolean };

/** A ProgressSink writing to `stream`; call close() when the run ends (stops timers, final render). */
export function createProgress(stream: Output, options: ProgressOptions = {}): ProgressSink & { close(): void } {
  const intervalMs = options.intervalMs ?? 10_000;
  if (!(intervalMs > 0)) throw new RangeError(`intervalMs must be > 0, got ${intervalMs}`);
  return (options.tty ?? stream.isTTY === true) ? barProgress(stream) : lineProgress(stream, intervalMs);
}

/** `[vqav2] 12000/50000 (24%) 3500/s ETA 11s | note` */
export function formatProgressLine(s: ProgressState): string {
  const rate = s.elapsedMs > 0 ? (s.done * 1000) / s.elapsedMs : 0;
  const unit = s.unit && s.unit !== 'records' ? ` ${s.unit}` : '';
  let text = `[${s.name}] ${s.done}`;
  if (s.total !== undefined && s.total > 0) {
    const pct = Math.min(100, Math.floor((s.done * 100) / s.total));
    text += `/${s.total}${unit} (${pct}%) ${formatRate(rate)}/s`;
    if (rate > 0 && s.done < s.total) text += ` ETA ${formatDuration((s.total - s.done) / rate)}`;
  } else {
    text += `${unit} ${formatRate(rate)}/s`;
  }
  if (s.note) text += ` | ${s.note}`;
  return text;
}

function formatRate(r: number): string {
  if (r >= 100) return String(Math.round(r));
  if (r >= 10) return r.toFixed(1);
  return r.toFixed(2);
}

/** Seconds as `11s`, `4m05s`, `2h03m`. */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

interface Tracked {
  state: ProgressState;
  started: number;
  active: boolean;
}

function track(name: string, o: { total?: number; unit?: string } | undefined): Tracked {
  return { state: { name, done: 0, total: o?.total, unit: o?.unit, elapsedMs: 0 }, started: Date.now(), active: true };
}

function lineProgress(stream: Output, intervalMs: number): ProgressSink & { close(): void } {
  const handles = new Set<Tracked>();
  const print = (t: Tracked): void => {
    t.state.elapsedMs = Date.now() - t.started;
    stream.write(formatProgressLine(t.state) + '\n');
  };
  const timer = setInterval(() => { for (const t of handles) if (t.active) print(t); }, intervalMs);
  timer.unref();
  return {
    start(name, o) {
      const t = track(name, o);
      handles.add(t);
      return {
        update(done, note) { t.state.done = done; if (note !== undefined) t.state.note = note; },
        setTotal(total) { t.state.total = total; },
        stop() {
          if (!t.active) return;
          t.active = false;
          handles.delete(t);
          print(t);
        },
      };
    },
    close() {
      clearInterval(timer);
      for (const t of handles) { t.active = false; print(t); }
      handles.clear();
    },
  };
}

function barProgress(stream: Output): ProgressSink & { close(): void } {
  // gracefulExit off: the CLI owns SIGINT; the library must not install signal handlers.
  const multi = new cliProgress.MultiBar({
    stream,
    hideCursor: false,
    gracefulExit: false,
    clearOnComplete: false,
    barsize: 24,
    format: (_opts, params, payload: { t?: Tracked }) => {
      const t = payload.t;
      if (!t) return '';
      if (t.active) t.state.elapsedMs = Date.now() - t.started; // frozen once stopped, so the rate stays true
      const line = formatProgressLine(t.state);
      if (!(t.state.total && t.state.total > 0)) return line;
      const filled = Math.round(Math.min(1, params.progress) * 24);
      return `${'█'.repeat(filled)}${'░'.repeat(24 - filled)} ${line}`;
    },
  }, cliProgress.Presets.shades_classic);
  let closed = false;
  return {
    start(name, o) {
      const t = track(name, o);
      const bar = multi.create(t.state.total ?? 0, 0, { t });
      return {
        update(done, note) {
          t.state.done = done;
          if (note !== undefined) t.state.note = note;
          if (t.active && !closed) bar.update(done, { t });
        },
        setTotal(total) {
          t.state.total = total;
          if (t.active && !closed) bar.setTotal(total);
        },
        stop() {
          if (!t.active || closed) return;
          t.state.elapsedMs = Date.now() - t.started;
          t.active = false;
          bar.update(t.state.done, { t });
        },
      };
    },
    close() {
      if (closed) return;
      closed = true;
      multi.stop();
    },
  };
}
