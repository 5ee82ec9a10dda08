/**
 * Every GCP bundle in `dist/gcp` is found under its entry-point name by the functions-framework that
 * runs it in production (the Dockerfile's `functions-framework --target=<fn>`, `gcloud functions deploy
 * --entry-point=<fn>`). Each bundle carries its own copy of the framework, so its `http()`/`cloudEvent()`
 * registration is invisible to the runtime's copy: the loader falls back to the module's export of that
 * name. Tests that load the TypeScript entries share one framework copy and cannot see this.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { assertBuilt } from '../support/bundle-child';
import { functionEnv, makeServiceAccount } from './gcp-test-kit';

const ROOT = join(__dirname, '..', '..');
const LOADER = join(ROOT, 'node_modules', '@google-cloud', 'functions-framework', 'build', 'src', 'loader.js');
const sa = makeServiceAccount();

/** Loads `dist/gcp/<fn>` in a fresh Node with the framework's own loader; prints what it found. */
function load(fn: string, signature: string): Promise<string> {
  assertBuilt(join(ROOT, 'dist', 'gcp', fn, 'index.js'));
  const script = `require(${JSON.stringify(LOADER)}).getUserFunction(process.argv[1], process.argv[2], process.argv[3]).then(
    (f) => { console.log(f ? 'FOUND ' + typeof f.userFunction + ' ' + f.signatureType : 'NOT FOUND'); },
    (e) => { console.log('ERROR ' + e.message); })`;
  const env = { PATH: process.env.PATH ?? '', ...functionEnv({ storageUrl: 'http://127.0.0.1:9', pubsubHost: '127.0.0.1:9', keyFile: sa.keyFile }) };
  return new Promise((resolve) => {
    execFile(process.execPath, ['-e', script, join(ROOT, 'dist', 'gcp', fn), fn, signature], { env, timeout: 30_000 }, (err, stdout, stderr) =>
      resolve(`${stdout}${stderr}${err ? ` (exit: ${err.message})` : ''}`),
    );
  });
}

test.each([
  ['upload', 'http'],
  ['images', 'http'],
  ['process', 'cloudevent'],
  ['notify', 'cloudevent'],
  ['cascade', 'cloudevent'],
])('dist/gcp/%s is found as the %s function of its entry-point name', async (fn, signature) => {
  expect(await load(fn, signature)).toContain(`FOUND function ${signature}`);
});
