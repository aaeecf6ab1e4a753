// Unit tests of the frontend's pure logic, run by `jlpm test` (node's own test runner) on
// the compiled lib/.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { CoalescedRun } from '../lib/coalesce.js';

/** A job whose runs the test ends one by one: `finish(i)` or `fail(i)`. */
function controlledJob() {
  const runs = [];
  const job = () =>
    new Promise((resolve, reject) => {
      runs.push({ resolve, reject });
    });
  return { runs, job };
}

const settle = () => new Promise(resolve => setTimeout(resolve, 0));

test('calls during a run share one follow-up run', async () => {
  const { runs, job } = controlledJob();
  const refresh = new CoalescedRun(job);
  const first = refresh.run();
  const second = refresh.run();
  const third = refresh.run();
  assert.equal(second, third, 'both share the follow-up');
  assert.equal(runs.length, 1, 'never two runs at a time');
  runs[0].resolve();
  await first;
  await settle();
  assert.equal(runs.length, 2, 'the follow-up started once the first ended');
  runs[1].resolve();
  await third;
  await settle();
  assert.equal(runs.length, 2, 'no more runs than calls needed');
});

test('a failed run does not lose the calls made during it, then or later', async () => {
  const { runs, job } = controlledJob();
  const refresh = new CoalescedRun(job);
  const failing = refresh.run();
  const queued = refresh.run();
  runs[0].reject(new Error('backend down'));
  await assert.rejects(failing, /backend down/);
  await settle();
  assert.equal(runs.length, 2, 'the follow-up runs after a failure');
  runs[1].resolve();
  await queued;
  // Later calls during a run still get their follow-up.
  const later = refresh.run();
  const laterQueued = refresh.run();
  assert.notEqual(later, laterQueued);
  runs[2].resolve();
  await later;
  await settle();
  assert.equal(
    runs.length,
    4,
    'a follow-up for the call made during the third run'
  );
  runs[3].resolve();
  await laterQueued;
});
