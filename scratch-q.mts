import { DuckDBInstance } from '@duckdb/node-api';
const db = await DuckDBInstance.create(':memory:');
const c = await db.connect();
const dir = process.argv[2];
const r = await c.runAndReadAll(process.argv[3]!.replaceAll('DIR', dir!));
console.log(JSON.stringify(r.getRowObjectsJson().slice(0, 60), null, 0));
