// Worker threads do not inherit tsx's loader when it was registered programmatically (bin/pipeline.js),
// so the worker registers it itself before loading the TypeScript worker.
import { register } from 'tsx/esm/api';

register();
await import('./grad-worker.ts');
