import test from 'ava';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { preferenceJsonSource } from '../../sources/preference-json.ts';
import { cocoCaptionsSource } from '../../sources/coco-captions.ts';
import { cocoCaptionFacts } from '../../transforms/attach-facts.ts';
import { toPreference } from '../../transforms/to-preference.ts';
import { preferenceSchema } from '../../schemas/preference.ts';
import { readSource, runStage } from '../sources/harness.ts';
import { tempDir } from '../helpers/temp-dir.ts';

const PREF = fileURLToPath(new URL('../fixtures/llava/llava_preference_sample.json', import.meta.url));

test('preference records get COCO captions of their image as facts', async (t) => {
  const dir = await tempDir(t, 'ff-topref-');
  const coco = join(dir, 'captions_train2014.json');
  await writeFile(coco, JSON.stringify({
    images: [{ id: 33471, file_name: 'COCO_train2014_000000033471.jpg', width: 640, height: 480 }],
    annotations: [{ image_id: 33471, id: 1, caption: 'A white and red bus on a city street.' }, { image_id: 33471, id: 2, caption: 'A bus drives past people.' }],
  }));
  const { items: prefs } = await readSource(preferenceJsonSource({ file: PREF }));
  const { items, rejected } = await runStage(toPreference({ facts: [cocoCaptionFacts(cocoCaptionsSource({ file: coco }))] }), prefs);
  t.deepEqual(rejected, []);
  t.deepEqual(items.map((p) => p.facts), [
    ['A white and red bus on a city street.', 'A bus drives past people.'],
    ['A white and red bus on a city street.', 'A bus drives past people.'],
  ]);
  for (const p of items) t.is(preferenceSchema.validate(p), null);
});
